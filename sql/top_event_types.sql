-- name: top_event_types
-- answers: The ten most frequent event types over a date range, all teams together.
-- param: from date 2026-11-20
-- param: to date 2026-11-22
-- budget: 30s
SELECT event_type, count(*) AS events
FROM events
WHERE dt BETWEEN {{from}} AND {{to}}
GROUP BY event_type
ORDER BY events DESC, event_type
LIMIT 10
