-- name: distinct_pairs
-- answers: Distinct team and event type pairs.
-- budget: 60s
SELECT DISTINCT team, event_type FROM events ORDER BY 1, 2
