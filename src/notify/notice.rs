//! The JSON body of a notice, and its builder.
//!
//! ```json
//! {"type":"lethe.notice","version":1,"id":"ntc-...","event":"erasure",
//!  "request_id":"...","regime":"gdpr","subject_ref":"hmac-sha256:...",
//!  "controller":{"name":"...","contact":"..."},"recipient":"mailer",
//!  "tables":[{"table":"contacts","action":"deleted","rows":1,"columns":[]}],
//!  "completed_at":"2026-01-01T00:00:00.000000Z","message":"...","ack_url":null}
//! ```
//!
//! A notice never carries identity values or changed values: the subject is named by the
//! keyed subject reference lethe computed when the request was created (the recipient
//! matches it against its own copy of the reference, or the controller tells it through
//! the usual channel which customer is meant), and a rectification lists the columns that
//! changed, not their new values (those are personal data: the recipient fetches the
//! corrected record through its normal integration). Serialization is deterministic: the
//! fields come in the order of the struct, tables are sorted and merged, columns sorted and
//! de-duplicated, and serde_json writes no whitespace.

use crate::policy::NoticeEvent;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The `type` of every notice.
pub const NOTICE_TYPE: &str = "lethe.notice";

/// The `version` of the notice format described here.
pub const NOTICE_VERSION: u32 = 1;

/// What happened to a table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableAction {
    /// The rows were deleted.
    Deleted,
    /// The rows were kept with their personal data replaced (the data map's strategies).
    Anonymized,
    /// The subject's identities were removed from free text in other people's rows.
    Redacted,
    /// Values in the listed columns were corrected.
    Rectified,
    /// The rows were marked as opted out of sale or sharing (restricted).
    Restricted,
}

impl TableAction {
    /// The name used in notices.
    pub fn as_str(self) -> &'static str {
        match self {
            TableAction::Deleted => "deleted",
            TableAction::Anonymized => "anonymized",
            TableAction::Redacted => "redacted",
            TableAction::Rectified => "rectified",
            TableAction::Restricted => "restricted",
        }
    }
}

impl fmt::Display for TableAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One table's part of a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeTable {
    /// The table's name in the data map.
    pub table: String,
    /// What was done to its rows.
    pub action: TableAction,
    /// How many of the subject's rows it concerned.
    pub rows: u64,
    /// The columns whose values changed (names only; empty for deleted rows).
    pub columns: Vec<String>,
}

/// The controller, as the recipient knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeController {
    /// The controller's name (`[controller] name`).
    pub name: String,
    /// Where to ask about the notice (`[controller] contact`).
    pub contact: String,
}

/// A notice to one recipient about one completed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Always [`NOTICE_TYPE`].
    #[serde(rename = "type")]
    pub notice_type: String,
    /// Always [`NOTICE_VERSION`].
    pub version: u32,
    /// The notice id, also sent as `Lethe-Notice-Id` (the receiver's idempotency key).
    pub id: String,
    /// What the request did.
    pub event: NoticeEvent,
    /// lethe's request id (quote it when asking the controller about the notice).
    pub request_id: String,
    /// The law the request was handled under (`gdpr`, `ccpa`, ...).
    pub regime: String,
    /// The keyed pseudonym of the subject (`hmac-sha256:<hex>`), never an identity value.
    pub subject_ref: String,
    /// Who sends the notice.
    pub controller: NoticeController,
    /// The recipient's name in the data map (`[recipients.<name>]`).
    pub recipient: String,
    /// The tables this recipient received data from, and what happened to them.
    pub tables: Vec<NoticeTable>,
    /// When the request's changes were complete (RFC 3339, UTC).
    pub completed_at: String,
    /// What the recipient is asked to do, in one or two sentences.
    pub message: String,
    /// Reserved for an acknowledgement URL; always `null` in version 1 (acknowledge in the
    /// HTTP response instead).
    pub ack_url: Option<String>,
}

/// The plain inputs of a notice (no `App`, no store): the caller gathers them.
#[derive(Debug, Clone)]
pub struct NoticeInput<'a> {
    /// The notice id (unique; stable across retries).
    pub id: &'a str,
    /// What the request did.
    pub event: NoticeEvent,
    /// The request id.
    pub request_id: &'a str,
    /// The regime's name (`RequestRow::regime`).
    pub regime: &'a str,
    /// The keyed subject reference (`hmac-sha256:<64 hex>`); anything else is refused.
    pub subject_ref: &'a str,
    /// `[controller] name`.
    pub controller_name: &'a str,
    /// `[controller] contact`.
    pub controller_contact: &'a str,
    /// The recipient's name in the data map.
    pub recipient: &'a str,
    /// The changed tables that list this recipient (merged and sorted by the builder).
    pub tables: Vec<NoticeTable>,
    /// When the changes were complete (UTC, as the store keeps times).
    pub completed_at: NaiveDateTime,
}

