-- name: json_path_filter
-- answers: Events on a path prefix.
-- budget: 60s
SELECT count(*) AS n FROM events WHERE json_extract_scalar(properties, '$.path') LIKE '/p/1%'
