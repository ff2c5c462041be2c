-- Retention runs (one row per run, with its progress) and the per-rule leases that keep
-- two lethe processes from running the same rule at once.

CREATE TABLE retention_runs (
  id TEXT PRIMARY KEY NOT NULL,
  rule TEXT NOT NULL,
  status TEXT NOT NULL,                      -- running | completed | partial | failed
  trigger_kind TEXT NOT NULL,                -- schedule | cli | api
  at_time TIMESTAMP NOT NULL,                -- the run's "now" (the cutoff is computed from it)
  cutoff TIMESTAMP NOT NULL,
  policy_digest TEXT NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP,
  heartbeat_at TIMESTAMP NOT NULL,
  owner TEXT NOT NULL,
  last_key TEXT,                             -- JSON key of the last parent row handled
  pending TEXT,                              -- JSON intent of the batch being committed
  batches INTEGER NOT NULL,
  rows_deleted BIGINT NOT NULL,
  rows_anonymized BIGINT NOT NULL,
  rows_held BIGINT NOT NULL,
  per_table TEXT NOT NULL,                   -- JSON {table: {deleted, anonymized, held}}
  longest_batch_ms BIGINT NOT NULL,
  error TEXT,
  certificate_id TEXT
);
CREATE INDEX retention_runs_rule_idx ON retention_runs (rule, started_at);

CREATE TABLE retention_leases (
  rule TEXT PRIMARY KEY NOT NULL,
  owner TEXT NOT NULL,
  run_id TEXT,
  expires_at TIMESTAMP NOT NULL
);
