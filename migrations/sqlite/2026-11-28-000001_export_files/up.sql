-- Exports at rest as encrypted files (src/export): the row keeps the metadata, the file
-- `<file_id>.json.sealed` (and `.zip.sealed`) in the export directory holds the data in the
-- chunked AES-256-GCM format. Rows written before this migration keep their sealed JSON in
-- `payload_enc` (file_id NULL) and stay downloadable until they expire.
CREATE TABLE exports_new (
  request_id TEXT PRIMARY KEY NOT NULL REFERENCES requests (id),
  kind TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  table_count INTEGER NOT NULL,
  row_count BIGINT NOT NULL,
  digest TEXT NOT NULL,                      -- sha256:<hex> of the plaintext JSON
  payload_enc BLOB,                          -- legacy: AES-256-GCM sealed JSON
  file_id TEXT,                              -- the export's files (NULL: legacy row)
  json_size BIGINT,                          -- plaintext bytes of the JSON
  csv_digest TEXT,                           -- sha256:<hex> of the plaintext CSV zip
  csv_size BIGINT,
  tables_json TEXT NOT NULL DEFAULT '[]',    -- records per table (no personal data)
  expires_at TIMESTAMP,                      -- NULL: legacy, created_at + LETHE_EXPORT_TTL_DAYS
  deleted_at TIMESTAMP                       -- files (or payload) deleted at expiry
);
INSERT INTO exports_new (request_id, kind, created_at, table_count, row_count, digest, payload_enc)
  SELECT request_id, kind, created_at, table_count, row_count, digest, payload_enc FROM exports;
DROP TABLE exports;
ALTER TABLE exports_new RENAME TO exports;
CREATE INDEX exports_expires_idx ON exports (expires_at);

-- Download links: the token (256 random bits) is shown once; only its SHA-256 is stored.
CREATE TABLE export_links (
  id TEXT PRIMARY KEY NOT NULL,              -- public id (audit log), not the token
  token_hash TEXT NOT NULL UNIQUE,           -- sha256 hex of the token
  request_id TEXT NOT NULL REFERENCES requests (id),
  export_file_id TEXT,                       -- the export it serves (NULL: legacy export)
  purpose TEXT NOT NULL,                     -- export-download
  format TEXT NOT NULL,                      -- json | csv
  created_by TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL,
  uses INTEGER NOT NULL DEFAULT 0,
  last_used_at TIMESTAMP
);
CREATE INDEX export_links_request_idx ON export_links (request_id);
CREATE INDEX export_links_expires_idx ON export_links (expires_at);
