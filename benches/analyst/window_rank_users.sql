-- name: window_rank_users
-- answers: Top three users per team.
-- budget: 60s
SELECT team, user_id, n FROM (SELECT team, user_id, count(*) AS n, row_number() OVER (PARTITION BY team ORDER BY count(*) DESC, user_id) AS rn FROM events GROUP BY 1, 2) t WHERE rn <= 3 ORDER BY 1, 3 DESC
