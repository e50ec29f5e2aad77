-- name: daily_active_users
-- answers: How many distinct users one team saw each day (approximate, within about 2%).
-- param: team team checkout
-- param: from date 2026-11-20
-- param: to date 2026-11-22
-- budget: 30s
SELECT dt, approx_distinct(user_id) AS active_users
FROM events
WHERE team = {{team}}
  AND dt BETWEEN {{from}} AND {{to}}
GROUP BY dt
ORDER BY dt
