-- name: semi_join_in
-- answers: Events of users seen on ios.
-- budget: 60s
SELECT count(*) AS n FROM events WHERE user_id IN (SELECT user_id FROM events WHERE source = 'ios' AND team = 'growth')
