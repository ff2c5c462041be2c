//! Processor and recipient notices: a real HTTP receiver on 127.0.0.1 checks every notice's
//! HMAC-SHA256 signature on its own (not with lethe's code), answers the first attempt with
//! 503 and the next with an acknowledgement; a second recipient refuses with 400. The
//! request completes only when both notices are settled, and the erasure certificate lists
//! both, with the acknowledgement.

use crate::erasure::planned_erasure;
use crate::support::{TestApp, policies_dir};
use hmac::{Hmac, Mac};
use lethe::app::Actor;
use lethe::erase::run;
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-test-3f9c2a";

#[derive(Debug, Clone)]
struct Received {
    path: String,
    notice_id: String,
    signature_ok: bool,
    body: Value,
    raw: String,
    status: u16,
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
}

/// Checks `Lethe-Signature: t=<unix>,v1=<hex>` against HMAC-SHA256(secret, "<t>.<body>"),
/// with a 5-minute tolerance, as docs/webhooks.md tells receivers to.
fn signature_ok(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    sigs.iter().any(|s| {
        let Ok(raw) = hex::decode(s) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&raw).is_ok()
    })
}

/// Starts the receiver on its own thread and runtime; returns its base URL.
fn start_receiver(state: Arc<ReceiverState>) -> String {
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            async fn hook(
                State(st): State<Arc<ReceiverState>>,
                Path(path): Path<String>,
                headers: HeaderMap,
                body: Bytes,
            ) -> (StatusCode, String) {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let ok = signature_ok(&h("lethe-signature"), &body);
                let notice_id = h("lethe-notice-id");
                let mut got = st.got.lock().unwrap();
                let earlier = got
                    .iter()
                    .filter(|r| r.path == path && r.notice_id == notice_id)
                    .count();
                let (status, reply) = if !ok {
                    (401, String::from("{\"error\": \"bad signature\"}"))
                } else if path == "reject" {
                    (400, String::from("{\"error\": \"unknown customer\"}"))
                } else if earlier == 0 {
                    (503, String::from("busy"))
                } else {
                    (200, format!("{{\"ack_id\": \"ack-{notice_id}\"}}"))
                };
                got.push(Received {
                    path,
                    notice_id,
                    signature_ok: ok,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    raw: String::from_utf8_lossy(&body).into_owned(),
                    status,
                });
                (StatusCode::from_u16(status).unwrap(), reply)
            }
            let app = axum::Router::new()
                .route("/hooks/{path}", axum::routing::post(hook))
                .with_state(state);
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// The demo data map with webhooks for the CRM host and the help desk.
fn policies_with_webhooks(base: &str) -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let map = std::fs::read_to_string(policies_dir().join("datamap.toml")).unwrap();
    let map = map
        .replace(
            "[recipients.crm_host]\n",
            &format!(
                "[recipients.crm_host]\nwebhook = {{ url = \"{base}/hooks/ok\", secret = \"env:LETHE_TEST_HOOK_SECRET\" }}\n"
            ),
        )
        .replace(
            "[recipients.helpdesk]\n",
            &format!(
                "[recipients.helpdesk]\nwebhook = {{ url = \"{base}/hooks/reject\", secret = \"env:LETHE_TEST_HOOK_SECRET\", events = [\"erasure\"] }}\n"
            ),
        );
    assert!(map.contains("/hooks/ok") && map.contains("/hooks/reject"));
    std::fs::write(dir.join("datamap.toml"), map).unwrap();
    std::fs::copy(
        policies_dir().join("retention.toml"),
        dir.join("retention.toml"),
    )
    .unwrap();
    dir
}

fn certificate_payload(t: &TestApp, id: &str) -> Value {
    let certs = t
        .app
        .store
        .read(|c| lethe::cert::issue::for_request(c, id))
        .unwrap();
    assert_eq!(certs.len(), 1, "one certificate");
    let j: lethe::cert::jws::Jws = serde_json::from_str(&certs[0].jws).unwrap();
    j.payload_json().unwrap()
}

