-- name: distinct_users_list
-- answers: The distinct users of one team and day.
-- budget: 60s
SELECT count(*) AS users FROM (SELECT DISTINCT user_id FROM events WHERE team = 'checkout') t
