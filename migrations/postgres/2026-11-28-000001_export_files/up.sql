-- Exports at rest as encrypted files (src/export): the row keeps the metadata, the file
-- `<file_id>.json.sealed` (and `.zip.sealed`) in the export directory holds the data in the
-- chunked AES-256-GCM format. Rows written before this migration keep their sealed JSON in
-- `payload_enc` (file_id NULL) and stay downloadable until they expire.
ALTER TABLE exports ALTER COLUMN payload_enc DROP NOT NULL;
ALTER TABLE exports ADD COLUMN file_id TEXT;
ALTER TABLE exports ADD COLUMN json_size BIGINT;
ALTER TABLE exports ADD COLUMN csv_digest TEXT;
ALTER TABLE exports ADD COLUMN csv_size BIGINT;
ALTER TABLE exports ADD COLUMN tables_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE exports ADD COLUMN expires_at TIMESTAMP;
ALTER TABLE exports ADD COLUMN deleted_at TIMESTAMP;
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
