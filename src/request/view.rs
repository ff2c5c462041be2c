//! How a request is shown over the API: deadlines computed, identities shown to officers
//! and masked for auditors, the actions allowed now.

use super::model::{RequestKind, RequestState, Role};
use super::workflow;
use crate::audit::format_time;
use crate::policy::DataMap;
use crate::store::models::{EventRow, ExportRow, RequestRow};
use crate::trace::Identity;
use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A request's deadlines (UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlineView {
    pub due_at: String,
    pub acknowledge_by: Option<String>,
    pub extended_due_at: Option<String>,
    /// The deadline in force (the extended one if extended).
    pub effective_due_at: String,
    /// Whole days left until the effective deadline (negative when overdue).
    pub days_left: i64,
    pub overdue: bool,
}

/// One identity of the subject: the value for officers, a mask for everyone.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    pub kind: String,
    /// The value for officers; absent for auditors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub masked: String,
}

/// One workflow event of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub seq: i32,
    pub at: String,
    pub actor: String,
    pub action: String,
    #[schema(value_type = Option<RequestState>)]
    pub from_state: Option<String>,
    #[schema(value_type = RequestState)]
    pub to_state: String,
    pub reason: Option<String>,
    /// The action's details (free-form; never identity values).
    #[schema(value_type = Option<Object>)]
    pub details: Value,
}

/// The stored export of a completed access or portability request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportView {
    pub created_at: String,
    pub tables: i32,
    pub records: i64,
    /// `sha256:<hex>` of the JSON download (the access certificate records it).
    pub digest: String,
    /// When the export is deleted (absent for exports made before expiries were recorded).
    pub expires_at: Option<String>,
    /// Whether it can still be downloaded (false once expired or deleted).
    pub available: bool,
    /// When it was deleted at expiry.
    pub deleted_at: Option<String>,
    /// `POST` here for a download link (`GET /exports/<token>`).
    pub links_url: String,
}

/// A data-subject request as the API shows it. Lists leave out the detail fields
/// (`identities`, `events`, `export`, `certificates`, `plan_url`, `notifications`, `job`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    #[schema(value_type = RequestKind)]
    pub kind: String,
    #[schema(value_type = super::model::Regime)]
    pub regime: String,
    #[schema(value_type = RequestState)]
    pub state: String,
    #[schema(value_type = super::model::Channel)]
    pub channel: String,
    pub received_at: String,
    pub deadline: DeadlineView,
    pub identity_summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<IdentityView>>,
    pub subject_ref: String,
    /// How the identity was verified, once it is.
    #[schema(value_type = Option<VerificationView>)]
    pub verification: Option<Value>,
    pub completed_at: Option<String>,
    pub state_reason: Option<String>,
    pub note: Option<String>,
    pub policy_digest: Option<String>,
    pub allowed_actions: Vec<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<ExtensionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<CertificateRef>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_url: Option<String>,
    /// Notices to processors and recipients, with their delivery state and acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<NoticeView>>)]
    pub notifications: Option<Value>,
    /// The background job running this request, when one is queued or running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobView>,
}

/// A deadline extension.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionView {
    pub extended_at: String,
    pub reason: Option<String>,
    pub notice: Option<String>,
}

/// A certificate issued for a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateRef {
    pub id: String,
    pub kind: String,
    pub issued_at: String,
    pub url: String,
}

/// The background job of a request (`request.execute`) while one is queued or running.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    /// queued | running | done | failed
    pub state: String,
    pub attempts: i32,
    /// When the job may run next (UTC).
    pub run_after: String,
    /// Why the last attempt did not finish (e.g. a source was down).
    pub last_error: Option<String>,
}

/// Schema of the stored verification record (`verification`); the record itself is kept
/// as JSON, so this type only documents it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VerificationView {
    /// How the identity was verified.
    method: String,
    note: Option<String>,
    /// The actor who verified it.
    by: String,
    at: String,
}

