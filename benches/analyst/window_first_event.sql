-- name: window_first_event
-- answers: Each user's first event type.
-- budget: 60s
SELECT event_type, count(*) AS users FROM (SELECT user_id, event_type, row_number() OVER (PARTITION BY user_id ORDER BY event_time, event_id) AS rn FROM events WHERE team = 'checkout') t WHERE rn = 1 GROUP BY 1 ORDER BY 1
