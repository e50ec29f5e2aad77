-- name: hour_of_day
-- answers: Events per hour of day.
-- budget: 60s
SELECT hour(event_time) AS h, count(*) AS n FROM events GROUP BY 1 ORDER BY 1
