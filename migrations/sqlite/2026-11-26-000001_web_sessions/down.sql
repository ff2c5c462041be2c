DROP INDEX requests_completed_idx;
DROP INDEX requests_due_idx;
DROP TABLE web_sessions;