/// Why a notice could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// The subject reference is not a keyed pseudonym: refused so that an identity value
    /// can never leave lethe in a notice.
    #[error("the subject reference is not an hmac-sha256 pseudonym; refusing to send it")]
    SubjectRefNotPseudonym,
    /// A required text input is empty.
    #[error("the notice's {0} is empty")]
    Empty(&'static str),
}

/// Whether `s` has the shape of [`crate::crypto::subject_ref`]: `hmac-sha256:` and 64
/// lowercase hex digits.
pub fn is_subject_pseudonym(s: &str) -> bool {
    s.strip_prefix("hmac-sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The sentence telling the recipient what to do.
pub fn message_for(event: NoticeEvent) -> &'static str {
    match event {
        NoticeEvent::Erasure => {
            "The controller erased the personal data of this data subject listed under \
             `tables` at the subject's request. Erase the same data in your systems unless a \
             legal obligation requires you to keep it, and acknowledge this notice."
        }
        NoticeEvent::Rectification => {
            "The controller corrected the personal data of this data subject in the columns \
             listed under `tables`. The corrected values are personal data and are not part \
             of this notice: fetch the corrected record through your normal integration with \
             the controller and replace your copy."
        }
        NoticeEvent::Restriction => {
            "This data subject opted out of the sale or sharing of their personal \
             information (restriction of processing). Stop selling or sharing it and do not \
             use it beyond the services you provide to the controller."
        }
    }
}

impl Notice {
    /// Builds a notice from plain inputs. Tables with the same name and action are merged
    /// (rows added, columns united); tables are sorted by name then action, columns by
    /// name.
    pub fn build(input: NoticeInput<'_>) -> Result<Notice, NoticeError> {
        if !is_subject_pseudonym(input.subject_ref) {
            return Err(NoticeError::SubjectRefNotPseudonym);
        }
        for (what, value) in [
            ("id", input.id),
            ("request id", input.request_id),
            ("regime", input.regime),
            ("recipient", input.recipient),
        ] {
            if value.trim().is_empty() {
                return Err(NoticeError::Empty(what));
            }
        }
        let mut merged: BTreeMap<(String, TableAction), (u64, Vec<String>)> = BTreeMap::new();
        for t in input.tables {
            let entry = merged.entry((t.table, t.action)).or_default();
            entry.0 = entry.0.saturating_add(t.rows);
            entry.1.extend(t.columns);
        }
        let tables = merged
            .into_iter()
            .map(|((table, action), (rows, mut columns))| {
                columns.sort();
                columns.dedup();
                NoticeTable {
                    table,
                    action,
                    rows,
                    columns,
                }
            })
            .collect();
        Ok(Notice {
            notice_type: NOTICE_TYPE.to_string(),
            version: NOTICE_VERSION,
            id: input.id.to_string(),
            event: input.event,
            request_id: input.request_id.to_string(),
            regime: input.regime.to_string(),
            subject_ref: input.subject_ref.to_string(),
            controller: NoticeController {
                name: input.controller_name.to_string(),
                contact: input.controller_contact.to_string(),
            },
            recipient: input.recipient.to_string(),
            tables,
            completed_at: rfc3339_utc(&input.completed_at),
            message: message_for(input.event).to_string(),
            ack_url: None,
        })
    }

    /// The body as sent: compact JSON, the same bytes for the same notice.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| unreachable!("a notice has only strings, numbers and lists: {e}"))
    }

    /// Parses a notice body (receivers, tests).
    pub fn from_json(body: &[u8]) -> Result<Notice, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// RFC 3339 in UTC at microsecond precision, as certificates and the audit log write times.
fn rfc3339_utc(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    const SUBJECT: &str =
        "hmac-sha256:3f0c8a4b1d2e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    fn completed() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, 2)
            .and_then(|d| d.and_hms_micro_opt(3, 4, 5, 678_901))
            .expect("a valid time")
    }

    fn table(name: &str, action: TableAction, rows: u64, columns: &[&str]) -> NoticeTable {
        NoticeTable {
            table: name.to_string(),
            action,
            rows,
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn input(event: NoticeEvent, tables: Vec<NoticeTable>) -> NoticeInput<'static> {
        NoticeInput {
            id: "ntc-0001",
            event,
            request_id: "0190a5f2-7c1e-7a00-8000-000000000001",
            regime: "gdpr",
            subject_ref: SUBJECT,
            controller_name: "Northwind Demo GmbH",
            controller_contact: "privacy@northwind.example",
            recipient: "mailer",
            tables,
            completed_at: completed(),
        }
    }

    #[test]
    fn erasure_notice_serializes_exactly() {
        let n = Notice::build(input(
            NoticeEvent::Erasure,
            vec![
                table("newsletter", TableAction::Deleted, 1, &[]),
                table("contacts", TableAction::Anonymized, 1, &["phone", "email"]),
            ],
        ))
        .expect("builds");
        let expected = format!(
            concat!(
                r#"{{"type":"lethe.notice","version":1,"id":"ntc-0001","event":"erasure","#,
                r#""request_id":"0190a5f2-7c1e-7a00-8000-000000000001","regime":"gdpr","#,
                r#""subject_ref":"{subject}","#,
                r#""controller":{{"name":"Northwind Demo GmbH","contact":"privacy@northwind.example"}},"#,
                r#""recipient":"mailer","tables":["#,
                r#"{{"table":"contacts","action":"anonymized","rows":1,"columns":["email","phone"]}},"#,
                r#"{{"table":"newsletter","action":"deleted","rows":1,"columns":[]}}],"#,
                r#""completed_at":"2026-01-02T03:04:05.678901Z","message":"{message}","ack_url":null}}"#
            ),
            subject = SUBJECT,
            message = message_for(NoticeEvent::Erasure),
        );
        assert_eq!(n.to_json(), expected);
    }

    #[test]
    fn serialization_is_deterministic_and_round_trips() {
        let a = Notice::build(input(
            NoticeEvent::Erasure,
            vec![
                table("b", TableAction::Deleted, 2, &[]),
                table("a", TableAction::Redacted, 1, &["note", "body"]),
            ],
        ))
        .expect("builds");
        let b = Notice::build(input(
            NoticeEvent::Erasure,
            vec![
                table("a", TableAction::Redacted, 1, &["body", "note"]),
                table("b", TableAction::Deleted, 2, &[]),
            ],
        ))
        .expect("builds");
        assert_eq!(a.to_json(), b.to_json());
        let parsed = Notice::from_json(a.to_json().as_bytes()).expect("parses");
        assert_eq!(parsed, a);
    }

    #[test]
    fn same_table_and_action_are_merged() {
        let n = Notice::build(input(
            NoticeEvent::Erasure,
            vec![
                table("notes", TableAction::Redacted, 2, &["body"]),
                table("notes", TableAction::Redacted, 3, &["body", "title"]),
                table("notes", TableAction::Deleted, 1, &[]),
            ],
        ))
        .expect("builds");
        assert_eq!(
            n.tables,
            vec![
                table("notes", TableAction::Deleted, 1, &[]),
                table("notes", TableAction::Redacted, 5, &["body", "title"]),
            ]
        );
    }

    #[test]
    fn rectification_names_columns_not_values() {
        let n = Notice::build(input(
            NoticeEvent::Rectification,
            vec![table(
                "contacts",
                TableAction::Rectified,
                1,
                &["last_name", "email"],
            )],
        ))
        .expect("builds");
        let json = n.to_json();
        assert!(json.contains(r#""event":"rectification""#));
        assert!(json.contains(r#""action":"rectified","rows":1,"columns":["email","last_name"]"#));
        assert!(n.message.contains("fetch the corrected record"));
        assert!(n.message.contains("not part of this notice"));
    }

    #[test]
    fn restriction_notice() {
        let n = Notice::build(input(
            NoticeEvent::Restriction,
            vec![table(
                "contacts",
                TableAction::Restricted,
                1,
                &["do_not_sell"],
            )],
        ))
        .expect("builds");
        assert!(n.to_json().contains(r#""event":"restriction""#));
        assert!(n.message.contains("Stop selling or sharing"));
    }

    #[test]
    fn raw_identities_are_refused() {
        for bad in [
            "jane@example.com",
            "hmac-sha256:",
            "hmac-sha256:XYZ",
            "3f0c8a4b1d2e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
            "hmac-sha256:3F0C8A4B1D2E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8",
        ] {
            let mut i = input(NoticeEvent::Erasure, Vec::new());
            i.subject_ref = bad;
            assert_eq!(
                Notice::build(i),
                Err(NoticeError::SubjectRefNotPseudonym),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_inputs_are_refused() {
        let mut i = input(NoticeEvent::Erasure, Vec::new());
        i.recipient = " ";
        assert_eq!(Notice::build(i), Err(NoticeError::Empty("recipient")));
        let mut i = input(NoticeEvent::Erasure, Vec::new());
        i.id = "";
        assert_eq!(Notice::build(i), Err(NoticeError::Empty("id")));
    }

    #[test]
    fn action_names() {
        for (a, s) in [
            (TableAction::Deleted, "deleted"),
            (TableAction::Anonymized, "anonymized"),
            (TableAction::Redacted, "redacted"),
            (TableAction::Rectified, "rectified"),
            (TableAction::Restricted, "restricted"),
        ] {
            assert_eq!(a.as_str(), s);
            assert_eq!(
                serde_json::to_string(&a).expect("serializes"),
                format!("\"{s}\"")
            );
        }
    }
}
