-- The ledger: everything the relay remembers except the edge's dedup markers (those stay in KV).
-- Applied by `wrangler d1 migrations apply pendo-segment-relay-ledger --local|--remote`, by
-- `npm start` and by the tests. Never edit a migration that has landed: add the next one.
-- Times are Unix milliseconds. Each index names the query it serves; every index costs one more
-- row written per row changed (D1 pricing), so there are few.

-- Dead letters (accepted, not delivered) and quarantined webhooks (authenticated, invalid).
CREATE TABLE records (
  id TEXT PRIMARY KEY,                 -- <13-digit ms>-<source>.<eventId>.<random>, time-ordered
  kind TEXT NOT NULL CHECK (kind IN ('dead-letters', 'quarantine')),
  -- stored -> replaying (claimed by one replay) -> row deleted once sent; back to stored if not.
  state TEXT NOT NULL DEFAULT 'stored' CHECK (state IN ('stored', 'replaying')),
  reason TEXT NOT NULL,                -- a dead-letter reason, or 'invalid' for quarantine
  source TEXT NOT NULL,
  event TEXT NOT NULL,                 -- the Pendo event name, '' when unreadable
  event_id TEXT NOT NULL,              -- Pendo's uniqueId (or the body's SHA-1)
  attempts INTEGER NOT NULL,
  last_status INTEGER,
  detail TEXT NOT NULL,                -- the destination's answer or the failure, at most 2 KB
  issues TEXT,                         -- quarantine: JSON [{path, message}]
  received_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  body BLOB,                           -- the bytes as received: a raw webhook or a malformed message
  message TEXT,                        -- the queued relay message (text encoding), replayed as is
  claimed_at INTEGER,                  -- when a replay claimed it (a claim expires: src/ledger/records.ts)
  -- The database's own clock when the row was written: alerts read "since the last alert" by it,
  -- so a row written late by a slow batch is never behind a window already reported.
  stored_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
-- Console list, "replay all matching" pages, purge by age.
CREATE INDEX records_by_time ON records (kind, created_at);
-- Counts by reason (summary) and the reason filter.
CREATE INDEX records_by_reason ON records (kind, reason, created_at);
-- "What happened to this uniqueId?"
CREATE INDEX records_by_event_id ON records (event_id);
-- Alerts: what a source stored since the last alert of its kind.
CREATE INDEX records_by_source ON records (kind, source, stored_at);

-- Do-not-process flags, ordered by Pendo's event time: an older update never wins.
CREATE TABLE flags (
  source TEXT NOT NULL,
  visitor_hash TEXT NOT NULL,          -- SHA-256 of the visitor id, hex: no id in the clear
  flagged INTEGER NOT NULL,            -- 1 set, 0 cleared (kept, so a late "set" cannot win)
  event_time INTEGER NOT NULL,         -- Pendo's time of the flag event that decided this row
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (source, visitor_hash)
) WITHOUT ROWID;

-- What Pendo sends that the catalog does not know: bounded per source (src/ledger/drift.ts).
CREATE TABLE drift (
  source TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('event', 'property')),
  event TEXT NOT NULL,                 -- at most 100 characters
  key TEXT NOT NULL DEFAULT '',        -- the property key, at most 100 characters
  first_seen INTEGER NOT NULL,         -- the database's clock (see records.stored_at)
  last_seen INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (source, kind, event, key)
) WITHOUT ROWID;
-- Eviction of the least recently seen entry when a source is at its cap; new names for alerts.
CREATE INDEX drift_by_recency ON drift (source, last_seen);

-- Per source: drift entries that gave way to newer ones (for alerts and the console).
CREATE TABLE drift_evictions (
  source TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  last_at INTEGER NOT NULL
);

-- One row per (source, alert kind): what was last sent and when the next may go.
CREATE TABLE alerts (
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  covered_to INTEGER NOT NULL DEFAULT 0,  -- occurrences stored up to this time (database clock) were in a sent alert
  next_at INTEGER NOT NULL DEFAULT 0,     -- no attempt before this (interval, or send backoff)
  claimed_until INTEGER NOT NULL DEFAULT 0, -- one isolate is sending until then
  failures INTEGER NOT NULL DEFAULT 0,    -- consecutive failed sends
  held INTEGER NOT NULL DEFAULT 0,        -- occurrences counted while sends failed
  sent_at INTEGER,
  sent_count INTEGER,
  sent_text TEXT,                         -- the last alert's text, at most 600 characters
  PRIMARY KEY (source, kind)
) WITHOUT ROWID;

-- How the destination has been answering, per source (delivery-failing / -recovered alerts).
CREATE TABLE delivery (
  source TEXT PRIMARY KEY,
  last_success_at INTEGER,
  last_failure_at INTEGER,
  last_status INTEGER,
  failing_since INTEGER,
  failing_alerted_at INTEGER,
  recovered_at INTEGER
);

-- Events per hour and source, by event name and outcome: one row per (hour, source), its events a
-- JSON object {"<event>": [delivered, deadLettered, dropped, refused, lastSeen]} merged in SQL, so
-- a consumer batch writes one row whatever it holds. Unknown event names count under '(unknown)'
-- so that a sender cannot grow a row with invented names.
CREATE TABLE counts (
  hour INTEGER NOT NULL,               -- floor(ms / 3,600,000)
  source TEXT NOT NULL,
  events TEXT NOT NULL,
  PRIMARY KEY (hour, source)           -- the overview's range scan by hour, and the purge
) WITHOUT ROWID;