#[test]
fn erasure_notices_are_signed_retried_acknowledged_and_certified() {
    let state = Arc::new(ReceiverState::default());
    let base = start_receiver(state.clone());
    let t = TestApp::builder()
        .policies(policies_with_webhooks(&base))
        .configure(|c| {
            c.env.insert("LETHE_TEST_HOOK_SECRET".into(), SECRET.into());
            c.jobs.notice_retry_base = Duration::from_millis(50);
            c.jobs.notice_retry_max = Duration::from_millis(200);
        })
        .build();
    let (id, _plan) = planned_erasure(&t, "jane.doe@example.com");
    let row = run::execute(&t.app, &Actor::cli(), &id).unwrap();
    // Erased and verified, but not complete: the notices are not settled yet.
    assert_eq!(row.state, "verifying", "{:?}", row.state_reason);
    assert!(
        row.state_reason
            .as_deref()
            .unwrap_or("")
            .contains("waiting for 2 of 2 recipient notice(s)"),
        "{:?}",
        row.state_reason
    );
    assert!(
        t.app
            .store
            .read(|c| lethe::cert::issue::for_request(c, &id))
            .unwrap()
            .is_empty(),
        "no certificate before the notices settle"
    );

    // Workers deliver: crm_host answers 503, then acknowledges; the help desk refuses.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        lethe::jobs::run_due(&t.app, 50);
        let state = lethe::request::service::get(&t.app, &id).unwrap().state;
        if state == "partially_completed" || state == "completed" || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let row = lethe::request::service::get(&t.app, &id).unwrap();
    assert_eq!(row.state, "partially_completed", "{:?}", row.state_reason);

    let got = state.got.lock().unwrap().clone();
    assert!(
        got.iter().all(|r| r.signature_ok),
        "every notice carried a valid signature"
    );
    let ok: Vec<&Received> = got.iter().filter(|r| r.path == "ok").collect();
    assert_eq!(
        ok.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 200],
        "one retry, then acknowledged"
    );
    assert_eq!(
        ok[0].notice_id, ok[1].notice_id,
        "the same notice id on retry"
    );
    assert_eq!(ok[0].body, ok[1].body, "the same notice on retry");
    let rejected: Vec<&Received> = got.iter().filter(|r| r.path == "reject").collect();
    assert_eq!(rejected.len(), 1, "a 400 is not retried");

    // The notice: the event, the pseudonymous subject reference, tables; no raw identities.
    let notice = &ok[1].body;
    assert_eq!(notice["event"], "erasure");
    assert_eq!(notice["request_id"], id.as_str());
    assert_eq!(notice["recipient"], "crm_host");
    assert_eq!(notice["subject_ref"], row.subject_ref.as_str());
    let text = notice.to_string();
    for raw in ["jane.doe@example.com", "Jane", "Doe"] {
        assert!(!text.contains(raw), "{raw} in the notice: {text}");
    }
    let tables: Vec<&str> = notice["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert!(
        tables.contains(&"contacts") && !tables.contains(&"tickets"),
        "{tables:?}"
    );

    // Recorded on the request and in the certificate.
    let notices = t
        .app
        .store
        .read(|c| lethe::store::notifications::for_request(c, &id))
        .unwrap();
    assert_eq!(notices.len(), 2);
    let host = notices.iter().find(|n| n.recipient == "crm_host").unwrap();
    assert_eq!(host.status, "acknowledged");
    assert_eq!(host.attempts, 2);
    assert_eq!(host.http_status, Some(200));
    assert_eq!(
        host.ack_id.as_deref(),
        Some(format!("ack-{}", host.id).as_str())
    );
    let desk = notices.iter().find(|n| n.recipient == "helpdesk").unwrap();
    assert_eq!(desk.status, "failed");
    assert_eq!(desk.attempts, 1);
    assert!(
        desk.last_error.as_deref().unwrap_or("").contains("400"),
        "{desk:?}"
    );

    let payload = certificate_payload(&t, &id);
    let listed = payload["notifications"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{payload}");
    let h = listed
        .iter()
        .find(|n| n["recipient"] == "crm_host")
        .unwrap();
    assert_eq!(h["status"], "acknowledged");
    assert_eq!(h["ack_id"], format!("ack-{}", host.id).as_str());
    assert_eq!(h["attempts"], 2);
    assert_eq!(
        h["notice_sha256"],
        lethe::crypto::sha256_hex(ok[1].raw.as_bytes()).as_str(),
        "the certificate pins the notice the recipient received"
    );
    let d = listed
        .iter()
        .find(|n| n["recipient"] == "helpdesk")
        .unwrap();
    assert_eq!(d["status"], "failed");
    assert!(
        !payload.to_string().contains("/hooks/"),
        "no webhook URL in the certificate"
    );

    // The audit log has the acknowledgement and the failure.
    let entries = t.app.store.read(|c| lethe::audit::recent(c, 200)).unwrap();
    for action in ["notice.queued", "notice.acknowledged", "notice.failed"] {
        assert!(entries.iter().any(|e| e.action == action), "{action}");
    }
}

#[test]
fn a_webhook_secret_in_the_file_or_a_plain_http_url_is_rejected() {
    let map = std::fs::read_to_string(policies_dir().join("datamap.toml")).unwrap();
    for (webhook, expect) in [
        (
            "webhook = { url = \"https://hooks.example/x\", secret = \"s3cr3t\" }",
            "secret",
        ),
        (
            "webhook = { url = \"http://hooks.example/x\", secret = \"env:X\" }",
            "https",
        ),
        (
            "webhook = { url = \"ftp://hooks.example/x\", secret = \"env:X\" }",
            "url",
        ),
        (
            "webhook = { url = \"https://hooks.example/x\", secret = \"env:X\", events = [\"access\"] }",
            "access",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("datamap.toml"),
            map.replace(
                "[recipients.mailer]\n",
                &format!("[recipients.mailer]\n{webhook}\n"),
            ),
        )
        .unwrap();
        std::fs::copy(
            policies_dir().join("retention.toml"),
            dir.path().join("retention.toml"),
        )
        .unwrap();
        let err = lethe::policy::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("datamap.toml"), "{err}");
        assert!(err.contains(expect), "{webhook}: {err}");
    }
}
