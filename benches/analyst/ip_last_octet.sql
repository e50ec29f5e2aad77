-- name: ip_last_octet
-- answers: Events by the last part of the client address (a few hundred distinct values a batch).
-- budget: 60s
SELECT split_part(context_ip, '.', 4) AS last_octet, count(*) AS events FROM events GROUP BY 1 ORDER BY events DESC, last_octet LIMIT 10
