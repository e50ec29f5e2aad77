-- name: window_running_total
-- answers: Running total of events per day and team.
-- budget: 60s
SELECT team, dt, n, sum(n) OVER (PARTITION BY team ORDER BY dt) AS running FROM (SELECT team, dt, count(*) AS n FROM events GROUP BY 1, 2) t ORDER BY 1, 2
