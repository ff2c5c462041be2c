//! The append-only, hash-chained audit log.
//!
//! Each entry's hash is `SHA-256(prev_hash || canonical_json(entry))`, where `prev_hash` is
//! the previous entry's 32-byte hash (all zeros before the first) and the entry is
//! `{seq, at, actor, action, object, details}` in RFC 8785 canonical JSON. Editing,
//! deleting or reordering any entry breaks the chain at that entry.
//!
//! Architecture invariant: entries never contain raw identity values; callers pass request
//! ids, kinds, counts and subject references only.

use crate::cert::canonical::to_canonical;
use crate::store::models::AuditRow;
use crate::store::schema::{audit_head, audit_log};
use crate::store::{StoreConn, StoreError, now};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn format_time(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The hash of an entry given its predecessor's hash.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: &NaiveDateTime,
    actor: &str,
    action: &str,
    object: &str,
    details: &Value,
) -> String {
    let entry = json!({
        "seq": seq,
        "at": format_time(at),
        "actor": actor,
        "action": action,
        "object": object,
        "details": details,
    });
    let mut h = Sha256::new();
    h.update(hex::decode(prev_hash).unwrap_or_else(|_| prev_hash.as_bytes().to_vec()));
    h.update(to_canonical(&entry).as_bytes());
    hex::encode(h.finalize())
}

/// Appends an entry inside the caller's transaction.
pub fn append(
    conn: &mut StoreConn,
    actor: &str,
    action: &str,
    object: &str,
    details: Value,
) -> Result<AuditRow, StoreError> {
    // Bumping the head first locks it (PostgreSQL row lock; SQLite write transaction), so
    // concurrent appends form one chain.
    diesel::update(audit_head::table.find(1))
        .set(audit_head::seq.eq(audit_head::seq + 1))
        .execute(conn)?;
    let (seq, prev_hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    let at = now();
    let hash = entry_hash(&prev_hash, seq, &at, actor, action, object, &details);
    let row = AuditRow {
        seq,
        at,
        actor: actor.to_string(),
        action: action.to_string(),
        object: object.to_string(),
        details: to_canonical(&details),
        prev_hash,
        hash: hash.clone(),
    };
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(conn)?;
    diesel::update(audit_head::table.find(1))
        .set(audit_head::hash.eq(hash))
        .execute(conn)?;
    Ok(row)
}

/// The result of checking the chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The first entry that does not verify, and why.
    pub first_bad: Option<(i64, String)>,
}

