-- Bytes move to R2 (binding ARCHIVE), the ledger keeps the index: dead letters and quarantine
-- point at a slice of an R2 object, do-not-process flags keep their history, and outage mode,
-- archive replay jobs and byte budgets get their tables. Written so that a deploy from before
-- this migration keeps working until the new code is up (`npm run deploy` migrates first).

-- Dead letters (accepted, not delivered) and quarantined webhooks (authenticated, invalid): one
-- row each, at most 8 KB whatever the input (src/ledger/records.ts cuts detail, issues and names).
-- Rebuilt because SQLite cannot change a CHECK: states now include the tombstones that a replay
-- or a delete leaves, so a record moved in late from the second store never comes back.
CREATE TABLE records_next (
  id TEXT PRIMARY KEY,                 -- <13-digit ms>-<source>.<eventId>.<random>, time-ordered
  kind TEXT NOT NULL CHECK (kind IN ('dead-letters', 'quarantine')),
  -- stored -> sent (by a replay: marked before it is enqueued, never claimable again) | dropped
  -- (a replay found the visitor flagged do-not-process) | deleted (by an operator). The last
  -- three are tombstones, purged with the rest after DEAD_LETTER_TTL_SECONDS. 'replaying' is what
  -- deploys before this migration write while they claim.
  state TEXT NOT NULL DEFAULT 'stored'
    CHECK (state IN ('stored', 'replaying', 'sent', 'dropped', 'deleted')),
  reason TEXT NOT NULL,                -- a dead-letter reason, or 'invalid' for quarantine
  source TEXT NOT NULL,
  event TEXT NOT NULL,                 -- the Pendo event name, '' when unreadable
  event_id TEXT NOT NULL,              -- Pendo's uniqueId (or the body's SHA-1)
  attempts INTEGER NOT NULL,
  last_status INTEGER,
  detail TEXT NOT NULL,                -- the destination's answer or the failure, at most 2 KB
  issues TEXT,                         -- quarantine: JSON [{path, message}], at most 2 KB
  received_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  body BLOB,                           -- rows written before this migration: the raw webhook
  message TEXT,                        -- rows written before this migration: the queued message
  claimed_at INTEGER,                  -- when a deploy before this migration claimed it
  stored_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  -- Where the bytes are: a slice of an R2 object (src/r2/keys.ts), one object per stored group.
  -- NULL with holds = 'none': the source was over its byte budget and only this row was kept.
  object_key TEXT,
  object_offset INTEGER,
  object_length INTEGER,
  holds TEXT NOT NULL DEFAULT 'legacy' CHECK (holds IN ('body', 'message', 'none', 'legacy')),
  settled_at INTEGER                   -- when it was sent, dropped or deleted
);
INSERT INTO records_next (id, kind, state, reason, source, event, event_id, attempts, last_status,
  detail, issues, received_at, created_at, body, message, claimed_at, stored_at)
SELECT id, kind, state, reason, source, event, event_id, attempts, last_status, detail, issues,
  received_at, created_at, body, message, claimed_at, stored_at FROM records;
DROP TABLE records;
ALTER TABLE records_next RENAME TO records;
-- Console list, "replay all matching" pages, purge by age.
CREATE INDEX records_by_time ON records (kind, created_at);
-- Counts by reason (summary) and the reason filter.
CREATE INDEX records_by_reason ON records (kind, reason, created_at);
-- "What happened to this uniqueId?"
CREATE INDEX records_by_event_id ON records (event_id);
-- Alerts: what a source stored since the last alert of its kind.
CREATE INDEX records_by_source ON records (kind, source, stored_at);
-- The cron's flag purge: the oldest event a stored record may still be replayed with.
CREATE INDEX records_by_state ON records (state, received_at);

