//! Security headers on every kind of response the service sends: web pages, API JSON,
//! API and page errors (401, 403, 404, 405, 413, 414, 422), redirects, static assets, the JWKS,
//! exports, `/metrics` and `/health`. Dynamic responses are never cached; each response
//! carries a request id.

use crate::support::{TestApp, client};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Checks the headers every response must have; `cacheable` responses (static assets, the
/// JWKS) may choose their own `Cache-Control`, every other one must say `no-store`.
fn check(what: &str, status: StatusCode, h: &HeaderMap, cacheable: bool) {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what} ({status}): no {name} header in {h:?}"))
            .to_string()
    };
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    let csp = get("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{what}: {csp}"
    );
    assert_eq!(get("cross-origin-opener-policy"), "same-origin", "{what}");
    assert_eq!(get("cross-origin-resource-policy"), "same-origin", "{what}");
    let pp = get("permissions-policy");
    assert!(
        pp.contains("camera=()") && pp.contains("geolocation=()"),
        "{what}: {pp}"
    );
    let cache = get("cache-control");
    if cacheable {
        assert!(cache.starts_with("public"), "{what}: {cache}");
    } else {
        assert_eq!(cache, "no-store", "{what}");
    }
    let id = get("x-request-id");
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{what}: request id {id}"
    );
}

/// One request of the sample and what its answer must be.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<String>,
    status: u16,
    cacheable: bool,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let t = TestApp::builder()
        .configure(|c| c.max_body_bytes = 4096)
        .build();
    let base = t.serve().await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let officer = t.officer.clone();
    let auditor = t.auditor.clone();

    // A completed access request, for its page, export and certificate.
    let created: Value = client()
        .post(format!("{base}/api/v1/requests"))
        .bearer_auth(&officer)
        .json(&json!({"kind": "access", "regime": "gdpr", "identities": {"email": "jane.doe@example.com"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("request id").to_string();
    for (path, body) in [
        ("verify", json!({"method": "email_confirmation"})),
        ("run", json!({})),
    ] {
        let r = client()
            .post(format!("{base}/api/v1/requests/{id}/{path}"))
            .bearer_auth(&officer)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().await.unwrap()
        );
    }
    let view: Value = client()
        .get(format!("{base}/api/v1/requests/{id}"))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cert = view["certificates"][0]["id"]
        .as_str()
        .expect("access certificate")
        .to_string();

    let big = "x".repeat(8192);
    let get = |what, path: &str, token: Option<&str>, status, cacheable| Case {
        what,
        method: Method::GET,
        path: path.to_string(),
        token: token.map(str::to_string),
        body: None,
        status,
        cacheable,
    };
    let send = |what, method, path: &str, token: &str, body: String, status| Case {
        what,
        method,
        path: path.to_string(),
        token: Some(token.to_string()),
        body: Some(body),
        status,
        cacheable: false,
    };
    let o = Some(officer.as_str());
    let a = Some(auditor.as_str());
    let cases = [
        get("health", "/health", None, 200, false),
        get("jwks", "/.well-known/jwks.json", None, 200, true),
        get("css", "/static/app.css", None, 200, true),
        get("js", "/static/app.js", None, 200, true),
        get("sign-in page", "/sign-in", None, 200, false),
        get("page redirect", "/dashboard", None, 303, false),
        get("root redirect", "/", None, 303, false),
        get("api list", "/api/v1/requests", o, 200, false),
        get("api show", &format!("/api/v1/requests/{id}"), a, 200, false),
        get(
            "api certificate",
            &format!("/api/v1/certificates/{cert}"),
            a,
            200,
            false,
        ),
        get(
            "api jws",
            &format!("/api/v1/certificates/{cert}/jws"),
            a,
            200,
            false,
        ),
        get("api 401", "/api/v1/requests", None, 401, false),
        get(
            "api 401 bad token",
            "/api/v1/requests",
            Some("lethe_wrong"),
            401,
            false,
        ),
        send(
            "api 403",
            Method::POST,
            "/api/v1/holds",
            &auditor,
            "{}".into(),
            403,
        ),
        get("api 404", "/api/v1/requests/no-such-request", o, 404, false),
        get("api unknown route", "/api/v1/nothing-here", o, 404, false),
        send(
            "api 405",
            Method::DELETE,
            "/api/v1/requests",
            &officer,
            String::new(),
            405,
        ),
        send(
            "api 422",
            Method::POST,
            "/api/v1/requests",
            &officer,
            r#"{"kind":"nope","regime":"gdpr","identities":{"email":"a@b.example"}}"#.into(),
            422,
        ),
        send(
            "api 413",
            Method::POST,
            "/api/v1/requests",
            &officer,
            format!(
                r#"{{"kind":"access","regime":"gdpr","identities":{{"email":"a@b.example"}},"note":"{big}"}}"#
            ),
            413,
        ),
        get(
            "api 414",
            &format!("/api/v1/requests?q={}", "a".repeat(9000)),
            o,
            414,
            false,
        ),
        get("metrics", "/metrics", a, 200, false),
        get("metrics 401", "/metrics", None, 401, false),
        get("unknown path", "/no/such/page", None, 404, false),
    ];
    for c in cases {
        let mut req = http.request(c.method, format!("{base}{}", c.path));
        if let Some(tok) = &c.token {
            req = req.bearer_auth(tok);
        }
        if let Some(b) = c.body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), c.status, "{}: {}", c.what, c.path);
        check(c.what, resp.status(), resp.headers(), c.cacheable);
    }

    // The export: answered directly or through a download link (a redirect to
    // `/exports/{token}`); both the answer and the download carry the headers.
    let resp = http
        .get(format!("{base}/api/v1/requests/{id}/export"))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(status.is_success() || status.is_redirection(), "{status}");
    check("api export", status, resp.headers(), false);
    if let Some(link) = resp.headers().get("location").and_then(|l| l.to_str().ok()) {
        assert!(link.starts_with("/exports/"), "{link}");
        let download = http.get(format!("{base}{link}")).send().await.unwrap();
        assert_eq!(download.status(), StatusCode::OK);
        check(
            "export download",
            download.status(),
            download.headers(),
            false,
        );
        let gone = http
            .get(format!("{base}/exports/no-such-download-token-0123456789"))
            .send()
            .await
            .unwrap();
        assert!(gone.status().is_client_error());
        check("unknown download", gone.status(), gone.headers(), false);
    }

    // An HTML 404 and the pages of a signed-in officer (session cookie), its CSV export
    // download and a certificate page.
    let resp = http
        .get(format!("{base}/no/such/page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    check("html 404", resp.status(), resp.headers(), false);
    let mut w = crate::web::Web::new(&t).await;
    w.sign_in(&officer).await;
    let cookie = w.cookie.clone().expect("session cookie");
    for path in [
        "/dashboard".to_string(),
        format!("/requests/{id}"),
        format!("/requests/{id}/export?format=csv"),
        format!("/certificates/{cert}"),
        "/requests/no-such-request".to_string(),
    ] {
        let resp = http
            .get(format!("{}{path}", w.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(
            status.is_success() || status.is_redirection() || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        check(&path, status, resp.headers(), false);
    }
    // A form post without its CSRF token: 403 page.
    let resp = http
        .post(format!("{}/holds", w.base))
        .header("cookie", &cookie)
        .form(&[("scope", "table"), ("table", "invoices")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    check("csrf 403", resp.status(), resp.headers(), false);
}