/// Schema of one notice in `notifications` (built by `request::notices::summary`): no URL,
/// no body; the notice's digest lets the recipient's copy be matched.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NoticeView {
    notice_id: String,
    recipient: String,
    recipient_name: Option<String>,
    /// processor | recipient (as the data map says)
    recipient_kind: Option<String>,
    event: String,
    notice_sha256: String,
    /// pending | acknowledged | failed
    status: String,
    attempts: i32,
    http_status: Option<i32>,
    ack_id: Option<String>,
    acknowledged_at: Option<String>,
    error: Option<String>,
}

pub fn deadline_view(row: &RequestRow, now: NaiveDateTime) -> DeadlineView {
    let effective = row.extended_due_at.unwrap_or(row.due_at);
    let state = RequestState::parse(&row.state);
    let open = state.is_some_and(RequestState::is_open);
    let days_left = (effective.date() - now.date()).num_days();
    DeadlineView {
        due_at: format_time(&row.due_at),
        acknowledge_by: row.acknowledge_by.as_ref().map(format_time),
        extended_due_at: row.extended_due_at.as_ref().map(format_time),
        effective_due_at: format_time(&effective),
        days_left,
        overdue: open && now > effective,
    }
}

/// Identities for display: values only for roles that may act, masks for everyone.
pub fn identity_views(map: &DataMap, ids: &[Identity], role: Role) -> Vec<IdentityView> {
    ids.iter()
        .map(|i| IdentityView {
            kind: i.kind.clone(),
            value: role.can_write().then(|| i.value.clone()),
            masked: map
                .normalizer(&i.kind)
                .map_or_else(|| "***".to_string(), |n| n.mask(&i.value)),
        })
        .collect()
}

/// Builds the view.
pub fn request_view(
    row: &RequestRow,
    role: Role,
    identities: Option<Vec<IdentityView>>,
    events: Option<Vec<EventRow>>,
    export: Option<&ExportRow>,
    now: NaiveDateTime,
) -> RequestView {
    let allowed = match (
        RequestKind::parse(&row.kind),
        RequestState::parse(&row.state),
    ) {
        (Some(k), Some(s)) if role.can_write() => workflow::allowed(k, s)
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        _ => Vec::new(),
    };
    RequestView {
        id: row.id.clone(),
        kind: row.kind.clone(),
        regime: row.regime.clone(),
        state: row.state.clone(),
        channel: row.channel.clone(),
        received_at: format_time(&row.received_at),
        deadline: deadline_view(row, now),
        identity_summary: row.identity_summary.clone(),
        identities,
        subject_ref: row.subject_ref.clone(),
        verification: row
            .verification
            .as_deref()
            .and_then(|v| serde_json::from_str(v).ok()),
        completed_at: row.completed_at.as_ref().map(format_time),
        state_reason: row.state_reason.clone(),
        note: row.note.clone(),
        policy_digest: row.policy_digest.clone(),
        allowed_actions: allowed,
        created_by: row.created_by.clone(),
        created_at: format_time(&row.created_at),
        updated_at: format_time(&row.updated_at),
        events: events.map(|evs| {
            evs.into_iter()
                .map(|e| EventView {
                    seq: e.seq,
                    at: format_time(&e.at),
                    actor: e.actor,
                    action: e.action,
                    from_state: e.from_state,
                    to_state: e.to_state,
                    reason: e.reason,
                    details: serde_json::from_str(&e.details).unwrap_or(Value::Null),
                })
                .collect()
        }),
        extension: row.extended_at.as_ref().map(|at| ExtensionView {
            extended_at: format_time(at),
            reason: row.extension_reason.clone(),
            notice: row.extension_notice.clone(),
        }),
        certificates: None,
        plan_url: None,
        notifications: None,
        job: None,
        export: export.map(|x| ExportView {
            created_at: format_time(&x.created_at),
            tables: x.table_count,
            records: x.row_count,
            digest: x.digest.clone(),
            expires_at: x.expires_at.as_ref().map(format_time),
            available: x.deleted_at.is_none() && x.expires_at.is_none_or(|e| e > now),
            deleted_at: x.deleted_at.as_ref().map(format_time),
            links_url: format!("/api/v1/requests/{}/export-links", row.id),
        }),
    }
}
