-- name: locale_in_list
-- answers: Events from two locales by day.
-- budget: 60s
SELECT dt, count(*) AS n FROM events WHERE context_locale IN ('fr-FR', 'de-DE') GROUP BY dt ORDER BY dt
