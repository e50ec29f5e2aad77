-- name: late_events
-- answers: Per team, how many events arrived more than an hour after they happened (offline clients, replays).
-- param: from date 2026-11-20
-- param: to date 2026-11-22
-- budget: 30s
SELECT team, count(*) AS late_events
FROM events
WHERE dt BETWEEN {{from}} AND {{to}}
  AND event_time < received_at - INTERVAL '1' HOUR
GROUP BY team
ORDER BY team
