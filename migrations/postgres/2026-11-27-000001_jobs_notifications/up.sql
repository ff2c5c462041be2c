-- Work that any lethe process sharing this store may do: request execution, retention runs
-- and notification deliveries. A worker claims a job with a lease (FOR UPDATE SKIP LOCKED on
-- PostgreSQL; SQLite's single writer serializes claims) and renews it while it works; a job
-- whose lease expired (its worker died) is claimed again by another worker.

CREATE TABLE jobs (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL,                        -- request.execute | retention.run | notify
  target TEXT NOT NULL,                      -- request id | rule name | notification id
  args TEXT NOT NULL,                        -- JSON arguments (retention: trigger, occurrence)
  dedupe_key TEXT,                           -- at most one job ever per key (scheduled occurrences)
  state TEXT NOT NULL,                       -- queued | running | done | failed
  run_after TIMESTAMP NOT NULL,
  lease_owner TEXT,
  lease_expires_at TIMESTAMP,
  attempts INTEGER NOT NULL,
  last_error TEXT,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP
);
-- One live job per target: enqueueing work that is already queued or running is a no-op.
CREATE UNIQUE INDEX jobs_live_target_idx ON jobs (kind, target) WHERE state IN ('queued', 'running');
CREATE UNIQUE INDEX jobs_dedupe_idx ON jobs (dedupe_key);
CREATE INDEX jobs_due_idx ON jobs (state, run_after);

-- Notices to processors and recipients (GDPR Art. 19, CCPA regulations 7022, 7026): one row
-- per request and recipient, with the delivery attempts and the acknowledgement.
CREATE TABLE notifications (
  id TEXT PRIMARY KEY NOT NULL,
  request_id TEXT NOT NULL,
  recipient TEXT NOT NULL,
  event TEXT NOT NULL,                       -- erasure | rectification | restriction
  url TEXT NOT NULL,
  body TEXT NOT NULL,                        -- the signed JSON notice (no raw identity values)
  status TEXT NOT NULL,                      -- pending | acknowledged | failed
  attempts INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  next_attempt_at TIMESTAMP,
  last_error TEXT,
  http_status INTEGER,
  ack_id TEXT,
  ack_body_sha256 TEXT,
  created_at TIMESTAMP NOT NULL,
  acknowledged_at TIMESTAMP,
  settled_at TIMESTAMP
);
CREATE UNIQUE INDEX notifications_request_recipient_idx ON notifications (request_id, recipient);
