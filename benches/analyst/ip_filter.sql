-- name: ip_filter
-- answers: Events from one IP range.
-- budget: 60s
SELECT count(*) AS n FROM events WHERE context_ip LIKE '10.0.1.%'
