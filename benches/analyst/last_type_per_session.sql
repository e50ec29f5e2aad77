-- name: last_type_per_session
-- answers: How sessions end: sessions whose last event is a purchase.
-- budget: 60s
SELECT count(*) AS sessions FROM (SELECT DISTINCT session_id, last_value(event_type) OVER (PARTITION BY session_id ORDER BY event_time, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_type FROM events WHERE team = 'growth') t WHERE last_type = 'purchase'
