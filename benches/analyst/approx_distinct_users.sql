-- name: approx_distinct_users
-- answers: Approximate distinct users per team and day.
-- budget: 60s
SELECT team, dt, approx_distinct(user_id) AS users FROM events GROUP BY 1, 2 ORDER BY 1, 2
