-- name: user_filter_eq
-- answers: Everything one user did.
-- budget: 60s
SELECT event_time, event_type, source FROM events WHERE user_id = 'u-1234' ORDER BY event_time, event_type
