-- name: date_format_hour
-- answers: Events per formatted hour.
-- budget: 60s
SELECT date_format(event_time, '%Y-%m-%d %H') AS hour, count(*) AS n FROM events WHERE team = 'growth' GROUP BY 1 ORDER BY 1
