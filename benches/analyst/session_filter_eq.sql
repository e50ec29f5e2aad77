-- name: session_filter_eq
-- answers: One session's events.
-- budget: 60s
SELECT count(*) AS n FROM events WHERE session_id = (SELECT min(session_id) FROM events WHERE team = 'search')
