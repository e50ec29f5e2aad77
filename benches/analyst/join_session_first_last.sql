-- name: join_session_first_last
-- answers: Sessions whose first and last event types differ.
-- budget: 60s
SELECT count(*) AS n FROM (SELECT session_id, min(event_time) AS f, max(event_time) AS l FROM events GROUP BY session_id) s JOIN events e ON e.session_id = s.session_id AND e.event_time = s.f WHERE s.l > s.f
