-- name: json_extract_currency
-- answers: Purchases per currency, read as JSON values.
-- budget: 60s
SELECT json_extract(properties, '$.currency') AS currency, count(*) AS purchases FROM events WHERE event_type = 'purchase' GROUP BY 1 ORDER BY 2 DESC, 1
