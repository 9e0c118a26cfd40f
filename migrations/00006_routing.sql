-- +goose Up

-- Routing and distribution (issue 7): queues, agents' capacity and presence,
-- the capacity ledger, queued conversations and the live event log.

-- Queues: where conversations wait for an agent. JSON columns hold the
-- routing package's types (OperatingHours, []Holiday, Overflow).
CREATE TABLE queues (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    priority          INTEGER NOT NULL, -- lower first
    assignment_method TEXT NOT NULL CHECK (assignment_method IN ('highest_capacity', 'round_robin')),
    time_zone         TEXT NOT NULL DEFAULT '', -- IANA name; '' with no hours: 24x7
    operating_hours   TEXT NOT NULL DEFAULT '[]',
    holidays          TEXT NOT NULL DEFAULT '[]',
    overflow          TEXT NOT NULL DEFAULT '{}',
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    deleted_at        TIMESTAMP
);

CREATE UNIQUE INDEX queues_name ON queues (name) WHERE deleted_at IS NULL;

CREATE TABLE queue_agents (
    queue_id   TEXT NOT NULL REFERENCES queues (id),
    agent_id   TEXT NOT NULL REFERENCES agents (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (queue_id, agent_id)
);

CREATE INDEX queue_agents_agent ON queue_agents (agent_id);

-- An agent's capacity, skills and presence. presence is what the agent (or
-- an admin) chose, or the system's 'inactive' after a missed offer; an
-- 'available' agent's shown presence follows its load (routing.EffectivePresence).
ALTER TABLE agents ADD COLUMN capacity_units INTEGER NOT NULL DEFAULT 3 CHECK (capacity_units >= 0);
ALTER TABLE agents ADD COLUMN skills TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agents ADD COLUMN presence TEXT NOT NULL DEFAULT 'offline';
-- The presence last shown (effective), to emit an event only on change.
ALTER TABLE agents ADD COLUMN shown_presence TEXT NOT NULL DEFAULT 'offline';
ALTER TABLE agents ADD COLUMN presence_changed_at TIMESTAMP;
ALTER TABLE agents ADD COLUMN last_offered_at TIMESTAMP;
ALTER TABLE agents ADD COLUMN last_assigned_at TIMESTAMP;

-- A workstream's distribution (JSON routing.Distribution, rules included);
-- NULL: routing is off and conversations are assigned by hand.
ALTER TABLE workstreams ADD COLUMN distribution TEXT;
-- Kept out of the JSON so that a queue in use as a fallback cannot go.
ALTER TABLE workstreams ADD COLUMN fallback_queue_id TEXT REFERENCES queues (id);

-- Conversations waiting in a queue: at most one row per conversation.
CREATE TABLE queue_items (
    conversation_id    TEXT PRIMARY KEY,
    workflow_id        TEXT NOT NULL,
    queue_id           TEXT NOT NULL REFERENCES queues (id),
    page_ref           TEXT NOT NULL,
    mode               TEXT NOT NULL CHECK (mode IN ('push', 'pick')),
    units              INTEGER NOT NULL CHECK (units >= 0),
    priority           INTEGER NOT NULL DEFAULT 0, -- higher first, within a queue
    waiting_since      TIMESTAMP NOT NULL,         -- FIFO order: the customer's wait
    enqueued_at        TIMESTAMP NOT NULL,
    allowed_presences  TEXT NOT NULL,              -- JSON []string
    preferred_agent_id TEXT NOT NULL DEFAULT '',   -- keep same agent
    preferred_until    TIMESTAMP,
    declined           TEXT NOT NULL DEFAULT '[]', -- JSON agent ids who rejected or missed it
    offer_id           TEXT NOT NULL DEFAULT '',   -- '' while not offered
    offer_round        TEXT NOT NULL DEFAULT '',   -- the distribution round that offered it
    offer_timeout_ms   BIGINT NOT NULL DEFAULT 0,
    note               TEXT NOT NULL DEFAULT '',   -- a transfer's note for the next agent
    route_id           TEXT NOT NULL DEFAULT ''    -- the workflow's routing attempt (idempotency)
);

CREATE INDEX queue_items_order ON queue_items (queue_id, priority, waiting_since);

-- The capacity ledger: what each conversation holds of one agent's
-- capacity. The primary key makes "one agent per conversation" a fact of
-- the database.
CREATE TABLE capacity_holds (
    conversation_id TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL REFERENCES agents (id),
    units           INTEGER NOT NULL CHECK (units >= 0),
    kind            TEXT NOT NULL CHECK (kind IN ('offer', 'active', 'wrap_up')),
    offer_id        TEXT NOT NULL DEFAULT '',
    expires_at      TIMESTAMP, -- offers: their time-out
    forced          BOOLEAN NOT NULL DEFAULT FALSE,
    workflow_id     TEXT NOT NULL,
    queue_id        TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL
);

CREATE INDEX capacity_holds_agent ON capacity_holds (agent_id);

-- Assignments made: estimated wait times and the routing history.
CREATE TABLE assignments (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    queue_id        TEXT NOT NULL DEFAULT '',
    agent_id        TEXT NOT NULL,
    how             TEXT NOT NULL, -- accept | pick | assign | transfer
    waited_ms       BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL
);

CREATE INDEX assignments_queue ON assignments (queue_id, created_at);

-- Live events for agents and supervisors (GET /api/v1/events). ids come
-- from event_counter, taken in the inserting transaction: its row lock
-- makes ids commit in order, so a reader that saw id n never misses a
-- smaller one later.
CREATE TABLE events (
    id          BIGINT PRIMARY KEY,
    type        TEXT NOT NULL,
    agent_id    TEXT NOT NULL DEFAULT '', -- the agent it is for ('' none)
    queue_id    TEXT NOT NULL DEFAULT '', -- the queue it concerns ('' none)
    conversation_id TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL,            -- JSON
    dedupe_key  TEXT,                     -- retried writers append once
    created_at  TIMESTAMP NOT NULL
);

CREATE UNIQUE INDEX events_dedupe ON events (dedupe_key);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE event_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);

INSERT INTO event_counter (id, last) VALUES (1, 0);

-- +goose Down
DROP TABLE event_counter;
DROP TABLE events;
DROP TABLE assignments;
DROP TABLE capacity_holds;
DROP TABLE queue_items;
ALTER TABLE workstreams DROP COLUMN fallback_queue_id;
ALTER TABLE workstreams DROP COLUMN distribution;
ALTER TABLE agents DROP COLUMN last_assigned_at;
ALTER TABLE agents DROP COLUMN last_offered_at;
ALTER TABLE agents DROP COLUMN presence_changed_at;
ALTER TABLE agents DROP COLUMN shown_presence;
ALTER TABLE agents DROP COLUMN presence;
ALTER TABLE agents DROP COLUMN skills;
ALTER TABLE agents DROP COLUMN capacity_units;
DROP TABLE queue_agents;
DROP TABLE queues;
