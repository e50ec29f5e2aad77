-- name: join_purchasers_views
-- answers: Page views of users who purchased.
-- budget: 60s
SELECT count(*) AS views FROM events v JOIN (SELECT DISTINCT user_id FROM events WHERE event_type = 'purchase') p ON v.user_id = p.user_id WHERE v.event_type = 'page_view'
