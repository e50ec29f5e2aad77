-- name: count_if_and_if
-- answers: Web and app events per team.
-- budget: 60s
SELECT team, count_if(source = 'web') AS web, sum(if(source = 'web', 0, 1)) AS app FROM events GROUP BY 1 ORDER BY 1
