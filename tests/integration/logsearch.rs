//! No identity value, name, token, cookie, CSRF token, download token or master key in the
//! logs: a full demo scenario against a real `lethe serve` child process at debug level (in
//! text and in JSON), then every captured line (stdout and stderr of the server, stderr of
//! the set-up commands) is searched for every secret and personal value the scenario used,
//! in its raw, normalized and encoded spellings.
//!
//! The scenario: web sign-in (pre-session cookie, session cookie, CSRF), an access request
//! made and run on the web, a failed sign-in; over the API with the officer token: access
//! (export JSON, CSV and any download link), erasure (plan, review, approve, execute,
//! certificate fetched and verified, a tampered one rejected), rectification, opt-out, a
//! denial with a notice, a legal hold with a reason and its release, a retention run, bad
//! input (400, 422), wrong tokens (401), an auditor's read and `/metrics` scrapes.
//!
//! The logs must be substantial for the search to mean anything: the test asserts access
//! lines with request ids for the calls made, job events, and the scenario's request ids.

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `lethe` in `dir` at debug level, with no LETHE_* setting inherited from the caller.
fn lethe(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
    c.args(args).current_dir(dir).env("LETHE_LOG", "debug");
    for (k, _) in std::env::vars() {
        if k.starts_with("LETHE_") {
            c.env_remove(k);
        }
    }
    c.env("LETHE_LOG", "debug");
    c
}

/// A text's lines, `\r` progress updates split too.
fn lines_of(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split(['\n', '\r'])
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The running server; killed if the test fails before it is stopped.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path, port: u16, json_logs: bool, metrics_token: &str) -> Server {
        let mut args = Vec::new();
        if json_logs {
            args.extend(["--log-format", "json"]);
        }
        args.push("serve");
        let mut child = lethe(dir, &args)
            .env("LETHE_LISTEN", format!("127.0.0.1:{port}"))
            // Where `lethe demo` wrote the demo data map (its CRM is named in it).
            .env("LETHE_POLICY_DIR", "lethe-data/policies")
            .env("LETHE_JOB_POLL_MS", "100")
            .env("LETHE_METRICS_TOKEN", metrics_token)
            .env("LETHE_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lethe serve");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for stream in [out, err] {
            let lines = lines.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            }));
        }
        Server {
            child,
            lines,
            readers,
        }
    }

    /// SIGTERM, a clean exit, and every line it wrote.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "lethe serve exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "lethe serve did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        for r in self.readers.drain(..) {
            r.join().expect("reader");
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything that must never be in a log line, with what it is.
#[derive(Default)]
struct Needles(Vec<(String, String)>);

impl Needles {
    fn add(&mut self, what: &str, value: &str) {
        let v = value.trim().to_lowercase();
        if !v.is_empty() && !self.0.iter().any(|(_, n)| *n == v) {
            self.0.push((what.to_string(), v));
        }
    }

    /// An identity value in the spellings a careless log line could carry: as typed,
    /// trimmed and lower-cased, URL-encoded, and for phone numbers the E.164 form, the digits
    /// alone and the national number.
    fn identity(&mut self, what: &str, typed: &str) {
        self.add(what, typed);
        self.add(what, &typed.replace('@', "%40"));
        self.add(what, &typed.replace('@', "\\u0040"));
        if typed.starts_with('+') {
            let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
            self.add(what, &format!("+{digits}"));
            self.add(what, &digits);
            if let Some(national) = digits.strip_prefix("49") {
                self.add(what, national);
                self.add(what, &format!("0{national}"));
            }
        }
    }
}

