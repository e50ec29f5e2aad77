-- name: case_buckets
-- answers: Duration buckets.
-- budget: 60s
SELECT CASE WHEN CAST(json_extract_scalar(properties, '$.duration_ms') AS BIGINT) < 100 THEN 'fast' WHEN CAST(json_extract_scalar(properties, '$.duration_ms') AS BIGINT) < 1000 THEN 'ok' ELSE 'slow' END AS bucket, count(*) AS n FROM events GROUP BY 1 ORDER BY 1
