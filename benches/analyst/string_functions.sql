-- name: string_functions
-- answers: Locale language and country counts.
-- budget: 60s
SELECT split_part(context_locale, '-', 1) AS lang, upper(substr(context_locale, 4, 2)) AS country, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2
