-- name: distinct_sources_locales
-- answers: Distinct source and locale combinations.
-- budget: 60s
SELECT DISTINCT source, context_locale FROM events ORDER BY 1, 2
