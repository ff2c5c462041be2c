DROP TABLE export_links;
DROP INDEX exports_expires_idx;
CREATE TABLE exports_old (
  request_id TEXT PRIMARY KEY NOT NULL REFERENCES requests (id),
  kind TEXT NOT NULL,
  created_at TIMESTAMP NOT NULL,
  table_count INTEGER NOT NULL,
  row_count BIGINT NOT NULL,
  digest TEXT NOT NULL,
  payload_enc BLOB NOT NULL
);
INSERT INTO exports_old (request_id, kind, created_at, table_count, row_count, digest, payload_enc)
  SELECT request_id, kind, created_at, table_count, row_count, digest, payload_enc FROM exports
  WHERE payload_enc IS NOT NULL;
DROP TABLE exports;
ALTER TABLE exports_old RENAME TO exports;
