//! Exports at rest: encrypted files (no identity value on disk; a changed byte, a cut-off
//! file or swapped chunks fail the download), expiring single-purpose download links (a link
//! is not an API token and an API token is not a link; 404 and 410), expiry, the streaming
//! build against the in-memory reference documents, the certificate's digest against the
//! downloaded bytes, and audit entries without tokens.

use crate::support::{Crm, TestApp, client};
use diesel::prelude::*;
use lethe::app::Actor;
use lethe::request::export::{ExportContext, access_export, portability_export, to_csv_zip};
use lethe::request::{Channel, Regime, RequestKind, service};
use lethe::source::{Sql, Value as SqlValue};
use lethe::store::models::AuditRow;
use lethe::trace::TraceOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::PathBuf;

const JANE: &str = "jane.doe@example.com";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Adds `n` activities to Jane's contact (a few mention her e-mail address, which makes them
/// residual-scan candidates that are her own rows, not mentions).
fn add_activities(t: &TestApp, n: u64) {
    let mut conn = t.crm.conn();
    let mut q = Sql::new(conn.dialect());
    q.push("SELECT id FROM contacts WHERE email = ")
        .bind(SqlValue::Text(JANE.into()));
    let contact = conn.query(&q).unwrap()[0][0].as_int().unwrap();
    let mut ins = Sql::new(conn.dialect());
    ins.push(
        "INSERT INTO activities (id, parent_type, parent_id, kind, subject, body, owner_id, occurred_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ",
    )
    .push(&n.to_string())
    .push(") SELECT (SELECT max(id) FROM activities) + i, 'Contact', ")
    .push(&contact.to_string())
    .push(
        ", 'call', 'Follow-up ' || i, \
         CASE WHEN i % 1000 = 0 THEN 'Called back, confirmed jane.doe@example.com' \
         ELSE 'Discussed the renewal, call number ' || i END, \
         (SELECT min(id) FROM employees), ",
    )
    .push(match conn.dialect() {
        lethe::source::Dialect::Postgres => "TIMESTAMP '2026-01-02 10:00:00'",
        _ => "'2026-01-02 10:00:00'",
    })
    .push(" FROM n");
    conn.execute(&ins).unwrap();
}

/// Creates, verifies and runs an access or portability request for Jane; returns its id.
fn run_request(t: &TestApp, kind: RequestKind) -> String {
    let actor = Actor::cli();
    let r = service::create(
        &t.app,
        &actor,
        service::NewRequest {
            kind,
            regime: Regime::Gdpr,
            identities: vec![("email".into(), JANE.into())],
            channel: Channel::Email,
            received_at: None,
            note: None,
            changes: Vec::new(),
        },
    )
    .unwrap();
    service::verify(&t.app, &actor, &r.id, "document_check", None).unwrap();
    service::run(&t.app, &actor, &r.id).unwrap();
    r.id
}

fn export_files(t: &TestApp) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&t.app.config.exports.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sealed"))
        .collect();
    files.sort();
    files
}

fn json_file(t: &TestApp, id: &str) -> PathBuf {
    let x = service::export_row(&t.app, id).unwrap();
    t.app
        .config
        .exports
        .dir
        .join(format!("{}.json.sealed", x.file_id.unwrap()))
}

/// Creates a link over the API; returns (status, body).
async fn create_link(base: &str, token: &str, id: &str, format: &str) -> (StatusCode, Value) {
    let r = client()
        .post(format!("{base}/api/v1/requests/{id}/export-links"))
        .bearer_auth(token)
        .json(&json!({ "format": format }))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn link_url(base: &str, token: &str, id: &str, format: &str) -> String {
    let (s, v) = create_link(base, token, id, format).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    format!("{base}{}", v["url"].as_str().unwrap())
}

/// Downloads a link: the status and the body, or the error that ended the body.
async fn download(
    url: &str,
) -> (
    StatusCode,
    reqwest::header::HeaderMap,
    Result<Vec<u8>, String>,
) {
    let r = client().get(url).send().await.unwrap();
    let s = r.status();
    let h = r.headers().clone();
    (
        s,
        h,
        r.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string()),
    )
}

