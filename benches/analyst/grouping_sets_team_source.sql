-- name: grouping_sets_team_source
-- answers: Events per team, per source, and in all, in one query.
-- budget: 60s
SELECT team, source, count(*) AS events, max(event_time) AS latest FROM events GROUP BY GROUPING SETS ((team), (source), ()) ORDER BY team, source
