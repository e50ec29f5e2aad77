-- name: sessions_per_user
-- answers: The users with the most sessions in the last days, with their events.
-- budget: 60s
SELECT user_id, count(DISTINCT session_id) AS sessions, count(*) AS events FROM events WHERE dt >= '2026-11-24' GROUP BY 1 HAVING count(DISTINCT session_id) >= 8 ORDER BY 2 DESC, 1 LIMIT 25
