-- name: distinct_sessions_per_day
-- answers: Distinct sessions per day.
-- budget: 60s
SELECT dt, count(DISTINCT session_id) AS sessions FROM events GROUP BY dt ORDER BY dt
