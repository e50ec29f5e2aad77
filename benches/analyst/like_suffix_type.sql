-- name: like_suffix_type
-- answers: Events whose type ends with a word.
-- budget: 60s
SELECT event_type, count(*) AS n FROM events WHERE event_type LIKE '%_view' GROUP BY 1 ORDER BY 1