/// Whether `word` occurs in `hay` (both lower-case) with no letter or digit either side.
fn contains_word(hay: &str, word: &str) -> bool {
    hay.match_indices(word).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The `X-Request-Id` of every response the scenario got: each must have its access line.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn note(&self, resp: &reqwest::Response) {
        let id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("every response has X-Request-Id");
        self.0.lock().unwrap().push(id.to_string());
    }

    fn ids(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// The API client of the scenario.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    seen: Seen,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        self.seen.note(&resp);
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A request built by the caller, sent with this client's token.
    async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let resp = req.bearer_auth(&self.token).send().await.unwrap();
        self.seen.note(&resp);
        resp
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, path, None).await;
        assert!(s.is_success(), "GET {path}: {s} {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(s.is_success(), "POST {path}: {s} {v}");
        v
    }

    async fn create(&self, body: Value) -> String {
        let v = self.post("/api/v1/requests", body).await;
        v["id"].as_str().expect("request id").to_string()
    }

    /// Waits until the request is in a final state (or one of `states`).
    async fn wait_state(&self, id: &str, states: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let v = self.get(&format!("/api/v1/requests/{id}")).await;
            let state = v["state"].as_str().unwrap_or_default().to_string();
            if states.contains(&state.as_str()) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "request {id} stuck in {state}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `/exports/<token>` download links in a text, as (path, token).
fn download_links(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("/exports/") {
        let token: String = text[i + "/exports/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if token.len() >= 16 {
            out.push((format!("/exports/{token}"), token));
        }
    }
    out
}

/// Fetches an export the way the server offers it (the body itself, or a download link in
/// the body or a redirect), and downloads every link; link tokens become needles.
async fn fetch_export(api: &Api, url: &str, needles: &mut Needles) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = api.send(http.get(format!("{}{url}", api.base))).await;
    let status = resp.status();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.bytes().await.unwrap();
    assert!(
        status.is_success() || status.is_redirection(),
        "export {url}: {status}"
    );
    let text = String::from_utf8_lossy(&bytes).to_string();
    let mut links = download_links(&location);
    links.extend(download_links(&text));
    links.sort();
    links.dedup();
    for (path, token) in links {
        needles.add("download link token", &token);
        let r = http
            .get(format!("{}{path}", api.base))
            .send()
            .await
            .unwrap();
        api.seen.note(&r);
        assert!(r.status().is_success(), "download {path}: {}", r.status());
        assert!(!r.bytes().await.unwrap().is_empty());
    }
}

/// The value of a `Set-Cookie` header named `name`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?;
        let (n, value) = pair.split_once('=')?;
        (n == name && !value.is_empty()).then(|| value.to_string())
    })
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("page has a CSRF field");
    let rest = &html[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

/// The web part: sign in (cookies and CSRF become needles), an access request for Erika
/// made, verified and run from the pages, its export page, a wrong token, sign-out.
async fn web_scenario(base: &str, officer: &str, seen: &Seen, needles: &mut Needles) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in_page = async || {
        let resp = http.get(format!("{base}/sign-in")).send().await.unwrap();
        seen.note(&resp);
        let pre = set_cookie(&resp, "lethe_signin").expect("sign-in cookie");
        let html = resp.text().await.unwrap();
        (format!("lethe_signin={pre}"), pre, csrf_of(&html))
    };
    // A wrong token first: refused, no session.
    let wrong = format!("lethe_officer_{}", uuid::Uuid::new_v4().simple());
    needles.add("wrong sign-in token", &wrong);
    let (cookie, pre, csrf) = sign_in_page().await;
    needles.add("pre-session cookie", &pre);
    needles.add("sign-in CSRF token", &csrf);
    let resp = http
        .post(format!("{base}/sign-in"))
        .header(COOKIE, &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("token", wrong.as_str()),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    seen.note(&resp);
    assert!(
        resp.status().is_client_error(),
        "wrong token: {}",
        resp.status()
    );
    // The officer's token.
    let (cookie, pre, csrf) = sign_in_page().await;
    needles.add("pre-session cookie", &pre);
    needles.add("sign-in CSRF token", &csrf);
    let resp = http
        .post(format!("{base}/sign-in"))
        .header(COOKIE, &cookie)
        .form(&[("_csrf", csrf.as_str()), ("token", officer), ("next", "/")])
        .send()
        .await
        .unwrap();
    seen.note(&resp);
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(&resp, "lethe_session").expect("session cookie");
    needles.add("session cookie", &session);
    let cookie = format!("lethe_session={session}");
    let get = async |path: &str| {
        let resp = http
            .get(format!("{base}{path}"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        seen.note(&resp);
        let status = resp.status();
        (status, resp.text().await.unwrap())
    };
    let post = async |path: &str, fields: &[(&str, &str)]| {
        let resp = http
            .post(format!("{base}{path}"))
            .header(COOKIE, &cookie)
            .form(fields)
            .send()
            .await
            .unwrap();
        seen.note(&resp);
        let status = resp.status();
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, loc)
    };
    let (status, html) = get("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);
    needles.add("session CSRF token", &csrf);
    let (status, loc) = post(
        "/requests",
        &[
            ("_csrf", csrf.as_str()),
            ("kind", "access"),
            ("regime", "gdpr"),
            ("channel", "phone"),
            ("id_email", "Erika.Musterfrau@acme-logistics.example"),
            ("id_phone", "+49 30 9876543"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{loc}");
    let path = loc.split('?').next().unwrap_or_default().to_string();
    for (action, extra) in [("verify", Some(("method", "in_person"))), ("run", None)] {
        let mut fields = vec![("_csrf", csrf.as_str())];
        fields.extend(extra);
        let (status, loc) = post(&format!("{path}/{action}"), &fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{action}: {loc}");
    }
    let (status, html) = get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("erika.musterfrau@acme-logistics.example"));
    for (link, token) in download_links(&html) {
        needles.add("download link token", &token);
        let (status, _) = get(&link).await;
        assert!(status.is_success(), "{link}: {status}");
    }
    let (status, page) = get(&format!("{path}/export?format=json")).await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    for (link, token) in download_links(&page) {
        needles.add("download link token", &token);
        let (status, _) = get(&link).await;
        assert!(status.is_success(), "{link}: {status}");
    }
    for page in [
        "/requests?state=completed",
        "/holds",
        "/retention",
        "/audit",
        "/certificates",
    ] {
        let (status, _) = get(page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
    }
    let (status, _) = post("/sign-out", &[("_csrf", csrf.as_str())]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// The API part; returns the ids of the data-subject requests it made (their events must
/// be in the logs).
async fn api_scenario(
    api: &Api,
    auditor: &Api,
    metrics_token: &str,
    needles: &mut Needles,
) -> Vec<String> {
    let mut request_ids = Vec::new();

    // Access for Jane with every identity kind, as typed.
    let jane = json!([
        {"kind": "email", "value": " Jane.Doe@Example.com"},
        {"kind": "phone", "value": "+49 30 1234567"},
        {"kind": "customer_no", "value": "CUST-0000001"},
    ]);
    let access = api
        .create(
            json!({"kind": "access", "regime": "gdpr", "identities": jane, "channel": "email",
            "note": "Jane Doe asked by e-mail from jane.doe@example.com"}),
        )
        .await;
    request_ids.push(access.clone());
    api.post(
        &format!("/api/v1/requests/{access}/verify"),
        json!({"method": "email_confirmation", "note": "replied from Jane.Doe@Example.com"}),
    )
    .await;
    api.post(&format!("/api/v1/requests/{access}/run"), json!({}))
        .await;
    let view = api
        .wait_state(&access, &["completed", "partially_completed"])
        .await;
    for (_, token) in download_links(&view.to_string()) {
        needles.add("download link token", &token);
    }
    let export = &view["export"];
    for key in ["json_url", "csv_url"] {
        if let Some(url) = export[key].as_str() {
            let url = url.strip_prefix(&api.base).unwrap_or(url).to_string();
            fetch_export(api, &url, needles).await;
        }
    }
    fetch_export(api, &format!("/api/v1/requests/{access}/export"), needles).await;

    // Erasure for Jane: plan, review, approve, execute; the certificate, verified.
    let erasure = api
        .create(json!({"kind": "erasure", "regime": "gdpr", "identities": jane}))
        .await;
    request_ids.push(erasure.clone());
    api.post(
        &format!("/api/v1/requests/{erasure}/verify"),
        json!({"method": "document_check", "note": "passport of Jane Doe checked"}),
    )
    .await;
    api.post(&format!("/api/v1/requests/{erasure}/plan"), json!({}))
        .await;
    let plan = api.get(&format!("/api/v1/requests/{erasure}/plan")).await;
    assert!(plan.to_string().contains("contacts"), "{plan}");
    api.post(
        &format!("/api/v1/requests/{erasure}/approve"),
        json!({"note": "approved for Jane Doe"}),
    )
    .await;
    api.post(&format!("/api/v1/requests/{erasure}/execute"), json!({}))
        .await;
    let done = api
        .wait_state(&erasure, &["completed", "partially_completed"])
        .await;
    let cert = done["certificates"][0]["id"]
        .as_str()
        .expect("erasure certificate")
        .to_string();
    let shown = auditor.get(&format!("/api/v1/certificates/{cert}")).await;
    assert_eq!(shown["verification"]["valid"], json!(true), "{shown}");
    let jws = api
        .send(
            api.http
                .get(format!("{}/api/v1/certificates/{cert}/jws", api.base)),
        )
        .await
        .text()
        .await
        .unwrap();
    let (s, ok) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/certificates/verify",
            Some(serde_json::from_str(&jws).unwrap()),
        )
        .await;
    assert_eq!((s, ok["valid"].clone()), (StatusCode::OK, json!(true)));
    let mut tampered: Value = serde_json::from_str(&jws).unwrap();
    let payload = tampered["payload"].as_str().unwrap().to_string();
    tampered["payload"] = json!(format!("{}A", &payload[..payload.len() - 1]));
    let (_, bad) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/certificates/verify",
            Some(json!({"jws": tampered})),
        )
        .await;
    assert_eq!(bad["valid"], json!(false), "{bad}");
    api.get("/.well-known/jwks.json").await;

    // Rectification for Max: his city, corrected.
    let max = json!({"email": "Max@Mustermann-IT.example", "customer_no": "CUST-0000003"});
    let rect = api
        .create(
            json!({"kind": "rectification", "regime": "gdpr", "identities": max,
            "changes": [{"table": "contacts", "column": "city", "value": "Quedlinburg-Ost"}]}),
        )
        .await;
    request_ids.push(rect.clone());
    api.post(
        &format!("/api/v1/requests/{rect}/verify"),
        json!({"method": "account_login"}),
    )
    .await;
    api.post(&format!("/api/v1/requests/{rect}/plan"), json!({}))
        .await;
    api.post(&format!("/api/v1/requests/{rect}/approve"), json!({}))
        .await;
    api.post(&format!("/api/v1/requests/{rect}/execute"), json!({}))
        .await;
    api.wait_state(&rect, &["completed", "partially_completed"])
        .await;

    // Opt-out for the other Jane Doe (CCPA).
    let opt_out = api
        .create(json!({"kind": "opt_out", "regime": "ccpa", "identities": {"email": "Jane.Doe@Otherco.example", "phone": "+49 40 7654321"}}))
        .await;
    request_ids.push(opt_out.clone());
    api.post(&format!("/api/v1/requests/{opt_out}/run"), json!({}))
        .await;
    api.wait_state(&opt_out, &["completed"]).await;

    // A denial with reason and notice (free text naming the person).
    let denied = api
        .create(json!({"kind": "erasure", "regime": "gdpr", "identities": {"email": "erika.musterfrau@acme-logistics.example"}}))
        .await;
    request_ids.push(denied.clone());
    api.post(
        &format!("/api/v1/requests/{denied}/deny"),
        json!({"reason": "Erika Musterfrau could not prove her identity",
               "notice": "Dear Erika Musterfrau, you may complain to the supervisory authority."}),
    )
    .await;

    // A legal hold on Max, with a reason, and its release.
    let hold = api
        .post(
            "/api/v1/holds",
            json!({"scope": "subject", "identities": {"email": "max@mustermann-it.example", "phone": "+49 89 5550123"},
                   "matter": "Mustermann v. Acme Logistics", "reason": "litigation hold for Max Mustermann"}),
        )
        .await;
    let hold_id = hold["id"].as_str().expect("hold id").to_string();
    auditor.get(&format!("/api/v1/holds/{hold_id}")).await;
    auditor.get("/api/v1/holds").await;
    api.post(
        &format!("/api/v1/holds/{hold_id}/release"),
        json!({"reason": "settled with Max Mustermann"}),
    )
    .await;

    // A retention run, to its end.
    let (s, _) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/retention/runs",
            Some(json!({"rule": "web_sessions"})),
        )
        .await;
    assert!(s.is_success(), "retention run: {s}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let runs = api
            .get("/api/v1/retention/runs?rule=web_sessions&limit=1")
            .await;
        let run = runs["runs"]
            .get(0)
            .or_else(|| runs.get(0))
            .cloned()
            .unwrap_or(Value::Null);
        if run["status"].as_str().is_some_and(|s| s != "running") {
            assert_eq!(run["status"], json!("completed"), "{run}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention run did not finish: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Bad input, in every way that carries personal data: 422s and a 400.
    for body in [
        json!({"kind": "forget-me", "regime": "gdpr", "identities": {"email": "jane.doe@example.com"}}),
        json!({"kind": "access", "regime": "gdpr", "identities": {"email": "Jane Doe <jane.doe@example.com"}}),
        json!({"kind": "access", "regime": "gdpr", "identities": {"phone": "+49 30 1234567 ask for Jane"}}),
        json!({"kind": "access", "regime": "gdpr", "identities": {"customer_no": "CUST-0000001", "shoe_size": "42"}}),
        json!({"kind": "rectification", "regime": "gdpr", "identities": {"email": "max@mustermann-it.example"},
               "changes": [{"table": "contacts", "column": "birth_date", "value": "Max Mustermann"}]}),
    ] {
        let (s, v) = api
            .call(
                reqwest::Method::POST,
                "/api/v1/requests",
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    }
    let (s, _) = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/requests/{denied}/verify"),
            Some(json!({"method": "other"})),
        )
        .await;
    assert!(s.is_client_error(), "verify without the note: {s}");
    let resp = api
        .send(
            api.http
                .post(format!("{}/api/v1/requests", api.base))
                .header("content-type", "application/json")
                .body(r#"{"kind": "access", "identities": {"email": "jane.doe@example.com""#),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A token in the query string and an identity in a filter: never logged either.
    let (s, _) = api
        .call(
            reqwest::Method::GET,
            &format!(
                "/api/v1/requests?kind=access&token={}&email=jane.doe%40example.com",
                api.token
            ),
            None,
        )
        .await;
    assert!(s.is_client_error() || s.is_success(), "{s}");

    // Wrong tokens: 401.
    let wrong = format!("lethe_auditor_{}", uuid::Uuid::new_v4().simple());
    needles.add("wrong API token", &wrong);
    for path in ["/api/v1/requests", "/metrics"] {
        let resp = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(&wrong)
            .send()
            .await
            .unwrap();
        api.seen.note(&resp);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }

    // An auditor's read (masked identities) and the lists.
    let masked = auditor.get(&format!("/api/v1/requests/{access}")).await;
    assert!(
        !masked["identities"]
            .to_string()
            .contains("jane.doe@example.com"),
        "{masked}"
    );
    auditor.get("/api/v1/requests?state=open").await;
    auditor.get("/api/v1/audit").await;
    auditor.get("/api/v1/audit/verify").await;
    auditor.get("/api/v1/retention/plan").await;

    // Scrapes with the dedicated token and with an API token.
    for token in [metrics_token, api.token.as_str()] {
        let resp = api
            .http
            .get(format!("{}/metrics", api.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        api.seen.note(&resp);
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        assert!(text.contains("lethe_requests{"));
    }
    request_ids
}

/// Runs the whole scenario with text or JSON logs and searches the logs.
async fn scenario_leaves_no_secret_in_the_logs(json_logs: bool) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Set-up: the demo (CRM, store, master key, officer token), an auditor token. Their
    // stdout is the one-time display of the token; their stderr is logs.
    let mut logs: Vec<String> = Vec::new();
    let out = lethe(dir, &["demo", "--no-serve", "--contacts", "200"])
        .output()
        .expect("lethe demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    logs.extend(lines_of(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let officer = stdout
        .lines()
        .skip_while(|l| !l.starts_with("demo officer token"))
        .nth(1)
        .expect("token line")
        .trim()
        .to_string();
    assert!(officer.starts_with("lethe_"), "{stdout}");
    let out = lethe(dir, &["token", "create", "--role", "auditor", "--json"])
        .output()
        .expect("lethe token create");
    assert!(out.status.success());
    logs.extend(lines_of(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    let auditor = created["token"].as_str().expect("token").to_string();
    let metrics_token = format!("metrics-{}", uuid::Uuid::new_v4().simple());

    let mut needles = Needles::default();
    needles.add("officer token", &officer);
    needles.add("auditor token", &auditor);
    needles.add("metrics token", &metrics_token);
    // The master key as stored, and its bytes in hex and base64 spellings.
    let stored = std::fs::read_to_string(dir.join("lethe-data/master.key")).expect("master key");
    let stored = stored.trim();
    needles.add("master key (file)", stored);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stored)
        .or_else(|_| hex::decode(stored))
        .expect("master key bytes");
    needles.add("master key (hex)", &hex::encode(&bytes));
    needles.add(
        "master key (base64)",
        &base64::engine::general_purpose::STANDARD.encode(&bytes),
    );
    needles.add(
        "master key (base64url)",
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes),
    );
    // The people: identities as typed and normalized, names, free text typed about them.
    for (what, v) in [
        ("Jane's e-mail", "Jane.Doe@Example.com"),
        ("Jane's phone", "+49 30 1234567"),
        ("Jane's customer number", "CUST-0000001"),
        ("Max's e-mail", "Max@Mustermann-IT.example"),
        ("Max's phone", "+49 89 5550123"),
        ("Max's customer number", "CUST-0000003"),
        ("Erika's e-mail", "Erika.Musterfrau@acme-logistics.example"),
        ("Erika's phone", "+49 30 9876543"),
        ("other Jane's e-mail", "Jane.Doe@Otherco.example"),
        ("other Jane's phone", "+49 40 7654321"),
    ] {
        needles.identity(what, v);
    }
    for (what, v) in [
        ("name", "Jane Doe"),
        ("name", "Max Mustermann"),
        ("name", "Mustermann"),
        ("name", "Erika Musterfrau"),
        ("name", "Musterfrau"),
        ("rectified value", "Quedlinburg-Ost"),
        ("hold matter", "Mustermann v. Acme Logistics"),
        ("hold reason", "litigation hold for Max Mustermann"),
        (
            "denial notice",
            "you may complain to the supervisory authority",
        ),
    ] {
        needles.add(what, v);
    }
    let words = ["jane", "doe", "erika"];

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server::start(dir, port, json_logs, &metrics_token);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let ready = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < ready, "lethe serve did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = Seen::default();
    web_scenario(&base, &officer, &seen, &mut needles).await;
    let api = Api {
        http: http.clone(),
        base: base.clone(),
        token: officer.clone(),
        seen: seen.clone(),
    };
    let auditor_api = Api {
        http: http.clone(),
        base: base.clone(),
        token: auditor.clone(),
        seen: seen.clone(),
    };
    let request_ids = api_scenario(&api, &auditor_api, &metrics_token, &mut needles).await;
    let served = server.stop();

    // The logs are substantial: an access line with its request id for every response the
    // scenario got, the scenario's requests and jobs.
    let calls = seen.ids();
    let access: Vec<&String> = served
        .iter()
        .filter(|l| l.contains("http request"))
        .collect();
    assert!(
        calls.len() >= 50,
        "the scenario made only {} calls",
        calls.len()
    );
    assert!(
        access.len() >= calls.len(),
        "{} access lines for {} calls",
        access.len(),
        calls.len()
    );
    for id in &calls {
        assert!(
            access.iter().any(|l| l.contains(id.as_str())),
            "no access line for request id {id}"
        );
    }
    for needle in [
        "/api/v1/requests/{id}/verify",
        "/api/v1/certificates/{id}/jws",
        "401",
        "422",
        "400",
        "/sign-in",
    ] {
        assert!(
            access.iter().any(|l| l.contains(needle)),
            "no access line with {needle}"
        );
    }
    for id in &request_ids {
        assert!(
            served.iter().any(|l| l.contains(id.as_str())),
            "request {id} is not in the logs"
        );
    }
    for event in [
        "request created",
        "job done",
        "retention run finished",
        "lethe serving",
        "lethe stopped",
    ] {
        assert!(
            served.iter().any(|l| l.contains(event)),
            "no \"{event}\" line"
        );
    }
    assert!(
        served.iter().any(|l| l.contains("request.execute")),
        "no request.execute job event"
    );
    if json_logs {
        for l in &served {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
        }
    }

    // The search: every line, and for JSON lines every decoded string in them.
    logs.extend(served);
    // LETHE_TEST_LOGSEARCH_DUMP=DIR keeps the searched lines for a look.
    if let Ok(dump) = std::env::var("LETHE_TEST_LOGSEARCH_DUMP") {
        let file = Path::new(&dump).join(if json_logs { "json.log" } else { "text.log" });
        std::fs::write(&file, logs.join("\n")).expect("write the log dump");
    }
    let leaks = find_leaks(&logs, &needles, &words);
    eprintln!(
        "log search ({}): {} HTTP calls, {} lines searched for {} needles and {} name words; {} leaks",
        if json_logs { "json" } else { "text" },
        calls.len(),
        logs.len(),
        needles.0.len(),
        words.len(),
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
}

/// Every needle and name word found in the lines (case-insensitive), each with its line;
/// a JSON line is searched as written and in every string it decodes to.
fn find_leaks(lines: &[String], needles: &Needles, words: &[&str]) -> Vec<String> {
    let mut leaks = Vec::new();
    for line in lines {
        let mut texts = vec![line.to_lowercase()];
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            let mut strings = Vec::new();
            collect_strings(&v, &mut strings);
            texts.extend(strings.into_iter().map(|s| s.to_lowercase()));
        }
        for text in &texts {
            for (what, needle) in &needles.0 {
                if text.contains(needle.as_str()) {
                    leaks.push(format!("{what} ({needle}) in: {line}"));
                }
            }
            for w in words {
                if contains_word(text, w) {
                    leaks.push(format!("name \"{w}\" in: {line}"));
                }
            }
        }
    }
    leaks
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

#[test]
fn needles_are_found_in_their_spellings() {
    let mut n = Needles::default();
    n.identity("phone", "+49 30 1234567");
    n.identity("email", "Jane.Doe@Example.com");
    let has = |s: &str| n.0.iter().any(|(_, x)| x == s);
    for s in [
        "+49 30 1234567",
        "+49301234567",
        "49301234567",
        "301234567",
        "0301234567",
        "jane.doe@example.com",
        "jane.doe%40example.com",
    ] {
        assert!(has(s), "{s}");
    }
    // The search finds them in text and in JSON lines, escaped or not, and not elsewhere.
    n.add("token", "lethe_AbC123");
    let lines = |ls: &[&str]| ls.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let found = find_leaks(
        &lines(&[
            "INFO lethe: request created request=42 kind=access",
            "WARN lethe: bad identity JANE.DOE@example.com",
            r#"{"fields":{"message":"x","value":"jane.doe\u0040example.com"}}"#,
            r#"{"fields":{"phone":"+49 (0)30 1234567","digits":"0301234567"}}"#,
            "DEBUG lethe: sign-in token=lethe_abc123",
            "INFO lethe: signed in as Erika",
        ]),
        &n,
        &["erika"],
    );
    let hit = |s: &str| found.iter().any(|f| f.contains(s));
    assert!(!hit("request=42"), "{found:?}");
    assert!(hit("JANE.DOE@example.com"), "{found:?}");
    assert!(hit("\\u0040"), "an escaped e-mail in JSON: {found:?}");
    assert!(hit("0301234567"), "{found:?}");
    assert!(hit("lethe_abc123"), "{found:?}");
    assert!(hit("as Erika"), "{found:?}");
    assert!(contains_word("user jane signed in", "jane"));
    assert!(contains_word("name=doe,", "doe"));
    assert!(!contains_word("it does not", "doe"));
    assert!(!contains_word("janet", "jane"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logsearch_text_logs_hold_no_identity_or_secret() {
    scenario_leaves_no_secret_in_the_logs(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logsearch_json_logs_hold_no_identity_or_secret() {
    scenario_leaves_no_secret_in_the_logs(true).await;
}
