-- name: regexp_like_user
-- answers: Users matching a pattern.
-- budget: 60s
SELECT count(DISTINCT user_id) AS users FROM events WHERE regexp_like(user_id, '^u-[0-9]*7$')
