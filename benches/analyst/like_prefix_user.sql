-- name: like_prefix_user
-- answers: Users whose id starts with a prefix.
-- budget: 60s
SELECT count(*) AS n, count(DISTINCT user_id) AS users FROM events WHERE user_id LIKE 'u-12%'
