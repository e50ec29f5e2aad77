-- name: unnest_ordinality_path
-- answers: Page path segments by position, for the search team.
-- budget: 60s
SELECT p.pos, count(DISTINCT p.part) AS parts FROM events CROSS JOIN UNNEST(split(json_extract_scalar(properties, '$.path'), '/')) WITH ORDINALITY AS p(part, pos) WHERE team = 'search' GROUP BY p.pos ORDER BY p.pos
