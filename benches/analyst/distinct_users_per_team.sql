-- name: distinct_users_per_team
-- answers: Distinct users per team (exact, high cardinality).
-- budget: 60s
SELECT team, count(DISTINCT user_id) AS users FROM events GROUP BY team ORDER BY team
