-- lethe engine store, PostgreSQL. Times are UTC.

CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the token; the token is never stored
  role TEXT NOT NULL,
  label TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP,
  revoked_at TIMESTAMP,
  last_used_at TIMESTAMP
);

CREATE TABLE requests (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL,
  regime TEXT NOT NULL,
  state TEXT NOT NULL,
  channel TEXT NOT NULL,
  subject_ref TEXT NOT NULL,                 -- HMAC of the normalized identities
  identities_enc BYTEA NOT NULL,              -- AES-256-GCM sealed identities
  identity_summary TEXT NOT NULL,            -- masked, for lists
  received_at TIMESTAMP NOT NULL,
  due_at TIMESTAMP NOT NULL,
  acknowledge_by TIMESTAMP,
  extended_due_at TIMESTAMP,
  verified_at TIMESTAMP,
  verification TEXT,                         -- JSON: method, note, by
  completed_at TIMESTAMP,
  state_reason TEXT,
  note TEXT,
  policy_digest TEXT,
  created_by TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL,
  version BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX requests_state_due_idx ON requests (state, due_at);
CREATE INDEX requests_received_idx ON requests (received_at);
CREATE INDEX requests_subject_idx ON requests (subject_ref);

CREATE TABLE request_events (
  request_id TEXT NOT NULL REFERENCES requests (id),
  seq INTEGER NOT NULL,
  at TIMESTAMP NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  reason TEXT,
  details TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (request_id, seq)
);

CREATE TABLE exports (
  request_id TEXT PRIMARY KEY NOT NULL REFERENCES requests (id),
  kind TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  table_count INTEGER NOT NULL,
  row_count BIGINT NOT NULL,
  digest TEXT NOT NULL,                      -- SHA-256 of the plaintext JSON
  payload_enc BYTEA NOT NULL                  -- AES-256-GCM sealed JSON
);

CREATE TABLE audit_log (
  seq BIGINT PRIMARY KEY NOT NULL,
  at TIMESTAMP NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object TEXT NOT NULL,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);

-- The chain's head, updated in the same transaction as each append (serializes appends).
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
