-- name: having_filter
-- answers: Users with more than 30 events in one team.
-- budget: 60s
SELECT team, count(*) AS users FROM (SELECT team, user_id FROM events GROUP BY 1, 2 HAVING count(*) > 30) t GROUP BY 1 ORDER BY 1
