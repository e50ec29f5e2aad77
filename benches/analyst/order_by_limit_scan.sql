-- name: order_by_limit_scan
-- answers: The latest ten events.
-- budget: 60s
SELECT event_id, event_time FROM events ORDER BY event_time DESC, event_id LIMIT 10
