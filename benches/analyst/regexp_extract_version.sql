-- name: regexp_extract_version
-- answers: App versions by major.
-- budget: 60s
SELECT regexp_extract(context_app_version, '^[0-9]+') AS major, count(*) AS n FROM events GROUP BY 1 ORDER BY 1
