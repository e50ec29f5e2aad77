-- name: duration_p95_by_event_type
-- answers: The 95th percentile of properties.duration_ms per event type for one team (approximate).
-- param: team team checkout
-- param: from date 2026-11-20
-- param: to date 2026-11-22
-- budget: 30s
SELECT event_type,
       approx_percentile(CAST(json_extract_scalar(properties, '$.duration_ms') AS DOUBLE), 0.95) AS p95_duration_ms,
       count(*) AS events
FROM events
WHERE team = {{team}}
  AND dt BETWEEN {{from}} AND {{to}}
GROUP BY event_type
ORDER BY event_type
