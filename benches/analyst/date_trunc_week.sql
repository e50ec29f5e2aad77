-- name: date_trunc_week
-- answers: Events per week and team.
-- budget: 60s
SELECT date_trunc('week', event_time) AS w, team, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2