/// The reference documents (built in memory from the full trace) for an export.
fn reference(t: &TestApp, id: &str, generated_at: &str) -> Value {
    let row = service::get(&t.app, id).unwrap();
    let ids = service::identities(&t.app, &row).unwrap();
    let fp = t.app.trace(&ids, &TraceOptions::default()).unwrap();
    let ctx = ExportContext {
        request_id: &row.id,
        kind: &row.kind,
        regime: &row.regime,
        received_at: lethe::audit::format_time(&row.received_at),
        due_at: lethe::audit::format_time(&row.due_at),
        generated_at: generated_at.to_string(),
        policy_digest: &t.app.policy.digest,
    };
    if row.kind == "portability" {
        portability_export(&t.app.policy.datamap, &ctx, &fp)
    } else {
        access_export(&t.app.policy.datamap, &ctx, &fp)
    }
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("zip");
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().to_string(), b)
        })
        .collect()
}

fn audit_rows(t: &TestApp) -> Vec<AuditRow> {
    use lethe::store::schema::audit_log::dsl as a;
    t.app
        .store
        .read(|c| Ok(a::audit_log.order(a::seq.asc()).load::<AuditRow>(c)?))
        .unwrap()
}

/// The streaming build writes the reference document's bytes (JSON) and files (CSV), for a
/// subject whose activities span several keyset pages and fetch batches; the download's
/// SHA-256 is the digest the access certificate records.
async fn streamed_exports_match_the_reference(t: TestApp) {
    add_activities(&t, 12_345);
    let base = t.serve().await;
    for kind in [RequestKind::Access, RequestKind::Portability] {
        let id = run_request(&t, kind);
        let (s, h, body) = download(&link_url(&base, &t.officer, &id, "json").await).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
        assert_eq!(h["cache-control"], "no-store");
        let body = body.unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        let expected = reference(&t, &id, doc["generated_at"].as_str().unwrap());
        assert!(
            serde_json::to_vec(&expected).unwrap() == body,
            "{kind:?}: the streamed JSON differs from the reference document"
        );
        if kind == RequestKind::Access {
            assert_eq!(doc["summary"]["records"], 26 + 12_345);
            let activities = doc["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["table"] == "activities")
                .unwrap();
            assert_eq!(
                activities["record_count"],
                activities["records"].as_array().unwrap().len()
            );
            // The rows that mention her address are her own rows, not mentions.
            assert_eq!(doc["summary"]["mentions"], 2);
        }
        // The certificate records the digest of exactly these bytes.
        let certs = t
            .app
            .store
            .read(|c| lethe::cert::issue::for_request(c, &id))
            .unwrap();
        let jwks = t.app.store.read(lethe::cert::keys::jwks).unwrap();
        let v = lethe::cert::jws::verify(&certs[0].jws, &jwks).unwrap();
        assert_eq!(
            v.payload["export"]["digest"],
            format!("sha256:{}", hex::encode(Sha256::digest(&body)))
        );
        // The CSV zip holds the reference's files.
        let (s, h, zipped) = download(&link_url(&base, &t.officer, &id, "csv").await).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["content-type"], "application/zip");
        let got = zip_entries(&zipped.unwrap());
        let want = zip_entries(&to_csv_zip(&expected).unwrap());
        assert_eq!(
            got.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            want.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        for ((name, a), (_, b)) in got.iter().zip(&want) {
            assert!(a == b, "{kind:?}: {name} differs from the reference");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_exports_match_the_reference_sqlite() {
    streamed_exports_match_the_reference(TestApp::builder().crm(Crm::sqlite(200)).build()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_exports_match_the_reference_postgres() {
    let crm = crate::require_pg!();
    let store = crate::require_pg!();
    let t = TestApp::builder()
        .crm(Crm::postgres(crm, 200))
        .store_on_postgres(store)
        .build();
    streamed_exports_match_the_reference(t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_encrypted_at_rest_and_links_are_single_purpose() {
    let t = TestApp::builder().crm(Crm::sqlite(200)).build();
    let base = t.serve().await;
    let id = run_request(&t, RequestKind::Access);
    // Two files (JSON and CSV zip), neither with an identity value in the clear.
    let files = export_files(&t);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        for needle in [
            JANE,
            "+49301234567",
            "CUST-0000001",
            "Jane",
            "jane.doe",
            "access-export",
        ] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in {}",
                f.display()
            );
        }
    }
    // The request view offers links, not data.
    let v: Value = client()
        .get(format!("{base}/api/v1/requests/{id}"))
        .bearer_auth(&t.officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["export"]["available"], true);
    assert_eq!(
        v["export"]["links_url"],
        format!("/api/v1/requests/{id}/export-links")
    );
    // Auditors may not create links; unknown formats and requests are refused.
    let (s, _) = create_link(&base, &t.auditor, &id, "json").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = create_link(&base, &t.officer, &id, "pdf").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "format");
    let (s, _) = create_link(&base, &t.officer, "no-such-request", "json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A request without an export yet: 409.
    let other = service::create(
        &t.app,
        &Actor::cli(),
        service::NewRequest {
            kind: RequestKind::Access,
            regime: Regime::Ccpa,
            identities: vec![("email".into(), "max.mustermann@example.com".into())],
            channel: Channel::WebForm,
            received_at: None,
            note: None,
            changes: Vec::new(),
        },
    )
    .unwrap();
    let (s, _) = create_link(&base, &t.officer, &other.id, "json").await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, v) = create_link(&base, &t.officer, &id, "json").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let url = v["url"].as_str().unwrap().to_string();
    let token = url.strip_prefix("/exports/").unwrap().to_string();
    assert_eq!(token.len(), 43);
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    // The link needs no bearer token and serves this request's export only.
    let (s, _, body) = download(&format!("{base}{url}")).await;
    assert_eq!(s, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(doc["request"]["id"], id);
    // A link's token is not an API token, and an API token is not a link.
    let r = client()
        .get(format!("{base}/api/v1/requests/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for not_a_link in [
        t.officer.as_str(),
        t.admin.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
    ] {
        let (s, _, _) = download(&format!("{base}/exports/{not_a_link}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{not_a_link}");
    }
    // The former export URL creates a link and redirects to it.
    let r = no_redirects()
        .get(format!("{base}/api/v1/requests/{id}/export?format=csv"))
        .bearer_auth(&t.officer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/exports/"), "{location}");
    let (s, h, _) = download(&format!("{base}{location}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/zip");
    // A link past its expiry: 410.
    {
        use lethe::store::schema::export_links::dsl as l;
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        t.app
            .store
            .write(|c| {
                diesel::update(l::export_links.filter(l::token_hash.eq(&hash)))
                    .set(l::expires_at.eq(lethe::store::now() - chrono::Duration::seconds(1)))
                    .execute(c)?;
                Ok::<_, lethe::store::StoreError>(())
            })
            .unwrap();
    }
    let (s, _, body) = download(&format!("{base}{url}")).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(String::from_utf8_lossy(&body.unwrap()).contains("expired"));

    // The audit log has the links and downloads, never a token.
    let rows = audit_rows(&t);
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "export.link_created")
            .count(),
        2
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "export.downloaded")
            .count(),
        2
    );
    let all = serde_json::to_string(
        &rows
            .iter()
            .map(|r| format!("{} {} {} {}", r.actor, r.action, r.object, r.details))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!all.contains(&token));
    assert!(!all.contains(location.trim_start_matches("/exports/")));
    assert!(!all.contains(JANE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_fails_the_download() {
    let t = TestApp::builder().crm(Crm::sqlite(200)).build();
    add_activities(&t, 3000);
    let base = t.serve().await;
    let id = run_request(&t, RequestKind::Access);
    let path = json_file(&t, &id);
    let original = std::fs::read(&path).unwrap();
    let x = service::export_row(&t.app, &id).unwrap();
    let plain_size = usize::try_from(x.json_size.unwrap()).unwrap();
    // The layout: header, then chunks of 64 KiB + 16.
    let block = 64 * 1024 + 16;
    let chunks = plain_size.div_ceil(64 * 1024);
    assert!(chunks >= 4, "{chunks} chunks");
    let header = original.len() - (plain_size + 16 * chunks);
    let url = link_url(&base, &t.officer, &id, "json").await;
    let (s, _, body) = download(&url).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.unwrap().len(), plain_size);

    let mut flipped = original.clone();
    flipped[header + block + 100] ^= 1;
    let mut flipped_first = original.clone();
    flipped_first[header + 10] ^= 1;
    let mut swapped = original[..header].to_vec();
    swapped.extend_from_slice(&original[header..header + block]);
    swapped.extend_from_slice(&original[header + 2 * block..header + 3 * block]);
    swapped.extend_from_slice(&original[header + block..header + 2 * block]);
    swapped.extend_from_slice(&original[header + 3 * block..]);
    let cut_at_chunk = original[..header + 2 * block].to_vec();
    let cut_mid = original[..original.len() - 5].to_vec();
    let mut wrong_key = original.clone();
    wrong_key[header - 3] ^= 1;
    let other_id = run_request(&t, RequestKind::Access);
    let foreign = std::fs::read(json_file(&t, &other_id)).unwrap();
    for (what, bytes) in [
        ("a byte changed", flipped),
        ("a byte of the first chunk changed", flipped_first),
        ("two chunks swapped", swapped),
        ("cut at a chunk boundary", cut_at_chunk),
        ("cut inside the last chunk", cut_mid),
        ("the sealed data key changed", wrong_key),
        ("another export's file", foreign),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let (s, _, body) = download(&url).await;
        let complete = s == StatusCode::OK && body.as_ref().is_ok_and(|b| b.len() == plain_size);
        assert!(!complete, "{what}: served as complete ({s})");
        if s == StatusCode::OK {
            assert!(body.is_err(), "{what}: the body ended without an error");
        } else {
            assert!(s.is_server_error(), "{what}: {s}");
        }
    }
    std::fs::write(&path, &original).unwrap();
    let (s, _, body) = download(&url).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.unwrap().len(), plain_size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_deletes_the_files_and_links_answer_gone() {
    let t = TestApp::builder().crm(Crm::sqlite(100)).build();
    let base = t.serve().await;
    let id = run_request(&t, RequestKind::Access);
    let keep = run_request(&t, RequestKind::Portability);
    let url = link_url(&base, &t.officer, &id, "csv").await;
    assert_eq!(export_files(&t).len(), 4);
    // Nothing is due yet.
    let r = lethe::export::sweep::sweep(&t.app).unwrap();
    assert_eq!(r.exports_deleted, 0);
    // A stray file of a run that died before recording it, an hour old.
    let stray = t.app.config.exports.dir.join("0000-stray.json.sealed");
    std::fs::write(&stray, b"junk").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stray)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    // The export's expiry passes.
    {
        use lethe::store::schema::exports::dsl as x;
        t.app
            .store
            .write(|c| {
                diesel::update(x::exports.find(&id))
                    .set(x::expires_at.eq(Some(lethe::store::now() - chrono::Duration::seconds(1))))
                    .execute(c)?;
                Ok::<_, lethe::store::StoreError>(())
            })
            .unwrap();
    }
    // Before the sweep: already 410.
    let (s, _, _) = download(&url).await;
    assert_eq!(s, StatusCode::GONE);
    let r = lethe::export::sweep::sweep(&t.app).unwrap();
    assert_eq!(r.exports_deleted, 1);
    assert_eq!(r.orphan_files_removed, 1);
    // Only the other request's files are left.
    let left = export_files(&t);
    let keep_file = service::export_row(&t.app, &keep).unwrap().file_id.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter()
            .all(|p| p.to_string_lossy().contains(&keep_file))
    );
    let (s, _, body) = download(&url).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(String::from_utf8_lossy(&body.unwrap()).contains("deleted"));
    // The request says so; no new link; the audit log records the deletion.
    let v: Value = client()
        .get(format!("{base}/api/v1/requests/{id}"))
        .bearer_auth(&t.officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["export"]["available"], false);
    assert!(v["export"]["deleted_at"].is_string());
    assert_eq!(v["export"]["records"], 26, "the metadata stays");
    let (s, v) = create_link(&base, &t.officer, &id, "json").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "export_expired");
    assert!(
        audit_rows(&t)
            .iter()
            .any(|r| r.action == "export.deleted" && r.object == format!("request:{id}"))
    );
    // A second sweep has nothing to do; the other export still downloads.
    assert_eq!(
        lethe::export::sweep::sweep(&t.app).unwrap().exports_deleted,
        0
    );
    let (s, _, _) = download(&link_url(&base, &t.officer, &keep, "json").await).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_from_before_files_stay_downloadable() {
    let t = TestApp::builder().crm(Crm::sqlite(100)).build();
    let base = t.serve().await;
    let id = run_request(&t, RequestKind::Access);
    // Turn the row into one written by the previous version: the sealed JSON in the row.
    let plain = br#"{"format":"lethe.access-export/1","request":{"id":"r"},"summary":{"tables":0,"records":0},"records":[],"mentions":[]}"#;
    let sealed = t.app.key.seal("export", &id, plain).unwrap();
    {
        use lethe::store::schema::exports::dsl as x;
        t.app
            .store
            .write(|c| {
                diesel::update(x::exports.find(&id))
                    .set((
                        x::payload_enc.eq(Some(sealed.clone())),
                        x::file_id.eq(None::<String>),
                        x::expires_at.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(c)?;
                Ok::<_, lethe::store::StoreError>(())
            })
            .unwrap();
    }
    let (s, _, body) = download(&link_url(&base, &t.officer, &id, "json").await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.unwrap(), plain.to_vec());
    let (s, _, body) = download(&link_url(&base, &t.officer, &id, "csv").await).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        zip_entries(&body.unwrap())
            .iter()
            .any(|(n, _)| n == "README.txt")
    );
}
