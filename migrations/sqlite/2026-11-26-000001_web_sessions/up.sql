-- Web UI sessions. The cookie carries a random secret; only its SHA-256 is stored. A session
-- belongs to the API token used to sign in and ends at its expiry, at sign-out, or when that
-- token is revoked or expires. `csrf` is the per-session token every form must echo.

CREATE TABLE web_sessions (
  id TEXT PRIMARY KEY NOT NULL,              -- sha256 hex of the cookie secret
  token_id TEXT NOT NULL,
  role TEXT NOT NULL,
  label TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL
);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);
CREATE INDEX requests_due_idx ON requests (due_at);
CREATE INDEX requests_completed_idx ON requests (completed_at);
