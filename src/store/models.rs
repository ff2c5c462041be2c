//! Row types of the engine store.

use super::schema::*;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: String,
    pub token_hash: String,
    pub role: String,
    pub label: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = requests, treat_none_as_null = true)]
pub struct RequestRow {
    pub id: String,
    pub kind: String,
    pub regime: String,
    pub state: String,
    pub channel: String,
    pub subject_ref: String,
    pub identities_enc: Vec<u8>,
    pub identity_summary: String,
    pub received_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub acknowledge_by: Option<NaiveDateTime>,
    pub extended_due_at: Option<NaiveDateTime>,
    pub verified_at: Option<NaiveDateTime>,
    pub verification: Option<String>,
    pub completed_at: Option<NaiveDateTime>,
    pub state_reason: Option<String>,
    pub note: Option<String>,
    pub policy_digest: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub extension_reason: Option<String>,
    pub extension_notice: Option<String>,
    pub extended_at: Option<NaiveDateTime>,
    pub details_enc: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = request_events)]
pub struct EventRow {
    pub request_id: String,
    pub seq: i32,
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub reason: Option<String>,
    pub details: String,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = exports)]
pub struct ExportRow {
    pub request_id: String,
    pub kind: String,
    pub created_at: NaiveDateTime,
    pub table_count: i32,
    pub row_count: i64,
    pub digest: String,
    /// Exports made before files (sealed JSON); `None` for file exports.
    pub payload_enc: Option<Vec<u8>>,
    /// The export's files in the export directory (`None`: a sealed payload above).
    pub file_id: Option<String>,
    pub json_size: Option<i64>,
    pub csv_digest: Option<String>,
    pub csv_size: Option<i64>,
    /// Records per table, JSON (no personal data).
    pub tables_json: String,
    pub expires_at: Option<NaiveDateTime>,
    /// When the files (or payload) were deleted at expiry.
    pub deleted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = export_links)]
pub struct ExportLinkRow {
    pub id: String,
    pub token_hash: String,
    pub request_id: String,
    pub export_file_id: Option<String>,
    pub purpose: String,
    pub format: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub uses: i32,
    pub last_used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = holds)]
pub struct HoldRow {
    pub id: String,
    pub scope: String,
    pub subject_refs: Option<String>,
    pub identities_enc: Option<Vec<u8>>,
    pub identity_summary: Option<String>,
    pub table_name: Option<String>,
    pub row_keys: Option<String>,
    pub matter: String,
    pub reason: String,
    pub ground: String,
    pub issued_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub released_at: Option<NaiveDateTime>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = plans)]
pub struct PlanRow {
    pub request_id: String,
    pub created_at: NaiveDateTime,
    pub digest: String,
    pub summary: String,
    pub plan_enc: Vec<u8>,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = erasure_steps)]
pub struct StepRow {
    pub request_id: String,
    pub source: String,
    pub status: String,
    pub result: String,
    pub finished_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub public_key: String,
    pub secret_enc: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = certificates)]
pub struct CertificateRow {
    pub id: String,
    pub kind: String,
    pub request_id: Option<String>,
    pub run_id: Option<String>,
    pub kid: String,
    pub issued_at: NaiveDateTime,
    pub jws: String,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = audit_checkpoints)]
pub struct CheckpointRow {
    pub seq: i64,
    pub hash: String,
    pub signed_at: NaiveDateTime,
    pub kid: String,
    pub jws: String,
}

#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = retention_runs, treat_none_as_null = true)]
pub struct RunRow {
    pub id: String,
    pub rule: String,
    pub status: String,
    pub trigger_kind: String,
    pub at_time: NaiveDateTime,
    pub cutoff: NaiveDateTime,
    pub policy_digest: String,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub heartbeat_at: NaiveDateTime,
    pub owner: String,
    pub last_key: Option<String>,
    pub pending: Option<String>,
    pub batches: i32,
    pub rows_deleted: i64,
    pub rows_anonymized: i64,
    pub rows_held: i64,
    pub per_table: String,
    pub longest_batch_ms: i64,
    pub error: Option<String>,
    pub certificate_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = web_sessions)]
pub struct WebSessionRow {
    pub id: String,
    pub token_id: String,
    pub role: String,
    pub label: String,
    pub csrf: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// A unit of background work (see `crate::jobs`).
#[derive(Debug, Clone, Queryable, QueryableByName, Insertable, Selectable)]
#[diesel(table_name = jobs)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub args: String,
    pub dedupe_key: Option<String>,
    pub state: String,
    pub run_after: NaiveDateTime,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

/// A notice to one recipient about one request, with its delivery state.
#[derive(Debug, Clone, Queryable, Insertable, AsChangeset, Selectable)]
#[diesel(table_name = notifications, treat_none_as_null = true)]
pub struct NotificationRow {
    pub id: String,
    pub request_id: String,
    pub recipient: String,
    pub event: String,
    pub url: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub http_status: Option<i32>,
    pub ack_id: Option<String>,
    pub ack_body_sha256: Option<String>,
    pub created_at: NaiveDateTime,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub settled_at: Option<NaiveDateTime>,
}
