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
    pub payload_enc: Vec<u8>,
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
