-- name: unnest_type_words
-- answers: Which words event types are made of, and how often each occurs.
-- budget: 60s
SELECT w.word, count(*) AS n FROM events AS e CROSS JOIN UNNEST(split(e.event_type, '_')) AS w(word) GROUP BY w.word ORDER BY n DESC, w.word
