-- name: top_events_per_user
-- answers: The three latest events of each user on a day, counted by type.
-- budget: 60s
SELECT event_type, count(*) AS events FROM (SELECT event_type, row_number() OVER (PARTITION BY user_id ORDER BY event_time DESC, event_id) AS rn FROM events WHERE dt = '2026-11-21') t WHERE rn <= 3 GROUP BY event_type ORDER BY event_type
