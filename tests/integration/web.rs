//! The web UI over real HTTP (no browser): sign-in and session cookies, CSRF on every
//! mutating form, and auditor sessions refused (403) on every officer page and action.
//! The browser journey lives in `browser_ui`.

use crate::support::{TestApp, client};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

/// A browser-less web client: keeps the session cookie, reads CSRF tokens from pages.
pub struct Web {
    pub base: String,
    http: reqwest::Client,
    pub cookie: Option<String>,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The value of the first `name="_csrf"` hidden field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("page has a CSRF field");
    let rest = &html[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

fn cookie_value(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap_or("")
}

impl Web {
    pub async fn new(t: &TestApp) -> Web {
        Web {
            base: t.serve().await,
            http: no_redirects(),
            cookie: None,
        }
    }

    /// Signs in with a token; panics unless it works.
    pub async fn sign_in(&mut self, token: &str) {
        let resp = self
            .http
            .get(format!("{}/sign-in", self.base))
            .send()
            .await
            .unwrap();
        let pre = resp
            .headers()
            .get(SET_COOKIE)
            .expect("pre-session cookie")
            .to_str()
            .unwrap()
            .to_string();
        let html = resp.text().await.unwrap();
        let resp = self
            .http
            .post(format!("{}/sign-in", self.base))
            .header(COOKIE, cookie_value(&pre))
            .form(&[
                ("_csrf", csrf_of(&html).as_str()),
                ("token", token),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in redirects");
        let session = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("lethe_session=") && !c.starts_with("lethe_session=;"))
            .expect("session cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/"] {
            assert!(session.contains(flag), "{flag} missing from {session}");
        }
        self.cookie = Some(cookie_value(&session).to_string());
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    /// The CSRF token of this session (read from a page every role may see).
    pub async fn csrf(&self) -> String {
        let (status, html) = self.get("/certificates").await;
        assert_eq!(status, StatusCode::OK);
        csrf_of(&html)
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(fields);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let loc = resp
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_string());
        let body = resp.text().await.unwrap();
        (status, loc.unwrap_or(body))
    }

    pub async fn post_multipart(&self, path: &str, fields: &[(&str, &str)]) -> StatusCode {
        let boundary = "lethetestboundary";
        let mut body = String::new();
        for (k, v) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        req.send().await.unwrap().status()
    }
}

/// Creates a request through the API (the web forms are tested separately).
async fn api_request(base: &str, token: &str) -> String {
    let v: serde_json::Value = client()
        .post(format!("{base}/api/v1/requests"))
        .bearer_auth(token)
        .json(&serde_json::json!({"kind": "erasure", "regime": "gdpr",
            "identities": {"email": "jane.doe@example.com"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["id"].as_str().expect("request id").to_string()
}

/// Every mutating form of the UI, with a request and a hold to act on.
fn mutating_forms(request_id: &str, hold_id: &str) -> Vec<String> {
    let mut v = vec![
        "/requests".to_string(),
        "/holds".to_string(),
        format!("/holds/{hold_id}/release"),
        "/retention/runs".to_string(),
        "/sign-out".to_string(),
    ];
    for a in [
        "acknowledge",
        "request_identity",
        "verify",
        "run",
        "plan",
        "approve",
        "execute",
        "deny",
        "withdraw",
        "cancel",
        "extend",
    ] {
        v.push(format!("/requests/{request_id}/{a}"));
    }
    v
}

async fn a_hold(base: &str, token: &str) -> String {
    let v: serde_json::Value = client()
        .post(format!("{base}/api/v1/holds"))
        .bearer_auth(token)
        .json(&serde_json::json!({"scope": "table", "table": "invoices",
            "matter": "Audit 2026", "reason": "tax audit"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["id"].as_str().expect("hold id").to_string()
}

fn audit_len(t: &TestApp) -> usize {
    t.app
        .store
        .read(|c| lethe::audit::page(c, None, 1000))
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn web_sign_in_session_cookie_and_sign_out() {
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    // Not signed in: pages send you to sign in, and come back afterwards.
    let (status, loc) = w.get("/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = w.post("/requests", &[("kind", "access")]).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a form post without a session: {loc}"
    );

    // A wrong token is refused with a message, and no session cookie.
    let resp = no_redirects()
        .get(format!("{}/sign-in", w.base))
        .send()
        .await
        .unwrap();
    let pre = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let html = resp.text().await.unwrap();
    let bad = no_redirects()
        .post(format!("{}/sign-in", w.base))
        .header(COOKIE, cookie_value(&pre))
        .form(&[("_csrf", csrf_of(&html).as_str()), ("token", "lethe_nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(
        bad.headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("lethe_session="))
    );
    assert!(bad.text().await.unwrap().contains("not valid"));
    // The sign-in form itself needs its CSRF pair.
    let no_csrf = no_redirects()
        .post(format!("{}/sign-in", w.base))
        .form(&[("token", t.officer.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    assert!(no_csrf.headers().get(SET_COOKIE).is_none());

    w.sign_in(&t.officer).await;
    let (status, html) = w.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Dashboard</h1>"));
    assert!(html.contains("Open requests by deadline"));
    // The token itself never reaches the page.
    assert!(!html.contains(&t.officer));

    // Security headers on pages.
    let resp = no_redirects()
        .get(format!("{}/dashboard", w.base))
        .header(COOKIE, w.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");

    // Sign out ends the session server-side: the old cookie no longer works.
    let csrf = w.csrf().await;
    let (status, loc) = w.post("/sign-out", &[("_csrf", csrf.as_str())]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(loc, "/sign-in");
    let (status, loc) = w.get("/dashboard").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(loc.is_empty() || loc.contains("sign-in"));

    // Revoking the token ends sessions opened with it.
    let mut w2 = Web::new(&t).await;
    w2.sign_in(&t.admin).await;
    assert_eq!(w2.get("/dashboard").await.0, StatusCode::OK);
    let tokens = t.app.store.read(lethe::store::tokens::list).unwrap();
    let admin = tokens.iter().find(|r| r.role == "admin").unwrap();
    t.app
        .store
        .write(|c| lethe::store::tokens::revoke(c, &admin.id))
        .unwrap();
    assert_eq!(w2.get("/dashboard").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn web_every_mutating_form_rejects_missing_or_wrong_csrf() {
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    let id = api_request(&w.base, &t.officer).await;
    let hold = a_hold(&w.base, &t.officer).await;
    w.sign_in(&t.officer).await;
    let before_requests = t.app.store.read(lethe::store::requests::count).unwrap();
    let before_audit = audit_len(&t);
    let good = w.csrf().await;
    let wrong = format!("{}x", &good[..good.len() - 1]);
    for path in mutating_forms(&id, &hold) {
        for (label, fields) in [
            (
                "missing",
                vec![("reason", "r"), ("note", "n"), ("rule", "stale_leads")],
            ),
            (
                "wrong",
                vec![
                    ("_csrf", wrong.as_str()),
                    ("reason", "r"),
                    ("note", "n"),
                    ("rule", "stale_leads"),
                ],
            ),
            ("empty", vec![("_csrf", ""), ("reason", "r")]),
        ] {
            let (status, body) = w.post(&path, &fields).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{label} CSRF token on {path}: {body}"
            );
            assert!(body.contains("Form check failed"), "{path}: {body}");
        }
    }
    for fields in [
        vec![("jws", "{}")],
        vec![("_csrf", wrong.as_str()), ("jws", "{}")],
    ] {
        assert_eq!(
            w.post_multipart("/verify", &fields).await,
            StatusCode::FORBIDDEN
        );
    }
    // Nothing changed: no request, no audit entry, the request still received, the hold in
    // force, and the session still alive.
    assert_eq!(
        t.app.store.read(lethe::store::requests::count).unwrap(),
        before_requests
    );
    assert_eq!(audit_len(&t), before_audit);
    let row = t
        .app
        .store
        .read(|c| lethe::store::requests::get(c, &id))
        .unwrap();
    assert_eq!(row.state, "received");
    assert!(
        t.app
            .store
            .read(|c| lethe::hold::list(c, true))
            .unwrap()
            .iter()
            .any(|h| h.id == hold)
    );
    assert_eq!(w.get("/dashboard").await.0, StatusCode::OK);

    // With the right token the same forms work (control).
    let (status, loc) = w
        .post(
            &format!("/requests/{id}/acknowledge"),
            &[("_csrf", good.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{loc}");
    assert_eq!(
        w.post_multipart(
            "/verify",
            &[("_csrf", good.as_str()), ("jws", "{\"payload\":\"x\"}")]
        )
        .await,
        StatusCode::OK
    );
    let row = t
        .app
        .store
        .read(|c| lethe::store::requests::get(c, &id))
        .unwrap();
    assert_eq!(row.state, "acknowledged");
}

#[tokio::test(flavor = "multi_thread")]
async fn web_auditor_session_gets_403_on_every_officer_action() {
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    let id = api_request(&w.base, &t.officer).await;
    let hold = a_hold(&w.base, &t.officer).await;
    w.sign_in(&t.auditor).await;
    let csrf = w.csrf().await;
    let before_audit = audit_len(&t);
    for path in mutating_forms(&id, &hold) {
        if path == "/sign-out" {
            continue;
        }
        let (status, body) = w
            .post(
                &path,
                &[
                    ("_csrf", csrf.as_str()),
                    ("reason", "r"),
                    ("rule", "stale_leads"),
                    ("kind", "access"),
                    ("regime", "gdpr"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "auditor POST {path}: {body}");
        assert!(body.contains("for privacy officers"), "{path}: {body}");
    }
    for path in [
        "/dashboard".to_string(),
        "/requests".to_string(),
        "/requests/new".to_string(),
        format!("/requests/{id}"),
        format!("/requests/{id}/export"),
        "/holds".to_string(),
        "/retention".to_string(),
    ] {
        let (status, _) = w.get(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "auditor GET {path}");
    }
    assert_eq!(
        audit_len(&t),
        before_audit,
        "refused actions change nothing"
    );
    let row = t
        .app
        .store
        .read(|c| lethe::store::requests::get(c, &id))
        .unwrap();
    assert_eq!(row.state, "received");
    // The auditor's own pages work and show no officer navigation or actions.
    for path in [
        "/certificates",
        "/verify",
        "/audit",
        "/reports",
        "/data-map",
    ] {
        let (status, html) = w.get(path).await;
        assert_eq!(status, StatusCode::OK, "auditor GET {path}");
        assert!(
            !html.contains("href=\"/dashboard\""),
            "{path} shows officer navigation"
        );
        assert!(
            !html.contains("/acknowledge"),
            "{path} shows an officer action"
        );
    }
    let (_, html) = w.get("/audit").await;
    assert!(html.contains("Chain intact"));
    let (_, html) = w.get("/reports").await;
    assert!(html.contains("Median days to respond"));
    let (status, csv) = w.get("/reports/requests.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("id,kind,regime,state"));
    assert!(csv.contains(&id));
    assert!(
        !csv.contains("jane.doe@example.com"),
        "no identity values in the CSV"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn web_bad_input_gets_a_page_naming_the_field() {
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    w.sign_in(&t.officer).await;
    let csrf = w.csrf().await;
    let before = t.app.store.read(lethe::store::requests::count).unwrap();
    let (status, html) = w
        .post(
            "/requests",
            &[
                ("_csrf", csrf.as_str()),
                ("kind", "access"),
                ("regime", "gdpr"),
                ("id_email", "not an email"),
                ("received_on", "2026-02-30"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains("received_at") || html.contains("email"),
        "{html}"
    );
    assert!(
        html.contains("value=\"not an email\""),
        "the form keeps what was typed"
    );
    assert_eq!(
        t.app.store.read(lethe::store::requests::count).unwrap(),
        before
    );
    let (status, html) = w.get("/requests?state=bogus").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("state"));
    let (status, _) = w.get("/requests/does-not-exist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.get("/certificates/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, html) = w.get("/reports?year=abc").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("year"));
    let (status, _) = w.get("/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = no_redirects()
        .get(format!("{}/no-such-page", w.base))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("There is no page at this address.")
    );
    // An action refused by the workflow shows the request again with the reason (409).
    let id = api_request(&w.base, &t.officer).await;
    let (status, html) = w
        .post(
            &format!("/requests/{id}/execute"),
            &[("_csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("class=\"alert error\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn web_officer_forms_record_requests_holds_and_retention_runs() {
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    w.sign_in(&t.officer).await;
    let csrf = w.csrf().await;

    // Intake: the form records a request with its deadline and identities.
    let (status, html) = w.get("/requests/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("name=\"id_email\""),
        "one field per identity kind"
    );
    let (status, loc) = w
        .post(
            "/requests",
            &[
                ("_csrf", csrf.as_str()),
                ("kind", "access"),
                ("regime", "ccpa"),
                ("channel", "phone"),
                ("received_on", "2026-11-02"),
                ("id_email", " Jane.Doe@Example.com "),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        loc.starts_with("/requests/") && loc.ends_with("?done=created"),
        "{loc}"
    );
    let id = loc
        .trim_start_matches("/requests/")
        .trim_end_matches("?done=created")
        .to_string();
    let row = t
        .app
        .store
        .read(|c| lethe::store::requests::get(c, &id))
        .unwrap();
    assert_eq!(
        (row.kind.as_str(), row.regime.as_str(), row.channel.as_str()),
        ("access", "ccpa", "phone")
    );
    assert_eq!(row.received_at.date().to_string(), "2026-11-02");
    let (status, html) = w.get(&loc).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Request recorded"));
    assert!(
        html.contains("jane.doe@example.com"),
        "normalized identity shown to the officer"
    );
    assert!(
        html.contains("2026-12-17"),
        "CCPA: 45 days from receipt: {html}"
    );
    // Verify and run it from the page: the footprint (with paths) and the export appear.
    for (action, fields) in [
        (
            "verify",
            vec![("_csrf", csrf.as_str()), ("method", "email_confirmation")],
        ),
        ("run", vec![("_csrf", csrf.as_str())]),
    ] {
        let (status, loc) = w.post(&format!("/requests/{id}/{action}"), &fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{action}: {loc}");
    }
    let (_, html) = w.get(&format!("/requests/{id}")).await;
    assert!(html.contains("Records in the export, with the path that found each."));
    assert!(html.contains("<code>contacts</code>"), "{html}");
    assert!(html.contains(&format!("/requests/{id}/export-links")));
    assert!(html.contains("Access certificate"));
    // The export is fetched through a download link the page creates and shows once.
    let (status, page) = w
        .post(
            &format!("/requests/{id}/export-links"),
            &[("_csrf", csrf.as_str()), ("format", "json")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let start = page.find("/exports/").expect("download link on the page");
    let link: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
        .collect();
    let (status, body) = w.get(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("lethe.access-export/1") && body.contains("jane.doe@example.com"));
    // The former download URL leads back to the request page.
    let (status, _) = w.get(&format!("/requests/{id}/export?format=json")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The list shows it; filters work.
    let (_, html) = w.get("/requests?state=completed&regime=ccpa").await;
    assert!(html.contains(&id[..13]));
    let (_, html) = w.get("/requests?state=open").await;
    assert!(!html.contains(&id[..13]));

    // Holds: place one on a table, see it listed, release it with a reason.
    let (status, loc) = w
        .post(
            "/holds",
            &[
                ("_csrf", csrf.as_str()),
                ("scope", "table"),
                ("table", "invoices"),
                ("matter", "Tax audit 2026"),
                ("reason", "auditor asked"),
                ("ground", "legal_obligation"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{loc}");
    let holds = t.app.store.read(|c| lethe::hold::list(c, true)).unwrap();
    let hold = holds
        .iter()
        .find(|h| h.matter == "Tax audit 2026")
        .expect("hold created");
    assert_eq!(hold.ground, "legal_obligation");
    let (_, html) = w.get("/holds").await;
    assert!(html.contains("Tax audit 2026") && html.contains("in force"));
    // A hold without a reason is refused, naming the field; nothing is created.
    let (status, html) = w
        .post(
            "/holds",
            &[
                ("_csrf", csrf.as_str()),
                ("scope", "table"),
                ("table", "invoices"),
                ("matter", "x"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("reason"));
    assert_eq!(
        t.app
            .store
            .read(|c| lethe::hold::list(c, true))
            .unwrap()
            .len(),
        holds.len()
    );
    let (status, _) = w
        .post(
            &format!("/holds/{}/release", hold.id),
            &[("_csrf", csrf.as_str()), ("reason", "audit closed")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        t.app
            .store
            .read(|c| lethe::hold::list(c, true))
            .unwrap()
            .iter()
            .all(|h| h.id != hold.id)
    );
    let (_, html) = w.get("/holds?all=1").await;
    assert!(html.contains("audit closed"));

    // Retention: the plan with forecast, a run started from the page, its progress page.
    let (status, html) = w.get("/retention").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("web_sessions") && html.contains("+90 d"));
    let (status, loc) = w
        .post(
            "/retention/runs",
            &[("_csrf", csrf.as_str()), ("rule", "web_sessions")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{loc}");
    let mut run = None;
    for _ in 0..100 {
        let runs = t
            .app
            .store
            .read(|c| lethe::store::retention::runs(c, Some("web_sessions"), 1))
            .unwrap();
        if let Some(r) = runs.into_iter().next().filter(|r| r.finished_at.is_some()) {
            run = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let run = run.expect("the run finished");
    let (status, html) = w.get(&format!("/retention/runs/{}", run.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!(
            "{}</span><span class=\"kpi-l\">rows deleted",
            run.rows_deleted
        )),
        "{html}"
    );
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a finished run does not refresh"
    );
    let (status, html) = w
        .post(
            "/retention/runs",
            &[("_csrf", csrf.as_str()), ("rule", "no_such_rule")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("no_such_rule"));
    // The dashboard shows the run and the rules.
    let (_, html) = w.get("/dashboard").await;
    assert!(html.contains(&run.id) && html.contains("inactive_contacts"));

    // A portability request shows its per-table counts (its format carries no paths).
    let (_, loc) = w
        .post(
            "/requests",
            &[
                ("_csrf", csrf.as_str()),
                ("kind", "portability"),
                ("regime", "gdpr"),
                ("id_email", "jane.doe@example.com"),
            ],
        )
        .await;
    let pid = loc
        .trim_start_matches("/requests/")
        .trim_end_matches("?done=created")
        .to_string();
    for (action, fields) in [
        (
            "verify",
            vec![("_csrf", csrf.as_str()), ("method", "account_login")],
        ),
        ("run", vec![("_csrf", csrf.as_str())]),
    ] {
        let (status, loc) = w.post(&format!("/requests/{pid}/{action}"), &fields).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{action}: {loc}");
    }
    let (_, html) = w.get(&format!("/requests/{pid}")).await;
    assert!(html.contains("portability export per table"), "{html}");
    assert!(html.contains("<code>contacts</code>"));

    // The data map page draws the graph and lists the tables.
    let (_, html) = w.get("/data-map").await;
    assert!(html.contains("<svg") && html.contains("role=\"img\""));
    assert!(html.contains("id=\"t-contacts\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn web_audit_page_shows_the_chain_and_finds_an_edit() {
    use diesel::prelude::*;
    use lethe::store::schema::audit_log::dsl as a;
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    api_request(&w.base, &t.officer).await;
    w.sign_in(&t.auditor).await;
    let (status, html) = w.get("/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Chain intact") && html.contains("re-hashed just now"),
        "{html}"
    );
    assert!(html.contains("request.created") || html.contains("web.sign_in"));
    // New entries are checked on the next view, on top of the verified prefix.
    api_request(&w.base, &t.officer).await;
    let (_, html) = w.get("/audit").await;
    assert!(
        html.contains("Chain intact") && html.contains("in a full pass at"),
        "{html}"
    );
    // An edited old entry is found by the full pass (on request here; every ten minutes
    // otherwise).
    t.app
        .store
        .write(|c| -> Result<usize, lethe::store::StoreError> {
            Ok(diesel::update(a::audit_log.find(1))
                .set(a::actor.eq("someone-else"))
                .execute(c)?)
        })
        .unwrap();
    let (status, html) = w.get("/audit?verify=full").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Chain BROKEN") && html.contains("entry 1:"),
        "{html}"
    );
    // And stays broken on the next plain view (the verified prefix was dropped).
    let (_, html) = w.get("/audit").await;
    assert!(html.contains("Chain BROKEN"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn web_sign_in_redirects_only_on_site_and_replaces_the_old_session() {
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    let http = no_redirects();
    let base0 = w.base.clone();
    let sign_in_with = |next: &'static str, cookie: Option<String>, proxy_https: bool| {
        let http = http.clone();
        let base = base0.clone();
        let token = t.officer.clone();
        async move {
            let resp = http.get(format!("{base}/sign-in")).send().await.unwrap();
            let pre = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
            let html = resp.text().await.unwrap();
            let mut cookies = cookie_value(&pre).to_string();
            if let Some(c) = cookie {
                cookies = format!("{cookies}; {c}");
            }
            let mut req = http
                .post(format!("{base}/sign-in"))
                .header(COOKIE, cookies)
                .form(&[
                    ("_csrf", csrf_of(&html).as_str()),
                    ("token", token.as_str()),
                    ("next", next),
                ]);
            if proxy_https {
                req = req.header("x-forwarded-proto", "https");
            }
            req.send().await.unwrap()
        }
    };
    // Tabs, CR/LF or a second slash in `next` never leave the site (or break the redirect).
    for next in [
        "/\t/evil.example",
        "//evil.example",
        "/\r\nX: y",
        "https://evil.example",
    ] {
        let resp = sign_in_with(next, None, false).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(resp.headers()[LOCATION], "/dashboard", "{next:?}");
    }
    let resp = sign_in_with("/holds?all=1", None, false).await;
    assert_eq!(resp.headers()[LOCATION], "/holds?all=1");
    // Behind a TLS proxy the cookie is Secure.
    let resp = sign_in_with("/", None, true).await;
    assert!(resp.headers().get_all(SET_COOKIE).iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("lethe_session=") && c.contains("; Secure")
    }));
    // Signing in again ends the session the browser had.
    w.sign_in(&t.officer).await;
    let old = w.cookie.clone().unwrap();
    assert_eq!(w.get("/dashboard").await.0, StatusCode::OK);
    let resp = sign_in_with("/", Some(old.clone()), false).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        w.get("/dashboard").await.0,
        StatusCode::SEE_OTHER,
        "old session ended"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn web_deadline_filters_use_the_deadline_in_force() {
    use diesel::prelude::*;
    use lethe::store::schema::requests::dsl as r;
    let t = TestApp::builder().build();
    let mut w = Web::new(&t).await;
    // Two requests received 60 days ago: both past their GDPR month; one then extended.
    let mk = |base: String, token: String| async move {
        let v: serde_json::Value = client()
            .post(format!("{base}/api/v1/requests"))
            .bearer_auth(token)
            .json(&serde_json::json!({"kind": "access", "regime": "gdpr",
                "identities": {"email": "jane.doe@example.com"},
                "received_at": (chrono::Utc::now() - chrono::Duration::days(60)).format("%Y-%m-%d").to_string()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let late = mk(w.base.clone(), t.officer.clone()).await;
    let extended = mk(w.base.clone(), t.officer.clone()).await;
    let later = chrono::Utc::now().naive_utc() + chrono::Duration::days(3);
    t.app
        .store
        .write(|c| -> Result<usize, lethe::store::StoreError> {
            Ok(diesel::update(r::requests.find(&extended))
                .set(r::extended_due_at.eq(Some(later)))
                .execute(c)?)
        })
        .unwrap();
    w.sign_in(&t.officer).await;
    let (_, html) = w.get("/requests?due=overdue").await;
    assert!(
        html.contains(&late[..13]) && !html.contains(&extended[..13]),
        "{html}"
    );
    let (_, html) = w.get("/requests?due=due_soon").await;
    assert!(html.contains(&late[..13]) && html.contains(&extended[..13]));
    let (_, html) = w.get("/dashboard").await;
    let kpi = |label: &str| {
        let at = html
            .find(&format!("<span class=\"kpi-l\">{label}"))
            .unwrap();
        let n = &html[..at];
        let start = n.rfind("kpi-n\">").unwrap() + "kpi-n\">".len();
        n[start..].trim_end_matches("</span>").to_string()
    };
    assert_eq!(kpi("open requests"), "2");
    assert_eq!(kpi("overdue"), "1");
    assert_eq!(kpi("due within 7 days"), "1");
    // The API's filter agrees.
    let v: serde_json::Value = client()
        .get(format!("{}/api/v1/requests?due=overdue", w.base))
        .bearer_auth(&t.officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![late.as_str()]);
}
