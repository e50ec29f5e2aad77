-- name: json_referrer
-- answers: Events per referrer.
-- budget: 60s
SELECT json_extract_scalar(properties, '$.referrer') AS referrer, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC, 1
