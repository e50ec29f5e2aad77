-- name: top_users_limit
-- answers: The twenty most active users.
-- budget: 60s
SELECT user_id, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20
