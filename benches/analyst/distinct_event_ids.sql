-- name: distinct_event_ids
-- answers: Distinct event ids overall.
-- budget: 60s
SELECT count(DISTINCT event_id) AS events FROM events