-- Bytes each source keeps in R2 for the records a sender's input alone makes (quarantined
-- webhooks and events too large to deliver; not the dead letters of accepted events, which are
-- always kept), exact by the triggers below: the budget (RECORD_BUDGET_BYTES) is checked against
-- it before the edge stores a webhook's bytes, and the overview shows it with the records kept
-- past the budget as a row only.
CREATE TABLE record_bytes (
  source TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL,
  rows_only INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO record_bytes (source, bytes)
SELECT source, sum(coalesce(length(body), 0) + coalesce(length(CAST(message AS BLOB)), 0)) FROM records
WHERE kind = 'quarantine' OR reason = 'event-too-large' GROUP BY source;
-- (A deploy from before this migration still inserts bytes into body and message: counted too.)
CREATE TRIGGER record_bytes_added AFTER INSERT ON records
WHEN NEW.kind = 'quarantine' OR NEW.reason = 'event-too-large'
BEGIN
  INSERT INTO record_bytes (source, bytes, rows_only) VALUES (NEW.source, coalesce(NEW.object_length, 0)
    + coalesce(length(NEW.body), 0) + coalesce(length(CAST(NEW.message AS BLOB)), 0), NEW.holds = 'none')
  ON CONFLICT (source) DO UPDATE SET bytes = bytes + excluded.bytes, rows_only = rows_only + excluded.rows_only;
END;
CREATE TRIGGER record_bytes_removed AFTER DELETE ON records
WHEN OLD.kind = 'quarantine' OR OLD.reason = 'event-too-large'
BEGIN
  UPDATE record_bytes SET bytes = bytes - coalesce(OLD.object_length, 0)
    - coalesce(length(OLD.body), 0) - coalesce(length(CAST(OLD.message AS BLOB)), 0),
    rows_only = rows_only - (OLD.holds = 'none')
  WHERE source = OLD.source;
END;

-- Do-not-process as a history: every set and clear per visitor, by Pendo's event time. An event
-- is dropped if and only if the latest entry at or before its own time is a set (a set and a
-- clear at the same time: the set). Purged to what an event that can still be sent may need.
CREATE TABLE flag_history (
  source TEXT NOT NULL,
  visitor_hash TEXT NOT NULL,          -- SHA-256 of the visitor id, hex: no id in the clear
  event_time INTEGER NOT NULL,         -- Pendo's time of the flag event
  flagged INTEGER NOT NULL,            -- 1 set, 0 cleared
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (source, visitor_hash, event_time, flagged)
) WITHOUT ROWID;
INSERT INTO flag_history (source, visitor_hash, event_time, flagged, recorded_at)
SELECT source, visitor_hash, event_time, flagged, updated_at FROM flags;
-- flags is superseded: by flag_history; kept, and copied into it, for a deploy from before 0002.
-- A deploy from before this migration still writes `flags` until the new code is up.
CREATE TRIGGER flags_inserted AFTER INSERT ON flags
BEGIN
  INSERT OR IGNORE INTO flag_history VALUES (NEW.source, NEW.visitor_hash, NEW.event_time, NEW.flagged, NEW.updated_at);
END;
CREATE TRIGGER flags_updated AFTER UPDATE ON flags
BEGIN
  INSERT OR IGNORE INTO flag_history VALUES (NEW.source, NEW.visitor_hash, NEW.event_time, NEW.flagged, NEW.updated_at);
END;

-- One row per destination (profile, endpoint and write key; the id holds no key) that has failed
-- or been held: outage mode's state. Absent means open.
CREATE TABLE destinations (
  id TEXT PRIMARY KEY,                 -- <profile>-<first 12 hex of SHA-256(endpoint, key)>
  host TEXT NOT NULL,                  -- the endpoint's host, for the console
  -- open -> outage (failing for OUTAGE_AFTER_SECONDS: batches are parked) -> draining (a probe
  -- succeeded: parked batches go out in order) -> open; held by an operator until resumed.
  state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'outage', 'draining', 'held')),
  failing_since INTEGER,               -- first failure with no success since
  last_status INTEGER,
  outage_at INTEGER,                   -- when the current outage began (database clock, alerts)
  drained_at INTEGER,                  -- when the last parked batch went out (database clock, alerts)
  next_probe_at INTEGER NOT NULL DEFAULT 0,
  chain TEXT,                          -- the live probe/drain chain (a queue control message)
  chain_beat INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Parked batches, in arrival order per destination; the bytes are one R2 object each. A row and
-- an object per consumer batch, whatever it holds: the key is the primary key, so no index adds
-- a row written.
CREATE TABLE parked (
  destination TEXT NOT NULL,
  seq TEXT NOT NULL,                   -- <13-digit ms>-<random>: arrival order
  object_key TEXT NOT NULL,
  messages INTEGER NOT NULL,
  events INTEGER NOT NULL,             -- Segment calls
  bytes INTEGER NOT NULL,
  oldest_at INTEGER NOT NULL,          -- the earliest receivedAt of its messages
  claimed_until INTEGER NOT NULL DEFAULT 0, -- a drain is sending it until then
  created_at INTEGER NOT NULL,
  PRIMARY KEY (destination, seq)
) WITHOUT ROWID;

-- Archive replays: a time range of one source sent again, paced, resumable, cancellable.
CREATE TABLE replay_jobs (
  id TEXT PRIMARY KEY,                 -- <13-digit ms>-<random>
  source TEXT NOT NULL,
  range_from INTEGER NOT NULL,         -- receivedAt >= range_from
  range_to INTEGER NOT NULL,           -- receivedAt < range_to
  destination TEXT,                    -- a destination id, or NULL: each source's own
  state TEXT NOT NULL CHECK (state IN ('running', 'done', 'cancelled', 'failed')),
  cursor TEXT NOT NULL DEFAULT '',     -- the last archive object key fully sent
  total INTEGER NOT NULL,              -- events matching, counted when the job was made
  sent INTEGER NOT NULL DEFAULT 0,
  skipped INTEGER NOT NULL DEFAULT 0,  -- frames that could not be read or mapped
  chain TEXT NOT NULL,                 -- the live chain of steps (a queue control message)
  lease_until INTEGER NOT NULL DEFAULT 0, -- one step runs at a time
  failures INTEGER NOT NULL DEFAULT 0, -- steps in a row that could not enqueue; the job fails at 10
  detail TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
-- "Is a job already running for this source?" (two replays of one range are refused).
CREATE INDEX replay_jobs_by_state ON replay_jobs (state, source);
