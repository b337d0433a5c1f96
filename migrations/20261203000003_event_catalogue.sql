-- The public catalogue searches published events by words of their title, description,
-- category, venue and city. 'simple': events are announced in many languages, so no
-- stemming for any one of them.
ALTER TABLE events ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', title || ' ' || description || ' ' || replace(category, '-', ' ')
                || ' ' || venue_name || ' ' || city)
) STORED;
CREATE INDEX events_search_idx ON events USING gin (search) WHERE status = 'published';
