-- Erasure workflow, legal holds, signing keys, certificates and audit checkpoints.

ALTER TABLE requests ADD COLUMN extension_reason TEXT;
ALTER TABLE requests ADD COLUMN extension_notice TEXT;
ALTER TABLE requests ADD COLUMN extended_at TIMESTAMP;
ALTER TABLE requests ADD COLUMN details_enc BYTEA;          -- sealed: rectification changes, denial notice

CREATE TABLE holds (
  id TEXT PRIMARY KEY NOT NULL,
  scope TEXT NOT NULL,                        -- subject | table | rows
  subject_refs TEXT,                          -- JSON list of per-identity HMACs (scope subject)
  identities_enc BYTEA,                        -- sealed identities (scope subject)
  identity_summary TEXT,
  table_name TEXT,                            -- scope table | rows
  row_keys TEXT,                              -- JSON list of keys (scope rows)
  matter TEXT NOT NULL,
  reason TEXT NOT NULL,
  ground TEXT NOT NULL,                       -- legal_claims | legal_obligation | ...
  issued_by TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP,
  released_at TIMESTAMP,
  released_by TEXT,
  release_reason TEXT
);

CREATE TABLE plans (
  request_id TEXT PRIMARY KEY NOT NULL REFERENCES requests (id),
  created_at TIMESTAMP NOT NULL,
  digest TEXT NOT NULL,                       -- SHA-256 of the plaintext plan
  summary TEXT NOT NULL,                      -- JSON without personal data
  plan_enc BYTEA NOT NULL                      -- sealed plan (pinned keys, values, identities)
);

CREATE TABLE erasure_steps (
  request_id TEXT NOT NULL REFERENCES requests (id),
  source TEXT NOT NULL,
  status TEXT NOT NULL,                       -- done
  result TEXT NOT NULL,                       -- JSON per-table counts
  finished_at TIMESTAMP NOT NULL,
  PRIMARY KEY (request_id, source)
);

CREATE TABLE subject_keys (
  request_id TEXT PRIMARY KEY NOT NULL,
  key_enc BYTEA,                               -- NULL once shredded
  created_at TIMESTAMP NOT NULL,
  shredded_at TIMESTAMP
);

CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY NOT NULL,
  public_key TEXT NOT NULL,                   -- base64url Ed25519 public key
  secret_enc BYTEA NOT NULL,                   -- sealed secret key
  created_at TIMESTAMP NOT NULL,
  retired_at TIMESTAMP
);

CREATE TABLE certificates (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL,
  request_id TEXT,
  run_id TEXT,
  kid TEXT NOT NULL,
  issued_at TIMESTAMP NOT NULL,
  jws TEXT NOT NULL
);
CREATE INDEX certificates_request_idx ON certificates (request_id);

CREATE TABLE audit_checkpoints (
  seq BIGINT PRIMARY KEY NOT NULL,
  hash TEXT NOT NULL,
  signed_at TIMESTAMP NOT NULL,
  kid TEXT NOT NULL,
  jws TEXT NOT NULL
);
