-- name: join_daily_ratio
-- answers: Purchases per signup per team.
-- budget: 60s
SELECT a.team, a.n AS purchases, b.n AS signups FROM (SELECT team, count(*) AS n FROM events WHERE event_type = 'purchase' GROUP BY team) a JOIN (SELECT team, count(*) AS n FROM events WHERE event_type = 'signup' GROUP BY team) b ON a.team = b.team ORDER BY 1
