-- name: events_per_team_day
-- answers: How many distinct events each team sent per day (duplicates removed).
-- param: from date 2026-11-20
-- param: to date 2026-11-22
-- budget: 30s
SELECT team, dt, count(*) AS events
FROM events
WHERE dt BETWEEN {{from}} AND {{to}}
GROUP BY team, dt
ORDER BY team, dt
