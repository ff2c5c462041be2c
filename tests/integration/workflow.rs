//! The request workflow over HTTP: illegal transitions (409 with the allowed actions),
//! legal holds, deadline extensions, stale plans, denial, due lists, and roles. Every
//! refused action leaves the request and the CRM as they were.

use crate::erasure::dump;
use crate::support::{Crm, TestApp, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn new(t: &TestApp) -> Api {
        Api {
            base: t.serve().await,
            http: client(),
            token: t.officer.clone(),
        }
    }

    async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let s = resp.status();
        let text = resp.text().await.unwrap();
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(reqwest::Method::POST, path, Some(body), &self.token.clone())
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(reqwest::Method::GET, path, None, &self.token.clone())
            .await
    }

    async fn create(&self, kind: &str, email: &str, extra: Value) -> String {
        let mut body = json!({"kind": kind, "regime": "gdpr", "identities": {"email": email}});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        let (s, v) = self.post("/api/v1/requests", body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn step(&self, id: &str, action: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/requests/{id}/{action}"), body)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_over_http_with_plan_review() {
    let t = TestApp::builder().crm(Crm::sqlite(100)).build();
    let api = Api::new(&t).await;
    let id = api
        .create("erasure", "jane.doe@example.com", json!({}))
        .await;
    // Approving or executing without verification: 409 with the allowed actions.
    for action in ["approve", "execute", "plan"] {
        let (s, v) = api.step(&id, action, json!({})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{action}: {v}");
        assert_eq!(v["error"]["code"], "illegal_transition");
        assert!(
            v["error"]["allowed_actions"]
                .as_array()
                .unwrap()
                .contains(&json!("verify")),
            "{v}"
        );
    }
    let (s, _) = api.step(&id, "acknowledge", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    api.step(&id, "verify", json!({"method": "document_check"}))
        .await;
    let (s, v) = api.step(&id, "plan", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "planned");
    let (s, plan) = api.get(&format!("/api/v1/requests/{id}/plan")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(plan["totals"]["delete"], 20);
    assert_eq!(plan["totals"]["anonymize"], 1);
    assert_eq!(plan["totals"]["redact"], 2);
    assert_eq!(plan["totals"]["exempt"], 5);
    let inv = plan["exemptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["table"] == "invoices")
        .unwrap();
    assert_eq!(inv["ground"], "legal_obligation");
    assert!(inv["citation"].as_str().unwrap().contains("17(3)(b)"));
    let contacts = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["table"] == "contacts")
        .unwrap();
    assert!(
        contacts["reason"].as_str().unwrap().contains("invoices"),
        "{contacts}"
    );
    assert!(
        contacts["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["column"] == "email" && c["strategy"] == "constant")
    );
    // The review lists each pinned row with the path that found it.
    let rows = plan["rows"].as_array().unwrap();
    let acts = rows
        .iter()
        .find(|r| r["table"] == "activities" && r["action"] == "delete")
        .unwrap();
    assert!(acts["rows"].as_array().unwrap().iter().any(|r| {
        r["found_via"]
            .as_str()
            .unwrap()
            .contains("parent_type = 'Deal'")
    }));
    // Auditors see the summary but not the rows, and cannot act.
    let (s, p2) = api
        .req(
            reqwest::Method::GET,
            &format!("/api/v1/requests/{id}/plan"),
            None,
            &t.auditor,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(p2.get("rows").is_none());
    for action in ["approve", "execute", "deny", "extend", "plan", "withdraw"] {
        let (s, _) = api
            .req(
                reqwest::Method::POST,
                &format!("/api/v1/requests/{id}/{action}"),
                Some(json!({})),
                &t.auditor,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{action}");
    }
    let (s, v) = api
        .step(&id, "approve", json!({"note": "checked with legal"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api.step(&id, "execute", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "partially_completed");
    let cert = v["certificates"][0]["url"].as_str().unwrap().to_string();
    let (s, c) = api.get(&cert).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["verification"]["valid"], true);
    assert_eq!(c["payload"]["request"]["id"], json!(id));
    // Final: nothing more is allowed.
    let (s, v) = api.step(&id, "cancel", json!({"reason": "oops"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["allowed_actions"], json!([]));
    // Every transition is an event with who and when.
    let (_, r) = api.get(&format!("/api/v1/requests/{id}")).await;
    let actions: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "acknowledge",
            "verify",
            "plan",
            "approve",
            "execute",
            "start_verification",
            "complete_partially"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_keep_rows_and_block_erasing_a_held_person() {
    let t = TestApp::builder().crm(Crm::sqlite(100)).build();
    let api = Api::new(&t).await;
    // A hold on one of Jane's tickets: the erasure keeps it and says why.
    let (s, h) = api.post("/api/v1/holds", json!({"scope": "rows", "table": "tickets", "keys": [[2]], "matter": "Case 17/2026", "reason": "complaint about a lost parcel"})).await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let hold_id = h["id"].as_str().unwrap().to_string();
    assert_eq!(h["ground"], "legal_claims");
    let id = api
        .create("erasure", "jane.doe@example.com", json!({}))
        .await;
    api.step(&id, "verify", json!({"method": "document_check"}))
        .await;
    api.step(&id, "plan", json!({})).await;
    let (_, plan) = api.get(&format!("/api/v1/requests/{id}/plan")).await;
    let held = plan["exemptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["hold_id"] == json!(hold_id))
        .expect("held ticket exempt");
    assert_eq!(held["table"], "tickets");
    assert_eq!(held["rows"], 1);
    assert!(held["citation"].as_str().unwrap().contains("17(3)(e)"));
    api.step(&id, "approve", json!({})).await;
    let (s, v) = api.step(&id, "execute", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "partially_completed");
    let after = dump(&t.crm);
    assert!(
        after["tickets"].contains_key(&lethe::source::Key(vec![lethe::source::Value::Int(2)])),
        "held ticket must stay"
    );
    let (_, c) = api.get(v["certificates"][0]["url"].as_str().unwrap()).await;
    assert!(
        c["payload"]["exemptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["hold_id"] == json!(hold_id))
    );

    // A hold on a person: nothing of theirs can be erased; approving says so, and nothing
    // changes.
    let (s, _) = api.post("/api/v1/holds", json!({"scope": "subject", "identities": {"email": "max@mustermann-it.example"}, "matter": "Audit 2026", "reason": "tax audit", "ground": "legal_obligation"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let before = dump(&t.crm);
    let id = api
        .create("erasure", "MAX@mustermann-it.example", json!({}))
        .await;
    api.step(&id, "verify", json!({"method": "document_check"}))
        .await;
    let (s, v) = api.step(&id, "plan", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api.step(&id, "approve", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "under_legal_hold");
    let (_, r) = api.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(r["state"], "planned");
    assert_eq!(before, dump(&t.crm));
    // The officer denies it instead, with the ground and the remedy notice.
    let (s, v) = api
        .step(
            &id,
            "deny",
            json!({"reason": "legal obligation: tax audit hold"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "notice");
    let (s, v) = api.step(&id, "deny", json!({"reason": "GDPR Art. 17(3)(b): records under a tax-audit hold", "notice": "You may complain to the Berlin supervisory authority or seek a judicial remedy."})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "denied");
    assert!(
        v["events"].as_array().unwrap().last().unwrap()["details"]["remedy_notice"]
            .as_str()
            .unwrap()
            .contains("supervisory")
    );

    // Holds are listed and released with a reason; releasing twice is a conflict.
    let (_, list) = api.get("/api/v1/holds").await;
    assert_eq!(list["holds"].as_array().unwrap().len(), 2);
    let (s, _) = api
        .post(
            &format!("/api/v1/holds/{hold_id}/release"),
            json!({"reason": "case closed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .post(
            &format!("/api/v1/holds/{hold_id}/release"),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, list) = api.get("/api/v1/holds").await;
    assert_eq!(list["holds"].as_array().unwrap().len(), 1);
    // Bad holds.
    for (body, field) in [
        (
            json!({"scope": "table", "table": "nope", "matter": "m", "reason": "r"}),
            "table",
        ),
        (
            json!({"scope": "rows", "table": "tickets", "keys": [[1, 2]], "matter": "m", "reason": "r"}),
            "keys[0]",
        ),
        (
            json!({"scope": "planet", "matter": "m", "reason": "r"}),
            "scope",
        ),
        (
            json!({"scope": "table", "table": "tickets", "matter": " ", "reason": "r"}),
            "matter",
        ),
        (
            json!({"scope": "subject", "identities": {"email": "nope"}, "matter": "m", "reason": "r"}),
            "identities[0].value",
        ),
    ] {
        let (s, v) = api.post("/api/v1/holds", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_plans_are_refused_and_change_nothing() {
    let t = TestApp::builder().crm(Crm::sqlite(100)).build();
    let api = Api::new(&t).await;
    let id = api
        .create("erasure", "jane.doe@example.com", json!({}))
        .await;
    api.step(&id, "verify", json!({"method": "document_check"}))
        .await;
    api.step(&id, "plan", json!({})).await;
    api.step(&id, "approve", json!({})).await;
    // Someone edits one of Jane's tickets after the plan was made.
    let mut conn = t.crm.conn();
    let mut q = conn.sql();
    q.push("UPDATE tickets SET subject = 'changed' WHERE id = 1");
    conn.execute(&q).unwrap();
    let before = dump(&t.crm);
    let (s, v) = api.step(&id, "execute", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "plan_stale");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tickets row 1"),
        "{v}"
    );
    assert_eq!(before, dump(&t.crm));
    let (_, r) = api.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(r["state"], "approved");
    // A new row of the subject also makes the plan stale.
    let mut q = conn.sql();
    q.push("INSERT INTO web_sessions (id, contact_id, visitor_id, ip_address, user_agent, landing_page, started_at) VALUES (777777, 1, 'v', '203.0.113.9', 'ua', '/', '2026-11-01 00:00:00')");
    conn.execute(&q).unwrap();
    api.step(&id, "plan", json!({})).await;
    api.step(&id, "approve", json!({})).await;
    let mut q = conn.sql();
    q.push("INSERT INTO web_sessions (id, contact_id, visitor_id, ip_address, user_agent, landing_page, started_at) VALUES (777778, 1, 'v', '203.0.113.9', 'ua', '/', '2026-11-01 00:00:00')");
    conn.execute(&q).unwrap();
    let (s, v) = api.step(&id, "execute", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("777778"),
        "{v}"
    );
    // Re-planning picks everything up and executes.
    api.step(&id, "plan", json!({})).await;
    api.step(&id, "approve", json!({})).await;
    let (s, v) = api.step(&id, "execute", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "partially_completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_extensions_and_due_lists() {
    let t = TestApp::builder().crm(Crm::sqlite(20)).build();
    let api = Api::new(&t).await;
    // Received 20 days ago under the GDPR: extendable once, by two months.
    let received = (chrono::Utc::now() - chrono::Duration::days(20)).date_naive();
    let id = api
        .create(
            "access",
            "jane.doe@example.com",
            json!({"received_at": received.to_string()}),
        )
        .await;
    let (s, v) = api
        .step(&id, "extend", json!({"reason": "complex request"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "notice");
    let (s, v) = api.step(&id, "extend", json!({"reason": "complex request across 12 systems", "notice": "sent by e-mail on day 20"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let due = lethe::request::deadline::add_months_clamped(received, 1);
    let extended = lethe::request::deadline::add_months_clamped(due, 2);
    assert!(
        v["deadline"]["extended_due_at"]
            .as_str()
            .unwrap()
            .starts_with(&extended.to_string()),
        "{v}"
    );
    assert!(
        v["deadline"]["effective_due_at"]
            .as_str()
            .unwrap()
            .starts_with(&extended.to_string())
    );
    assert_eq!(v["extension"]["notice"], "sent by e-mail on day 20");
    let (s, v) = api
        .step(&id, "extend", json!({"reason": "again", "notice": "n"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "already_extended");

    // Received 40 days ago: the deadline passed; too late to extend; listed as overdue.
    let old = (chrono::Utc::now() - chrono::Duration::days(40)).date_naive();
    let late = api
        .create(
            "access",
            "max@mustermann-it.example",
            json!({"received_at": old.to_string()}),
        )
        .await;
    let (s, v) = api
        .step(&late, "extend", json!({"reason": "r", "notice": "n"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "deadline_passed");
    let (_, v) = api.get(&format!("/api/v1/requests/{late}")).await;
    assert_eq!(v["deadline"]["overdue"], true);
    assert!(v["deadline"]["days_left"].as_i64().unwrap() < 0);
    assert!(v.get("extension").is_none());
    // Due within a week.
    let soon = (chrono::Utc::now() - chrono::Duration::days(26)).date_naive();
    let soon_id = api
        .create(
            "access",
            "jane.doe@otherco.example",
            json!({"received_at": soon.to_string()}),
        )
        .await;
    let (_, due) = api.get("/api/v1/requests/due").await;
    let ids = |k: &str| -> Vec<String> {
        due[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("overdue"), vec![late.clone()]);
    assert_eq!(ids("due_soon"), vec![soon_id]);
    let (_, l) = api.get("/api/v1/requests?due=overdue").await;
    assert_eq!(l["requests"].as_array().unwrap().len(), 1);

    // LGPD has no extension.
    let (s, v) = api
        .post(
            "/api/v1/requests",
            json!({"kind": "access", "regime": "lgpd", "identities": {"email": "a@b.example"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let lgpd = v["id"].as_str().unwrap();
    let (s, v) = api
        .step(lgpd, "extend", json!({"reason": "r", "notice": "n"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "no_extension");
    // Withdrawn by the person: final, with the reason.
    let (s, v) = api
        .step(
            lgpd,
            "withdraw",
            json!({"reason": "the person withdrew by e-mail"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["state"], "withdrawn");
    assert_eq!(v["state_reason"], "the person withdrew by e-mail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_bodies_are_validated() {
    let t = TestApp::builder().crm(Crm::sqlite(20)).build();
    let api = Api::new(&t).await;
    let id = api
        .create("erasure", "jane.doe@example.com", json!({}))
        .await;
    let url = format!("{}/api/v1/requests/{id}/acknowledge", api.base);
    let r = api
        .http
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{\"note\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = api
        .http
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = api.step(&id, "acknowledge", json!({"nonsense": 1})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api.step(&id, "cancel", json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = api.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(v["state"], "received");
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    // Rectification needs changes; other kinds may not carry them.
    let (s, v) = api.post("/api/v1/requests", json!({"kind": "rectification", "regime": "gdpr", "identities": {"email": "a@b.example"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "changes");
    let (s, v) = api.post("/api/v1/requests", json!({"kind": "access", "regime": "gdpr", "identities": {"email": "a@b.example"}, "changes": [{"table": "contacts", "column": "city", "value": "x"}]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = api.post("/api/v1/requests", json!({"kind": "rectification", "regime": "gdpr", "identities": {"email": "a@b.example"}, "changes": [{"table": "contacts", "column": "last_activity_at", "value": [1]}]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "changes[0].value");
}
