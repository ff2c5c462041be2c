//! Issuing certificates: fill in the common fields (id, issuer, time, audit position), sign,
//! store, and record the issue in the audit log, all in the caller's transaction.

use super::jws::{self, Jws};
use super::keys;
use crate::audit;
use crate::crypto::{MasterKey, sha256_hex};
use crate::store::models::{CertificateRow, CheckpointRow};
use crate::store::schema::{audit_checkpoints, audit_head, certificates};
use crate::store::{StoreConn, StoreError, now};
use diesel::prelude::*;
use serde_json::{Value, json};

pub const CERT_TYP: &str = "lethe-certificate+jws";
pub const CHECKPOINT_TYP: &str = "lethe-audit-checkpoint+jws";

/// Who issues certificates.
pub struct Issuer<'a> {
    pub controller: &'a str,
    pub contact: &'a str,
}

/// Signs and stores a certificate. `body` holds the kind-specific fields; the common ones
/// (`certificate_id`, `kind`, `issuer`, `issued_at`, `audit`) are added here.
pub fn issue(
    conn: &mut StoreConn,
    master: &MasterKey,
    issuer: &Issuer<'_>,
    kind: &str,
    request_id: Option<&str>,
    run_id: Option<&str>,
    body: Value,
) -> Result<CertificateRow, StoreError> {
    let (kid, sk) = keys::current(conn, master)?;
    let (seq, hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    let id = format!("cert-{}", uuid::Uuid::now_v7());
    let issued_at = now();
    let mut payload = json!({
        "certificate_id": id,
        "kind": kind,
        "format": "lethe.certificate/1",
        "issuer": {"name": issuer.controller, "contact": issuer.contact, "software": format!("lethe {}", env!("CARGO_PKG_VERSION"))},
        "issued_at": audit::format_time(&issued_at),
        "audit": {"seq": seq, "hash": hash},
    });
    if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), body) {
        for (k, v) in extra {
            p.entry(k).or_insert(v);
        }
    }
    let signed: Jws =
        jws::sign(&payload, CERT_TYP, &sk).map_err(|e| StoreError::Db(e.to_string()))?;
    let text = signed.to_json();
    let row = CertificateRow {
        id: id.clone(),
        kind: kind.to_string(),
        request_id: request_id.map(str::to_string),
        run_id: run_id.map(str::to_string),
        kid: kid.clone(),
        issued_at,
        jws: text.clone(),
    };
    diesel::insert_into(certificates::table)
        .values(&row)
        .execute(conn)?;
    let object = match (request_id, run_id) {
        (Some(r), _) => format!("request:{r}"),
        (_, Some(r)) => format!("run:{r}"),
        _ => format!("certificate:{id}"),
    };
    audit::append(
        conn,
        "system",
        "certificate.issued",
        &object,
        json!({"certificate_id": id, "kind": kind, "kid": kid, "sha256": sha256_hex(text.as_bytes())}),
    )?;
    checkpoint(conn, master)?;
    Ok(row)
}

/// Signs the current head of the audit chain (`{seq, hash, at}`) and stores the checkpoint.
pub fn checkpoint(
    conn: &mut StoreConn,
    master: &MasterKey,
) -> Result<Option<CheckpointRow>, StoreError> {
    let (seq, hash): (i64, String) = audit_head::table
        .find(1)
        .select((audit_head::seq, audit_head::hash))
        .first(conn)?;
    if seq == 0 {
        return Ok(None);
    }
    let exists: i64 = audit_checkpoints::table
        .filter(audit_checkpoints::seq.eq(seq))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(None);
    }
    let (kid, sk) = keys::current(conn, master)?;
    let at = now();
    let signed = jws::sign(
        &json!({"seq": seq, "hash": hash, "at": audit::format_time(&at)}),
        CHECKPOINT_TYP,
        &sk,
    )
    .map_err(|e| StoreError::Db(e.to_string()))?;
    let row = CheckpointRow {
        seq,
        hash,
        signed_at: at,
        kid,
        jws: signed.to_json(),
    };
    diesel::insert_into(audit_checkpoints::table)
        .values(&row)
        .execute(conn)?;
    Ok(Some(row))
}

pub fn get(conn: &mut StoreConn, id: &str) -> Result<CertificateRow, StoreError> {
    Ok(certificates::table.find(id).first(conn)?)
}

pub fn for_request(
    conn: &mut StoreConn,
    request_id: &str,
) -> Result<Vec<CertificateRow>, StoreError> {
    Ok(certificates::table
        .filter(certificates::request_id.eq(request_id))
        .order(certificates::issued_at.asc())
        .load(conn)?)
}

pub fn list(conn: &mut StoreConn, limit: i64) -> Result<Vec<CertificateRow>, StoreError> {
    Ok(certificates::table
        .order(certificates::issued_at.desc())
        .limit(limit)
        .load(conn)?)
}

/// A page of certificates, newest first: optionally one kind, issued before a time.
pub fn page(
    conn: &mut StoreConn,
    kind: Option<&str>,
    before: Option<chrono::NaiveDateTime>,
    limit: i64,
) -> Result<Vec<CertificateRow>, StoreError> {
    let mut q = certificates::table.into_boxed();
    if let Some(k) = kind {
        q = q.filter(certificates::kind.eq(k.to_string()));
    }
    if let Some(b) = before {
        q = q.filter(certificates::issued_at.lt(b));
    }
    Ok(
        q.order((certificates::issued_at.desc(), certificates::id.desc()))
            .limit(limit.clamp(1, 1000))
            .load(conn)?,
    )
}
