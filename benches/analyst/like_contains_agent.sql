-- name: like_contains_agent
-- answers: Events from iPhones.
-- budget: 60s
SELECT team, count(*) AS n FROM events WHERE context_user_agent LIKE '%iPhone%' GROUP BY team ORDER BY team
