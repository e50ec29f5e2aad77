-- name: date_diff_latency
-- answers: Arrival latency buckets.
-- budget: 60s
SELECT least(date_diff('minute', event_time, received_at), 120) AS minutes, count(*) AS n FROM events GROUP BY 1 ORDER BY 1
