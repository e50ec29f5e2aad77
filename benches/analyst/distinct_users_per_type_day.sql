-- name: distinct_users_per_type_day
-- answers: Distinct users per event type and day.
-- budget: 60s
SELECT dt, event_type, count(DISTINCT user_id) AS users FROM events GROUP BY 1, 2 ORDER BY 1, 2
