-- name: date_add_window
-- answers: Events in the last day of the lake.
-- budget: 60s
SELECT count(*) AS n FROM events WHERE event_time >= date_add('day', -1, (SELECT max(event_time) FROM events))
