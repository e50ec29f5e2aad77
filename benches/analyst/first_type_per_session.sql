-- name: first_type_per_session
-- answers: How sessions start: the first event type of each session, counted.
-- budget: 60s
SELECT first_type, count(*) AS sessions FROM (SELECT DISTINCT session_id, first_value(event_type) OVER (PARTITION BY session_id ORDER BY event_time, event_id) AS first_type FROM events WHERE team = 'search') t GROUP BY first_type ORDER BY first_type
