DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE exports;
DROP TABLE request_events;
DROP TABLE requests;
DROP TABLE api_tokens;
