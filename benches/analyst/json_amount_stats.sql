-- name: json_amount_stats
-- answers: Purchase amount statistics per team.
-- budget: 60s
SELECT team, count(*) AS n, sum(CAST(json_extract_scalar(properties, '$.amount_cents') AS BIGINT)) AS total, avg(CAST(json_extract_scalar(properties, '$.amount_cents') AS DOUBLE)) AS mean FROM events WHERE event_type = 'purchase' GROUP BY 1 ORDER BY 1
