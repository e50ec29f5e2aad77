-- name: session_length
-- answers: Sessions by number of events.
-- budget: 60s
SELECT least(n, 20) AS events, count(*) AS sessions FROM (SELECT session_id, count(*) AS n FROM events GROUP BY 1) t GROUP BY 1 ORDER BY 1
