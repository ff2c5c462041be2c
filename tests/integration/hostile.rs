//! Hostile input: oversized bodies (413 with the service's JSON or HTML error body), request
//! heads (431) and targets (414) on the real server; rate limits per token and per address
//! on the API and on failed sign-ins (429 with `Retry-After`, then recovery); SQL injection
//! attempts in policy identifiers (refused at load with file and line) and in identity
//! values (only ever bound parameters: nothing found, nothing changed, on SQLite and
//! PostgreSQL).

use crate::erasure::{dump, new_request};
use crate::support::{Crm, TestApp, client};
use lethe::app::Actor;
use lethe::config::RateSetting;
use lethe::erase::run;
use lethe::request::RequestKind;
use lethe::request::service;
use lethe::trace::{Identity, TraceOptions};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, RETRY_AFTER, SET_COOKIE};
use serde_json::Value;
use std::time::Duration;

/// Sends raw bytes and returns what the server answered before closing (or going quiet).
async fn raw_exchange(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").to_string();
    let request = request.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        // The server may answer and close before it read everything; that is fine.
        let _ = stream.write_all(&request);
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 2") {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .expect("exchange")
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON error: {body}"));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a 429 carries Retry-After in whole seconds")
}

/// A `multipart/form-data` body with the given text fields.
fn multipart(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "lethe-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.json\"\r\nContent-Type: application/json\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_with_the_service_error_body() {
    let t = TestApp::builder()
        .configure(|c| c.max_body_bytes = 1024)
        .build();
    let base = t.serve().await;
    let http = client();

    // API: a JSON body over the limit.
    let big_note = "x".repeat(2048);
    let resp = http
        .post(format!("{base}/api/v1/requests"))
        .bearer_auth(&t.officer)
        .json(&serde_json::json!({"kind": "access", "identities": {"email": "a@b.de"}, "note": big_note}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(content_type(&resp).contains("json"));
    assert_eq!(error_code(&resp.text().await.unwrap()), "body_too_large");

    // The verify route reads raw bytes: its plain-text 413 becomes the JSON error too.
    let huge = format!("{{\"jws\": \"{}\"}}", "A".repeat(1_200_000));
    let resp = http
        .post(format!("{base}/api/v1/certificates/verify"))
        .bearer_auth(&t.officer)
        .header(CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(content_type(&resp).contains("json"));
    assert_eq!(error_code(&resp.text().await.unwrap()), "body_too_large");
    // ... but it has its own larger limit: a certificate-sized body over max_body_bytes
    // is read and judged (not a certificate: valid=false).
    let resp = http
        .post(format!("{base}/api/v1/certificates/verify"))
        .bearer_auth(&t.officer)
        .header(CONTENT_TYPE, "application/json")
        .body(format!("{{\"jws\": \"{}\"}}", "A".repeat(20_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["valid"], false);

    // Web: the sign-in form over the limit gets the HTML error page.
    let resp = http
        .post(format!("{base}/sign-in"))
        .header(ACCEPT, "text/html")
        .form(&[("token", "t".repeat(4096).as_str()), ("_csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(content_type(&resp).starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("413") && html.contains("too large"), "{html}");

    // Web: certificate upload, signed in as an officer.
    let mut w = crate::web::Web::new(&t).await;
    w.sign_in(&t.officer).await;
    let csrf = w.csrf().await;
    let cookie = w.cookie.clone().unwrap();
    let upload = |file: String| {
        let (ct, body) = multipart(&[("_csrf", csrf.as_str()), ("file", file.as_str())]);
        http.post(format!("{base}/verify"))
            .header(COOKIE, cookie.clone())
            .header(CONTENT_TYPE, ct)
            .header(ACCEPT, "text/html")
            .body(body)
            .send()
    };
    let resp = upload("B".repeat(1_200_000)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(content_type(&resp).starts_with("text/html"));
    // A real certificate larger than max_body_bytes uploads and verifies.
    let resp = upload(format!("{{\"jws\": \"{}\"}}", "C".repeat(20_000)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Invalid certificate"),
        "the upload was judged: {}",
        html.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_and_long_targets_414() {
    let t = TestApp::builder()
        .configure(|c| {
            c.http.max_header_bytes = 8192;
            c.http.max_uri_bytes = 2048;
        })
        .build();
    let base = t.serve().await;

    // A head within the limit is served.
    let ok = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(6000)
    );
    let answer = raw_exchange(&base, ok.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // One large header, or many small ones adding up: 431 and the connection closed.
    let one_big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let many: String = (0..90)
        .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(100)))
        .collect();
    let many = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for req in [one_big, many] {
        let answer = raw_exchange(&base, req.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "expected 431, got {:?}",
            answer.lines().next()
        );
    }
    // Too many header fields (over 100) are refused the same way.
    let fields: String = (0..120).map(|i| format!("X-N{i}: 1\r\n")).collect();
    let answer = raw_exchange(
        &base,
        format!("GET /health HTTP/1.1\r\nHost: x\r\n{fields}\r\n").as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{:?}",
        answer.lines().next()
    );

    // A long request target within the head limit: 414 with the JSON error.
    let resp = client()
        .get(format!("{base}/api/v1/requests?state={}", "x".repeat(3000)))
        .bearer_auth(&t.officer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(error_code(&resp.text().await.unwrap()), "uri_too_long");
    // The server still serves after all that.
    let resp = client().get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_rate_limits_per_token_and_per_address() {
    let t = TestApp::builder()
        .configure(|c| {
            c.http.api_per_token = RateSetting {
                per_minute: 60,
                burst: 5,
            };
            c.http.api_per_ip = RateSetting {
                per_minute: 60,
                burst: 8,
            };
        })
        .build();
    let base = t.serve().await;
    let http = client();
    let get = |token: &str| {
        http.get(format!("{base}/api/v1/requests"))
            .bearer_auth(token)
            .send()
    };
    for i in 0..5 {
        assert_eq!(
            get(&t.officer).await.unwrap().status(),
            StatusCode::OK,
            "{i}"
        );
    }
    // The officer's token has used its burst.
    let resp = get(&t.officer).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&resp) >= 1);
    assert!(content_type(&resp).contains("json"));
    assert_eq!(error_code(&resp.text().await.unwrap()), "rate_limited");
    // Another token from the same address has its own budget, but the address's limit
    // (8) caps the two together: 5 + 3.
    for i in 0..3 {
        assert_eq!(
            get(&t.auditor).await.unwrap().status(),
            StatusCode::OK,
            "{i}"
        );
    }
    let resp = get(&t.auditor).await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "per-address limit"
    );
    let wait = retry_after(&resp);
    assert!((1..=2).contains(&wait), "{wait}");
    // Guessing tokens is limited by the address too (and answered before authentication).
    let resp = get("lethe_not_a_token").await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // Health (and metrics) are never limited.
    for _ in 0..20 {
        let resp = http.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // The limit recovers at the sustained rate (one a second here).
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(get(&t.admin).await.unwrap().status(), StatusCode::OK);
}

/// The sign-in form's pre-session cookie and CSRF value.
async fn sign_in_pair(http: &reqwest::Client, base: &str) -> (String, String) {
    let resp = http.get(format!("{base}/sign-in")).send().await.unwrap();
    let cookie = resp
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("pre-session cookie")
        .to_string();
    let html = resp.text().await.unwrap();
    (cookie, crate::web::csrf_of(&html))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_guessing_gets_429_and_recovers() {
    let t = TestApp::builder()
        .configure(|c| {
            c.http.sign_in_per_ip = RateSetting {
                per_minute: 60,
                burst: 3,
            }
        })
        .build();
    let base = t.serve().await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, csrf) = sign_in_pair(&http, &base).await;
    let attempt = |token: String| {
        http.post(format!("{base}/sign-in"))
            .header(COOKIE, cookie.clone())
            .header(ACCEPT, "text/html")
            .form(&[
                ("_csrf", csrf.clone()),
                ("token", token),
                ("next", "/".to_string()),
            ])
            .send()
    };
    // Successful sign-ins do not use up the budget.
    for _ in 0..6 {
        let resp = attempt(t.officer.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    }
    // Failed ones do: three wrong guesses, then 429 for the address.
    for i in 0..3 {
        let resp = attempt(format!("lethe_guess_{i}")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{i}");
    }
    let resp = attempt("lethe_guess_3".into()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&resp);
    assert!(content_type(&resp).starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Too many sign-in attempts"), "{html}");
    // While limited even the right token is refused (the guesser learns nothing).
    let resp = attempt(t.officer.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // The audit log recorded no sign-in for the refused attempts; the form page itself
    // (GET) is never limited.
    let resp = http.get(format!("{base}/sign-in")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let resp = attempt(t.officer.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "recovered");
}

/// Injection payloads as identity values. The tracer gets them raw (no normalizer in
/// between), the worst case for SQL building.
const PAYLOADS: &[&str] = &[
    "' OR 1=1 --",
    "' OR '1'='1",
    "\"; DROP TABLE contacts; --",
    "'); DELETE FROM contacts; --",
    "jane.doe@example.com' OR 'x'='x",
    "\\'; DROP TABLE contacts; --",
    "\\",
    "%",
    "%@%",
    "_%_",
    "' UNION SELECT id, email FROM contacts --",
    "CUST-0000001' --",
    "+49301234567' OR '1'='1",
    "\u{ff07} OR 1=1 --",
    "a\u{7f}b\u{1b}[0m",
];

/// NUL and other control characters never get as far as SQL: every normalizer refuses them
/// when a request is created (a 422 over HTTP).
const REFUSED: &[&str] = &[
    "a\u{0}b@evil.example",
    "x@evil.example\u{0}",
    "\u{0}' OR 1=1 --",
];

/// Identity values with injection characters that the e-mail normalizer accepts, so they
/// travel the whole request path (create, plan, execute).
const NORMALIZABLE: &[&str] = &[
    "'or'1'='1'--@evil.example",
    "x'--@evil.example",
    "%_'--@evil.example",
    "jane.doe'--@example.com",
];

fn check_identity_injection(t: &TestApp) {
    let before = dump(&t.crm);
    let opts = TraceOptions::default();
    for payload in PAYLOADS {
        for kind in ["email", "phone", "customer_no"] {
            let fp = t
                .app
                .trace(
                    &[Identity {
                        kind: kind.into(),
                        value: (*payload).into(),
                    }],
                    &opts,
                )
                .unwrap_or_else(|e| panic!("{kind} {payload:?}: {e}"));
            assert!(
                fp.tables.is_empty() && fp.mentions.is_empty(),
                "{kind} {payload:?} found {} tables, {} mentions",
                fp.tables.len(),
                fp.mentions.len()
            );
        }
    }
    // Past the normalizers too, the tracer refuses a NUL itself (naming the kind, not the
    // value) instead of handing it to a database that cannot compare it.
    for raw in REFUSED {
        let err = t
            .app
            .trace(
                &[Identity {
                    kind: "email".into(),
                    value: (*raw).into(),
                }],
                &opts,
            )
            .err()
            .unwrap_or_else(|| panic!("{raw:?} was traced"));
        assert!(
            matches!(err, lethe::trace::TraceError::InvalidIdentityValue(ref k) if k == "email"),
            "{raw:?}: {err}"
        );
        assert!(!err.to_string().contains("evil"), "{err}");
    }
    let actor = Actor::cli();
    for raw in REFUSED {
        match service::create(&t.app, &actor, new_request(RequestKind::Erasure, raw)) {
            Err(lethe::request::RequestError::Invalid { field, .. }) => {
                assert!(field.starts_with("identities"), "{field}");
            }
            other => panic!(
                "{raw:?} was not refused as invalid: {:?}",
                other.map(|r| r.id)
            ),
        }
    }
    // The whole erasure path with values the normalizer lets through.
    for email in NORMALIZABLE {
        let r = service::create(&t.app, &actor, new_request(RequestKind::Erasure, email))
            .unwrap_or_else(|e| panic!("{email}: {e}"));
        service::verify(&t.app, &actor, &r.id, "document_check", None).unwrap();
        run::plan(&t.app, &actor, &r.id).unwrap();
        let (_, plan) = run::load_plan(&t.app, &r.id).unwrap();
        assert_eq!(plan.actionable_rows(), 0, "{email}: nothing to erase");
        run::approve(&t.app, &actor, &r.id, Some("reviewed")).unwrap();
        let done = run::execute(&t.app, &actor, &r.id).unwrap();
        assert!(
            done.state == "completed" || done.state == "partially_completed",
            "{email}: {}",
            done.state
        );
    }
    // The CRM is exactly as before: every row of every table.
    assert_eq!(before, dump(&t.crm), "the CRM changed");
    // Still there, and still found: the data was not touched.
    let fp = t
        .app
        .trace(
            &[Identity {
                kind: "email".into(),
                value: "jane.doe@example.com".into(),
            }],
            &opts,
        )
        .unwrap();
    assert!(!fp.tables.is_empty());
}

#[test]
fn identity_values_with_sql_injection_are_only_bound_sqlite() {
    let t = TestApp::builder().crm(Crm::sqlite(200)).build();
    check_identity_injection(&t);
}

#[test]
fn identity_values_with_sql_injection_are_only_bound_postgres() {
    let db = crate::require_pg!();
    let t = TestApp::builder().crm(Crm::postgres(db, 200)).build();
    check_identity_injection(&t);
}

/// A small data map with a placeholder for each kind of identifier that reaches SQL.
const MAP: &str = r#"[controller]
name = "Test Ltd"
contact = "privacy@test.example"

[sources.crm]
url = "sqlite://unused.db"

[identities.email]
normalizer = "email"

[categories.contact]
label = "Contact"

[purposes.crm]
description = "CRM"
legal_basis = "contract"

[tables.TABLE]
source = "crm"
primary_key = ["PKEY"]
purposes = ["crm"]
retention = "1 year"
on_erasure = "delete"
ignore = { IGNORED = "not personal" }
identities = [{ kind = "email", column = "IDCOL" }]
[tables.TABLE.columns]
IDCOL = { category = "contact" }
COLUMN = { category = "contact" }

[tables.notes]
source = "crm"
primary_key = ["id"]
purposes = ["crm"]
retention = "1 year"
on_erasure = "delete"
links = [{ from = "TABLE", on = { LINKCOL = "PKEY" }, type_column = "TYPECOL", type_value = "Contact", where = [{ column = "CONDCOL", op = "=", value = "x" }] }]
[tables.notes.columns]
body = { category = "contact" }
"#;

const PLACEHOLDERS: &[(&str, &str)] = &[
    ("TABLE", "contacts"),
    ("PKEY", "id"),
    ("IGNORED", "owner_id"),
    ("IDCOL", "email"),
    ("COLUMN", "city"),
    ("LINKCOL", "contact_id"),
    ("TYPECOL", "subject_type"),
    ("CONDCOL", "status"),
];

/// Identifiers that try to break out of SQL quoting (each written as a TOML key or string).
const BAD_IDENTIFIERS: &[&str] = &[
    "contacts; DROP TABLE x",
    "contacts\\\"; DROP TABLE x; --",
    "contacts' OR '1'='1",
    "con`tacts",
    "contacts--",
    "contacts /* */",
    "\u{441}ontacts",   // Cyrillic es, looks like "c"
    "contacts\u{200b}", // zero-width space
    "contacts ",
    "contacts\\u0000",
    "1contacts",
    "contacts.email",
    "",
];

fn map_with(placeholder: &str, bad: &str) -> String {
    let mut text = MAP.to_string();
    for (p, good) in PLACEHOLDERS {
        let value = if *p == placeholder { bad } else { good };
        // Table names and column keys are TOML keys: quote them so any text is a key.
        text = text
            .replace(&format!("[tables.{p}]"), &format!("[tables.\"{value}\"]"))
            .replace(
                &format!("[tables.{p}.columns]"),
                &format!("[tables.\"{value}\".columns]"),
            )
            .replace(&format!("\"{p}\""), &format!("\"{value}\""))
            .replace(&format!("{{ {p} = "), &format!("{{ \"{value}\" = "))
            .replace(&format!("\n{p} = "), &format!("\n\"{value}\" = "));
    }
    text
}

#[test]
fn policy_identifiers_with_sql_injection_are_refused_with_file_and_line() {
    let file = "policies/inject.toml";
    // The map loads with plain identifiers.
    let good = map_with("", "");
    lethe::policy::load_texts(&[(file.to_string(), good)])
        .unwrap_or_else(|e| panic!("the clean map loads: {e}"));
    for (placeholder, _) in PLACEHOLDERS {
        for bad in BAD_IDENTIFIERS {
            let text = map_with(placeholder, bad);
            let errors = match lethe::policy::load_texts(&[(file.to_string(), text.clone())]) {
                Ok(_) => panic!("{placeholder} = {bad:?} was accepted"),
                Err(e) => e.0,
            };
            // An error on a line that carries the bad identifier, naming the file.
            let written = bad.replace("\\\"", "\"");
            let lines: Vec<u32> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| {
                    l.contains(&format!("\"{bad}\"")) || (!bad.is_empty() && l.contains(bad))
                })
                .map(|(i, _)| u32::try_from(i + 1).unwrap())
                .collect();
            assert!(
                errors
                    .iter()
                    .any(|d| d.is_error() && &*d.at.file == file && lines.contains(&d.at.line)),
                "{placeholder} = {written:?}: no error at lines {lines:?}: {errors:?}"
            );
        }
    }
}

#[test]
fn retention_identifiers_with_sql_injection_are_refused_with_file_and_line() {
    let map = std::fs::read_to_string(crate::support::policies_dir().join("datamap.toml"))
        .expect("demo data map");
    let rule = |name: &str, table: &str, anchor: &str, column: &str, cascade: &str| {
        format!(
            "[[rules]]\nname = \"{name}\"\ntable = \"{table}\"\nanchor = \"{anchor}\"\nwindow = \"1 year\"\nconditions = [{{ column = \"{column}\", op = \"=\", value = \"x\" }}]\ncascade = [\"{cascade}\"]\naction = \"delete\"\nbasis = \"test\"\n"
        )
    };
    let load = |rules: String| {
        lethe::policy::load_texts(&[
            ("policies/datamap.toml".to_string(), map.clone()),
            ("policies/retention.toml".to_string(), rules),
        ])
    };
    load(rule(
        "old_tickets",
        "tickets",
        "created_at",
        "status",
        "ticket_messages",
    ))
    .unwrap_or_else(|e| panic!("the clean rule loads: {e}"));
    for bad in [
        "tickets; DROP TABLE x",
        "tickets' --",
        "ti\u{441}kets",
        "tickets\u{200b}",
        "`tickets`",
    ] {
        let (t, a, c, m) = ("tickets", "created_at", "status", "ticket_messages");
        for (line, rules) in [
            (2, rule(bad, t, a, c, m)),
            (3, rule("r", bad, a, c, m)),
            (4, rule("r", t, bad, c, m)),
            (6, rule("r", t, a, bad, m)),
            (7, rule("r", t, a, c, bad)),
        ] {
            let errors = match load(rules) {
                Ok(_) => panic!("{bad:?} on line {line} was accepted"),
                Err(e) => e.0,
            };
            assert!(
                errors.iter().any(|d| d.is_error()
                    && &*d.at.file == "policies/retention.toml"
                    && d.at.line == line),
                "{bad:?}: no error at retention.toml:{line}: {errors:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_drains_and_stops_on_shutdown() {
    let t = TestApp::builder().build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lethe::http::server::serve(
        listener,
        t.app.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    // A keep-alive client with an idle connection open.
    let http = client();
    let resp = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    stop.send(()).unwrap();
    // The idle connection is closed and the server returns promptly.
    let done = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "the server did not stop: {done:?}"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no new connections after shutdown"
    );
}
