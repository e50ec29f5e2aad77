-- name: json_duration_percentiles
-- answers: Duration percentiles per source.
-- budget: 60s
SELECT source, approx_percentile(CAST(json_extract_scalar(properties, '$.duration_ms') AS DOUBLE), 0.5) AS p50, approx_percentile(CAST(json_extract_scalar(properties, '$.duration_ms') AS DOUBLE), 0.99) AS p99 FROM events GROUP BY 1 ORDER BY 1
