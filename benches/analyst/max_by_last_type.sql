-- name: max_by_last_type
-- answers: Each team's latest event type.
-- budget: 60s
SELECT team, max_by(event_type, event_time) AS last_type, max(event_time) AS at FROM events GROUP BY 1 ORDER BY 1
