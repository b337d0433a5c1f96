-- Tasks: the todo list of one of our frontends. Every query is scoped by owner_id, so
-- every index starts with it.

CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'done');
-- Declared low to high, so ORDER BY priority sorts by importance.
CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high');

CREATE TABLE tasks (
    id          uuid          PRIMARY KEY,
    owner_id    uuid          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       text          NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description text          CHECK (char_length(description) <= 10000),
    status      task_status   NOT NULL DEFAULT 'todo',
    priority    task_priority NOT NULL DEFAULT 'medium',
    due_at      timestamptz,
    tags        text[]        NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 10),
    -- Bumped by every change; the ETag is derived from it.
    version     bigint        NOT NULL DEFAULT 1,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    -- 'simple' configuration: no language-specific stemming of user content.
    search      tsvector      GENERATED ALWAYS AS (
        to_tsvector('simple', title || ' ' || coalesce(description, ''))
    ) STORED
);

-- One index per sort key, each (owner, key, id): the list query walks it from the cursor
-- on, in either direction, and stops after one page. A missing due date sorts last
-- ascending (and first descending), so the key is coalesce(due_at, 'infinity').
CREATE INDEX tasks_owner_created_idx  ON tasks (owner_id, created_at, id);
CREATE INDEX tasks_owner_due_idx      ON tasks (owner_id, (coalesce(due_at, 'infinity'::timestamptz)), id);
CREATE INDEX tasks_owner_priority_idx ON tasks (owner_id, priority, id);
CREATE INDEX tasks_owner_title_idx    ON tasks (owner_id, title, id);
-- Filters that the sort indexes cannot serve.
CREATE INDEX tasks_search_idx ON tasks USING gin (search);
CREATE INDEX tasks_tags_idx   ON tasks USING gin (tags);