impl ChainReport {
    pub fn is_valid(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Recomputes the chain over rows in `seq` order.
pub fn verify_rows(rows: impl IntoIterator<Item = AuditRow>) -> ChainReport {
    verify_rows_from(rows, 0, GENESIS)
}

/// Recomputes the chain over the rows after entry `after_seq` (in `seq` order), continuing
/// from that entry's hash. `entries` counts the earlier entries too.
pub fn verify_rows_from(
    rows: impl IntoIterator<Item = AuditRow>,
    after_seq: i64,
    after_hash: &str,
) -> ChainReport {
    let mut prev = after_hash.to_string();
    let mut expected_seq = after_seq + 1;
    let mut n = after_seq.max(0) as u64;
    for r in rows {
        n += 1;
        let bad = |why: String| ChainReport {
            entries: n,
            head_seq: r.seq,
            head_hash: r.hash.clone(),
            first_bad: Some((r.seq, why)),
        };
        if r.seq != expected_seq {
            return ChainReport {
                entries: n,
                head_seq: r.seq,
                head_hash: r.hash.clone(),
                first_bad: Some((
                    expected_seq,
                    format!(
                        "entry {expected_seq} is missing or out of order (found entry {} in its place)",
                        r.seq
                    ),
                )),
            };
        }
        if r.prev_hash != prev {
            return bad("prev_hash does not match the previous entry's hash".into());
        }
        let details: Value = match serde_json::from_str(&r.details) {
            Ok(v) => v,
            Err(_) => return bad("details are not JSON".into()),
        };
        let h = entry_hash(
            &r.prev_hash,
            r.seq,
            &r.at,
            &r.actor,
            &r.action,
            &r.object,
            &details,
        );
        if h != r.hash {
            return bad("hash does not match the entry's content (the entry was edited)".into());
        }
        prev = r.hash;
        expected_seq += 1;
    }
    ChainReport {
        entries: n,
        head_seq: expected_seq - 1,
        head_hash: prev,
        first_bad: None,
    }
}

/// Verifies the whole chain in the store, including the recorded head.
pub fn verify(conn: &mut StoreConn) -> Result<ChainReport, StoreError> {
    verify_chain_since(conn, 0, GENESIS)
}

/// Verifies the entries after `after_seq` (whose hash is `after_hash`) up to the recorded
/// head. The head is read first, so entries appended while this runs (the log is live) are
/// left for the next check instead of looking like a mismatch.
fn verify_chain_since(
    conn: &mut StoreConn,
    after_seq: i64,
    after_hash: &str,
) -> Result<ChainReport, StoreError> {
    let (seq, hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    let rows: Vec<AuditRow> = audit_log::table
        .filter(audit_log::seq.gt(after_seq))
        .filter(audit_log::seq.le(seq))
        .order(audit_log::seq.asc())
        .load(conn)?;
    let mut report = verify_rows_from(rows, after_seq, after_hash);
    if report.is_valid() && (seq != report.head_seq || hash != report.head_hash) {
        report.first_bad = Some((
            report.head_seq + 1,
            format!(
                "the chain ends at entry {} but the head records entry {seq} (entries were removed from the end)",
                report.head_seq
            ),
        ));
    }
    Ok(report)
}

/// The chain report plus the signed checkpoints: each must verify against the JWKS and
/// match the chain at its position.
#[derive(Debug, Clone, Serialize)]
pub struct FullReport {
    pub chain: ChainReport,
    pub checkpoints: u64,
    pub last_checkpoint_seq: Option<i64>,
    pub bad_checkpoint: Option<(i64, String)>,
}

impl FullReport {
    pub fn is_valid(&self) -> bool {
        self.chain.is_valid() && self.bad_checkpoint.is_none()
    }
}

pub fn verify_full(
    conn: &mut StoreConn,
    jwks: &crate::cert::jws::Jwks,
) -> Result<FullReport, StoreError> {
    verify_since(conn, jwks, None)
}

/// A prefix of the chain already verified (by this process): entries `1..=seq`, ending in
/// `hash`; entries `1..=full_seq` were last re-hashed in one full pass at `full_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPrefix {
    pub seq: i64,
    pub hash: String,
    /// When the last full pass ran, and how far it went.
    pub full_at: NaiveDateTime,
    pub full_seq: i64,
}

/// Like [`verify_full`], but trusts an earlier verified prefix: re-hashes only the entries
/// after it, checks the head, and checks only the checkpoints after it (the counts still
/// cover the whole log). With `None` this is the full verification.
pub fn verify_since(
    conn: &mut StoreConn,
    jwks: &crate::cert::jws::Jwks,
    prefix: Option<&VerifiedPrefix>,
) -> Result<FullReport, StoreError> {
    use crate::store::models::CheckpointRow;
    use crate::store::schema::audit_checkpoints;
    let (after_seq, after_hash) = prefix.map_or((0, GENESIS), |p| (p.seq, p.hash.as_str()));
    let chain = verify_chain_since(conn, after_seq, after_hash)?;
    let total: i64 = audit_checkpoints::table.count().get_result(conn)?;
    let last: Option<i64> = audit_checkpoints::table
        .select(diesel::dsl::max(audit_checkpoints::seq))
        .first(conn)?;
    let cps: Vec<CheckpointRow> = audit_checkpoints::table
        .filter(audit_checkpoints::seq.gt(after_seq))
        .order(audit_checkpoints::seq.asc())
        .load(conn)?;
    let mut bad = None;
    for cp in &cps {
        let why = match crate::cert::jws::verify(&cp.jws, jwks) {
            Err(e) => Some(format!("signature: {e}")),
            Ok(v) if v.payload["seq"] != json!(cp.seq) || v.payload["hash"] != json!(cp.hash) => {
                Some("signed content differs from the stored checkpoint".to_string())
            }
            Ok(_) => {
                let entry: Option<String> = audit_log::table
                    .find(cp.seq)
                    .select(audit_log::hash)
                    .first(conn)
                    .optional()?;
                match entry {
                    Some(h) if h == cp.hash => None,
                    Some(_) => Some(format!("entry {} no longer has the signed hash", cp.seq)),
                    None => Some(format!("entry {} is missing", cp.seq)),
                }
            }
        };
        if let Some(w) = why {
            bad = Some((cp.seq, w));
            break;
        }
    }
    Ok(FullReport {
        chain,
        checkpoints: total.max(0) as u64,
        last_checkpoint_seq: last,
        bad_checkpoint: bad,
    })
}

/// Entries before `before` (exclusive), newest first.
pub fn page(
    conn: &mut StoreConn,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut q = audit_log::table.into_boxed();
    if let Some(b) = before {
        q = q.filter(audit_log::seq.lt(b));
    }
    Ok(q.order(audit_log::seq.desc())
        .limit(limit.clamp(1, 1000))
        .load(conn)?)
}

pub fn recent(conn: &mut StoreConn, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    Ok(audit_log::table
        .order(audit_log::seq.desc())
        .limit(limit)
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS.to_string();
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_000)
            .unwrap()
            .naive_utc();
        (1..=n)
            .map(|seq| {
                let details = json!({"n": seq});
                let hash = entry_hash(
                    &prev,
                    seq,
                    &at,
                    "officer:x",
                    "request.created",
                    "request:1",
                    &details,
                );
                let row = AuditRow {
                    seq,
                    at,
                    actor: "officer:x".into(),
                    action: "request.created".into(),
                    object: "request:1".into(),
                    details: to_canonical(&details),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let r = verify_rows(chain(5));
        assert!(r.is_valid());
        assert_eq!(r.entries, 5);
    }

    #[test]
    fn edits_removals_and_reorders_are_found_at_the_entry() {
        let mut c = chain(5);
        c[2].actor = "someone-else".into();
        assert_eq!(verify_rows(c).first_bad.map(|b| b.0), Some(3));

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify_rows(c).first_bad.map(|b| b.0), Some(2));

        let mut c = chain(5);
        c.swap(1, 2);
        assert_eq!(verify_rows(c).first_bad.map(|b| b.0), Some(2));
        // Contents swapped while the sequence numbers stay: found at the first swapped entry.
        let mut c = chain(5);
        let (a, b) = (c[1].clone(), c[2].clone());
        c[1] = AuditRow { seq: 2, ..b };
        c[2] = AuditRow { seq: 3, ..a };
        assert_eq!(verify_rows(c).first_bad.map(|b| b.0), Some(2));

        let mut c = chain(5);
        c[3].details = r#"{"n":99}"#.into();
        assert_eq!(verify_rows(c).first_bad.map(|b| b.0), Some(4));
    }

    #[test]
    fn verification_continues_from_a_verified_prefix() {
        let c = chain(8);
        let head3 = c[2].hash.clone();
        let r = verify_rows_from(c[3..].to_vec(), 3, &head3);
        assert!(r.is_valid());
        assert_eq!((r.entries, r.head_seq), (8, 8));
        assert_eq!(r.head_hash, c[7].hash);
        // Nothing new: the prefix is the head.
        let r = verify_rows_from(Vec::new(), 3, &head3);
        assert_eq!(
            (r.entries, r.head_seq, r.head_hash.as_str()),
            (3, 3, head3.as_str())
        );
        // A newer entry edited, or one missing after the prefix, is found.
        let mut t = c[3..].to_vec();
        t[1].object = "request:2".into();
        assert_eq!(
            verify_rows_from(t, 3, &head3).first_bad.map(|b| b.0),
            Some(5)
        );
        let mut t = c[3..].to_vec();
        t.remove(0);
        assert_eq!(
            verify_rows_from(t, 3, &head3).first_bad.map(|b| b.0),
            Some(4)
        );
        // A wrong prefix hash does not link up.
        assert!(!verify_rows_from(c[3..].to_vec(), 3, &c[1].hash).is_valid());
    }
}
