-- name: window_lag_session
-- answers: Time between consecutive events of a session (average).
-- budget: 60s
SELECT avg(gap) AS avg_gap_s FROM (SELECT date_diff('second', lag(event_time) OVER (PARTITION BY session_id ORDER BY event_time), event_time) AS gap FROM events WHERE team = 'search') t WHERE gap IS NOT NULL
