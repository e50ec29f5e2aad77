-- name: length_and_lower
-- answers: User agent lengths by source.
-- budget: 60s
SELECT lower(source) AS s, max(length(context_user_agent)) AS longest, min(length(user_id)) AS shortest FROM events GROUP BY 1 ORDER BY 1
