//! The HTTP API against the real router on 127.0.0.1: the access flow end to end, auth,
//! and bad input (each a JSON 4xx naming what is wrong, with nothing half-written).

use crate::support::{Crm, TestApp, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn new(t: &TestApp) -> Api {
        Api {
            base: t.serve().await,
            http: client(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }
}

fn count_requests(t: &TestApp) -> i64 {
    t.app
        .store
        .read(lethe::store::requests::count)
        .expect("count")
}

async fn create_jane(api: &Api, token: &str, kind: &str) -> String {
    let (s, v) = api
        .post("/api/v1/requests", token, json!({"kind": kind, "regime": "gdpr", "identities": {"email": " Jane.Doe@Example.com "}, "channel": "email"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_request_end_to_end() {
    let t = TestApp::builder().crm(Crm::sqlite(300)).build();
    let api = Api::new(&t).await;
    let (s, h) = api.call(reqwest::Method::GET, "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["status"], "ok");

    let id = create_jane(&api, &t.officer, "access").await;
    let (s, v) = api.get(&format!("/api/v1/requests/{id}"), &t.officer).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["state"], "received");
    assert_eq!(v["identities"][0]["value"], "jane.doe@example.com");
    // GDPR: one month from receipt.
    let received = chrono::DateTime::parse_from_rfc3339(v["received_at"].as_str().unwrap())
        .unwrap()
        .date_naive();
    let due = lethe::request::deadline::add_months_clamped(received, 1);
    assert!(
        v["deadline"]["due_at"]
            .as_str()
            .unwrap()
            .starts_with(&due.to_string()),
        "{v}"
    );

    let (s, v) = api
        .post(
            &format!("/api/v1/requests/{id}/verify"),
            &t.officer,
            json!({"method": "email_confirmation", "note": "replied from the address on file"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "verified");

    let (s, v) = api
        .post(&format!("/api/v1/requests/{id}/run"), &t.officer, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "completed");
    assert_eq!(v["export"]["records"], 26);
    let actions: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "verify", "run", "complete"]);

    let (s, x) = api
        .get(&format!("/api/v1/requests/{id}/export"), &t.officer)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(x["format"], "lethe.access-export/1");
    assert_eq!(x["summary"]["tables"], 12);
    assert_eq!(x["summary"]["records"], 26);
    assert_eq!(x["summary"]["mentions"], 2);
    // Art. 15(1): purposes, categories, recipients, retention, source; the rights notice.
    let contacts = x["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "contacts")
        .expect("contacts");
    assert_eq!(
        contacts["records"][0]["data"]["contact"]["email"],
        "jane.doe@example.com"
    );
    assert_eq!(
        contacts["records"][0]["data"]["identity"]["last_name"],
        "Doe"
    );
    assert!(
        contacts["purposes"][0]["legal_basis"]
            .as_str()
            .unwrap()
            .contains("Art. 6(1)(b)")
    );
    assert!(
        contacts["retention"]
            .as_str()
            .unwrap()
            .contains("24 months")
    );
    assert!(
        contacts["categories"]["contact"]["columns"]
            .as_array()
            .unwrap()
            .contains(&json!("email"))
    );
    let tickets = x["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "tickets")
        .expect("tickets");
    assert_eq!(
        tickets["recipients"][0]["safeguards"],
        "EU Standard Contractual Clauses (2021/914)"
    );
    let leads = x["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "leads")
        .expect("leads");
    assert!(leads["origin"].as_str().unwrap().contains("Web forms"));
    assert!(
        x["rights"]
            .as_str()
            .unwrap()
            .contains("supervisory authority")
    );
    assert_eq!(x["controller"]["name"], "Northwind Demo GmbH");
    // Unmapped columns never leave the CRM (owner_id is ignored by the map).
    assert!(!x.to_string().contains("owner_id"));
    let found_via = contacts["records"][0]["found_via"].as_str().unwrap();
    assert!(
        found_via.contains("email matches contacts.email"),
        "{found_via}"
    );

    // CSV: a zip with one CSV per table.
    let resp = api
        .http
        .get(format!(
            "{}/api/v1/requests/{id}/export?format=csv",
            api.base
        ))
        .bearer_auth(&t.officer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let bytes = resp.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("zip");
    let names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_string())
        .collect();
    for f in [
        "contacts.csv",
        "tickets.csv",
        "invoice_lines.csv",
        "mentions.csv",
        "information.json",
        "README.txt",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} missing from {names:?}");
    }
    let mut contacts_csv = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("contacts.csv").unwrap(), &mut contacts_csv)
        .unwrap();
    assert!(
        contacts_csv
            .lines()
            .next()
            .unwrap()
            .contains("contact.email")
    );
    assert!(contacts_csv.contains("jane.doe@example.com"));

    // The list shows it; filters work.
    let (s, l) = api
        .get("/api/v1/requests?state=completed&kind=access", &t.auditor)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["requests"].as_array().unwrap().len(), 1);
    // Auditors read, but see identities masked and no actions.
    let (s, v) = api.get(&format!("/api/v1/requests/{id}"), &t.auditor).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["identities"][0].get("value").is_none());
    assert_eq!(v["identities"][0]["masked"], "j***@example.com");
    assert_eq!(v["allowed_actions"], json!([]));
    // Auditors cannot fetch the export (it is the person's data).
    let (s, _) = api
        .get(&format!("/api/v1/requests/{id}/export"), &t.auditor)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portability_exports_only_provided_data() {
    let t = TestApp::builder().crm(Crm::sqlite(100)).build();
    let api = Api::new(&t).await;
    let id = create_jane(&api, &t.officer, "portability").await;
    api.post(
        &format!("/api/v1/requests/{id}/verify"),
        &t.officer,
        json!({"method": "account_login"}),
    )
    .await;
    let (s, v) = api
        .post(&format!("/api/v1/requests/{id}/run"), &t.officer, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, x) = api
        .get(&format!("/api/v1/requests/{id}/export"), &t.officer)
        .await;
    assert_eq!(x["format"], "lethe.portability-export/1");
    let data = x["data"].as_object().unwrap();
    assert_eq!(data["contacts"][0]["email"], "jane.doe@example.com");
    // Provided columns only: no record-keeping columns, no tables without provided data.
    assert!(data["contacts"][0].get("created_at").is_none());
    assert!(data["contacts"][0].get("do_not_sell").is_none());
    assert!(
        !data.contains_key("web_sessions")
            && !data.contains_key("invoices")
            && !data.contains_key("deals")
    );
    assert!(data.contains_key("tickets") && data.contains_key("newsletter_subscriptions"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_roles() {
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    let api = Api::new(&t).await;
    let body = json!({"kind": "access", "regime": "gdpr", "identities": {"email": "a@b.example"}});
    let (s, v) = api
        .call(reqwest::Method::GET, "/api/v1/requests", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    let (s, _) = api.get("/api/v1/requests", "lethe_wrong").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let resp = api
        .http
        .get(format!("{}/api/v1/requests", api.base))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    let (s, v) = api.post("/api/v1/requests", &t.auditor, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only")
    );
    let (s, _) = api.post("/api/v1/requests", &t.admin, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    // A revoked token stops working at once.
    let (row, token) = t
        .app
        .store
        .write(|c| lethe::store::tokens::create(c, lethe::request::Role::Officer, "tmp", None))
        .unwrap();
    assert_eq!(api.get("/api/v1/requests", &token).await.0, StatusCode::OK);
    t.app
        .store
        .write(|c| lethe::store::tokens::revoke(c, &row.id))
        .unwrap();
    assert_eq!(
        api.get("/api/v1/requests", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    // An expired one too.
    let past = lethe::store::now() - chrono::Duration::hours(1);
    let (_, token) = t
        .app
        .store
        .write(|c| {
            lethe::store::tokens::create(c, lethe::request::Role::Officer, "old", Some(past))
        })
        .unwrap();
    assert_eq!(
        api.get("/api/v1/requests", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Health and unknown paths need no token; unknown paths are JSON 404s.
    let (s, v) = api.call(reqwest::Method::GET, "/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_4xx_and_writes_nothing() {
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    let api = Api::new(&t).await;
    let tok = t.officer.clone();
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"kind": "acces", "regime": "gdpr", "identities": {"email": "a@b.example"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "kind",
        ),
        (
            json!({"kind": "access", "regime": "eu", "identities": {"email": "a@b.example"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "regime",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "identities": {"email": "not-an-email"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "identities[0].value",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "identities": {"phone": "12ab"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "identities[0].value",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "identities": {"shoe_size": "44"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "identities[0].kind",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "identities": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "identities",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "identities": {"email": "a@b.example"}, "received_at": "2999-01-01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "received_at",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "identities": {"email": "a@b.example"}, "received_at": "yesterday"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "received_at",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "identities": {"email": "a@b.example"}, "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            json!({"kind": "access", "regime": "gdpr"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            json!({"kind": "rectification", "regime": "gdpr", "identities": {"email": "a@b.example"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "changes",
        ),
    ];
    for (body, status, field) in cases {
        let (s, v) = api.post("/api/v1/requests", &tok, body.clone()).await;
        assert_eq!(s, status, "{body} -> {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        if !field.is_empty() {
            assert_eq!(v["error"]["field"], field, "{body} -> {v}");
        }
        // The raw value never comes back in an error.
        assert!(
            !v.to_string().contains("not-an-email") && !v.to_string().contains("12ab"),
            "{v}"
        );
    }
    // Malformed JSON, wrong content type, oversized body.
    let url = format!("{}/api/v1/requests", api.base);
    let r = api
        .http
        .post(&url)
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = api
        .http
        .post(&url)
        .bearer_auth(&tok)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"kind": "access", "regime": "gdpr", "identities": {"email": "a@b.example"}, "note": "x".repeat(200_000)});
    let r = api
        .http
        .post(&url)
        .bearer_auth(&tok)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "body_too_large");
    assert_eq!(
        count_requests(&t),
        0,
        "no bad request may leave a row behind"
    );
    let audit = t.app.store.read(|c| lethe::audit::recent(c, 10)).unwrap();
    assert!(audit.iter().all(|a| a.action == "key.added"), "{audit:?}");

    // Unknown ids, illegal transitions, bad parameters.
    let (s, v) = api
        .get(
            "/api/v1/requests/0190d8a0-0000-7000-8000-000000000000",
            &tok,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"]["message"].as_str().unwrap().contains("0190d8a0"));
    let (s, _) = api
        .post(
            "/api/v1/requests/nope/verify",
            &tok,
            json!({"method": "document_check"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let id = create_jane(&api, &tok, "access").await;
    let (s, v) = api
        .post(&format!("/api/v1/requests/{id}/run"), &tok, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "illegal_transition");
    assert!(
        v["error"]["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("verify"))
    );
    let (s, v) = api
        .get(&format!("/api/v1/requests/{id}/export"), &tok)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = api
        .post(
            &format!("/api/v1/requests/{id}/verify"),
            &tok,
            json!({"method": "vibes"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "method");
    let (s, v) = api
        .post(
            &format!("/api/v1/requests/{id}/verify"),
            &tok,
            json!({"method": "other"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "note");
    let (s, _) = api.get("/api/v1/requests?limit=0", &tok).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api.get("/api/v1/requests?state=sleeping", &tok).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api
        .get(&format!("/api/v1/requests/{id}/export?format=pdf"), &tok)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // The request is untouched by the failed actions.
    let (_, v) = api.get(&format!("/api/v1/requests/{id}"), &tok).await;
    assert_eq!(v["state"], "received");
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_subject_gets_an_empty_export() {
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    let api = Api::new(&t).await;
    let (s, v) = api
        .post("/api/v1/requests", &t.officer, json!({"kind": "access", "regime": "ccpa", "identities": [{"kind": "email", "value": "nobody@nowhere.example"}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(
        v["deadline"]["acknowledge_by"].is_string(),
        "CCPA has an acknowledgement deadline"
    );
    let id = v["id"].as_str().unwrap().to_string();
    api.post(
        &format!("/api/v1/requests/{id}/verify"),
        &t.officer,
        json!({"method": "email_confirmation"}),
    )
    .await;
    let (s, v) = api
        .post(&format!("/api/v1/requests/{id}/run"), &t.officer, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, x) = api
        .get(&format!("/api/v1/requests/{id}/export"), &t.officer)
        .await;
    assert_eq!(x["summary"]["records"], 0);
    assert_eq!(x["records"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_flow_postgres() {
    let crm_db = crate::require_pg!();
    let store_db = crate::require_pg!();
    let t = TestApp::builder()
        .crm(Crm::postgres(crm_db, 200))
        .store_on_postgres(store_db)
        .build();
    let api = Api::new(&t).await;
    let id = create_jane(&api, &t.officer, "access").await;
    api.post(
        &format!("/api/v1/requests/{id}/verify"),
        &t.officer,
        json!({"method": "document_check"}),
    )
    .await;
    let (s, v) = api
        .post(&format!("/api/v1/requests/{id}/run"), &t.officer, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, x) = api
        .get(&format!("/api/v1/requests/{id}/export"), &t.officer)
        .await;
    assert_eq!(x["summary"]["records"], 26);
    assert_eq!(x["summary"]["mentions"], 2);
    // PostgreSQL types arrive as JSON numbers/strings like on SQLite.
    let invoices = x["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "invoices")
        .unwrap();
    assert!(
        invoices["records"][0]["data"]["financial"]["issued_on"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
    let report = t.app.store.read(lethe::audit::verify).unwrap();
    assert!(report.is_valid(), "{report:?}");
    let actions: Vec<String> = t
        .app
        .store
        .read(|c| lethe::audit::recent(c, 100))
        .unwrap()
        .into_iter()
        .rev()
        .map(|r| r.action)
        .collect();
    assert_eq!(
        actions,
        [
            "key.added",
            "request.created",
            "request.verify",
            "request.run",
            "certificate.issued",
            "request.complete",
            // The export was fetched through a download link (GET .../export made one).
            "export.link_created",
            "export.downloaded"
        ]
    );
}
