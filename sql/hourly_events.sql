-- name: hourly_events
-- answers: Events received per hour of one day for one team, for spotting gaps and spikes.
-- param: team team checkout
-- param: day date 2026-11-20
-- budget: 30s
SELECT date_trunc('hour', received_at) AS hour, count(*) AS events
FROM events
WHERE team = {{team}}
  AND dt = {{day}}
  AND received_at >= from_iso8601_timestamp({{day}})
  AND received_at < from_iso8601_timestamp({{day}}) + INTERVAL '1' DAY
GROUP BY date_trunc('hour', received_at)
ORDER BY hour
