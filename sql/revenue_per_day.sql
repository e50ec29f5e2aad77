-- name: revenue_per_day
-- answers: Revenue per day and team from purchase events (properties.amount_cents, in euros).
-- param: from date 2026-11-20
-- param: to date 2026-11-22
-- budget: 30s
SELECT dt,
       team,
       count(*) AS purchases,
       sum(CAST(json_extract_scalar(properties, '$.amount_cents') AS BIGINT)) AS amount_cents
FROM events
WHERE event_type = 'purchase'
  AND dt BETWEEN {{from}} AND {{to}}
GROUP BY dt, team
ORDER BY dt, team
