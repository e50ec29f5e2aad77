-- name: day_of_week_users
-- answers: Distinct users per day of week.
-- budget: 60s
SELECT day_of_week(event_time) AS d, count(DISTINCT user_id) AS users FROM events GROUP BY 1 ORDER BY 1
