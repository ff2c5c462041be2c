//! Retention on real SQLite, PostgreSQL and (with the `mysql` feature) MariaDB: the cutoff
//! boundary, holds, cascades, exact changes (full dumps), idempotent re-runs, resumption
//! after SIGKILL between batches, certificates, bad rules, and two schedulers sharing one
//! PostgreSQL store.

use crate::erasure::{Dump, dump};
use crate::support::{Crm, PgDb, TestApp, client, repo};
use lethe::app::Actor;
use lethe::hold::{HoldScope, NewHold};
use lethe::policy::ExemptionGround;
use lethe::retention::run::{RunRequest, RunStatus, run};
use lethe::source::{Key, Value};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const RULES: &str = r#"
[settings]
batch_size = 7
batch_target = "off"

[[rules]]
name = "sessions"
table = "web_sessions"
anchor = "started_at"
window = "30 days"
action = "delete"
basis = "test: 30 days"

[[rules]]
name = "contacts"
table = "contacts"
anchor = "last_activity_at"
window = "24 months"
action = "anonymize"
basis = "test: 24 months"

[[rules]]
name = "tickets"
table = "tickets"
anchor = "created_at"
window = "36 months"
conditions = [{ column = "status", op = "=", value = "closed" }]
action = "delete"
cascade = ["ticket_messages"]
basis = "test: 36 months"

[[rules]]
name = "invoices"
table = "invoices"
anchor = "issued_on"
years_after_year_end = 10
action = "delete"
cascade = ["invoice_lines"]
basis = "test: HGB 257"
"#;

fn dt(s: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn req(rule: &str, at: &str) -> RunRequest {
    RunRequest {
        rule: rule.into(),
        at: Some(dt(at)),
        dry_run: false,
        batch_size: None,
        budget: None,
        trigger: "cli".into(),
        not_before: None,
    }
}

fn exec(sql: &str, t: &TestApp) {
    let mut c = t.crm.conn();
    let mut q = c.sql();
    q.push(sql);
    c.execute(&q).unwrap();
}

fn k(i: i64) -> Key {
    Key(vec![Value::Int(i)])
}

/// Rows of `table` whose anchor is before the cutoff, by the demo data's values.
pub(crate) fn due_ids(
    before: &Dump,
    table: &str,
    anchor: &str,
    cutoff: &str,
    extra: impl Fn(&std::collections::BTreeMap<String, Value>) -> bool,
) -> BTreeSet<Key> {
    before[table]
        .iter()
        .filter(|(_, row)| row[anchor].as_text().is_some_and(|a| a < cutoff) && extra(row))
        .map(|(k, _)| k.clone())
        .collect()
}

fn check_retention(t: &TestApp) {
    // Boundary rows: a session exactly at the cutoff, one second before, one second after.
    let at = "2026-11-01 02:00:00";
    let cutoff = "2026-10-02 02:00:00";
    exec(
        "INSERT INTO web_sessions (id, contact_id, visitor_id, ip_address, user_agent, landing_page, started_at) VALUES (900001, NULL, 'b', '203.0.113.1', 'ua', '/', '2026-10-02 02:00:00'), (900002, NULL, 'b', '203.0.113.1', 'ua', '/', '2026-10-02 01:59:59'), (900003, NULL, 'b', '203.0.113.1', 'ua', '/', '2026-10-02 02:00:01')",
        t,
    );
    // A held session (row hold) and a held contact (person hold).
    let actor = Actor::cli();
    let before = dump(&t.crm);
    let due_sessions = due_ids(&before, "web_sessions", "started_at", cutoff, |_| true);
    let held_session = due_sessions
        .iter()
        .find(|k| **k != self::k(900002))
        .unwrap()
        .clone();
    lethe::hold::create(
        &t.app,
        &actor,
        NewHold {
            scope: HoldScope::Rows {
                table: "web_sessions".into(),
                keys: vec![held_session.0.clone()],
            },
            matter: "M-1".into(),
            reason: "dispute".into(),
            ground: ExemptionGround::LegalClaims,
            expires_at: None,
        },
    )
    .unwrap();
    let contacts_due = due_ids(
        &before,
        "contacts",
        "last_activity_at",
        "2024-11-01 02:00:00",
        |_| true,
    );
    let held_contact = contacts_due.iter().next().unwrap().clone();
    let held_email = before["contacts"][&held_contact]["email"]
        .as_text()
        .unwrap()
        .to_string();
    lethe::hold::create(
        &t.app,
        &actor,
        NewHold {
            scope: HoldScope::Subject(vec![("email".into(), held_email)]),
            matter: "M-2".into(),
            reason: "litigation".into(),
            ground: ExemptionGround::LegalClaims,
            expires_at: None,
        },
    )
    .unwrap();

    // Dry run first: counts, nothing changed.
    let mut dry = req("sessions", at);
    dry.dry_run = true;
    let o = run(&t.app, &dry, &mut |_| {}).unwrap();
    assert_eq!(o.status, RunStatus::DryRun);
    assert_eq!(o.deleted as usize, due_sessions.len() - 1);
    assert_eq!(o.held, 1);
    assert_eq!(before, dump(&t.crm));

    // Sessions: exactly the rows before the cutoff, except the held one.
    let mut progress = 0;
    let o = run(&t.app, &req("sessions", at), &mut |_| progress += 1).unwrap();
    assert_eq!(o.status, RunStatus::Completed);
    assert!(progress >= 2, "several batches of 7");
    assert_eq!(o.deleted as usize, due_sessions.len() - 1);
    assert_eq!(o.held, 1);
    let after = dump(&t.crm);
    assert!(
        due_sessions.contains(&k(900002))
            && !due_sessions.contains(&k(900001))
            && !due_sessions.contains(&k(900003))
    );
    for (key, row) in &before["web_sessions"] {
        let gone = !after["web_sessions"].contains_key(key);
        assert_eq!(
            gone,
            due_sessions.contains(key) && *key != held_session,
            "session {key} at {:?}",
            row["started_at"]
        );
    }
    // Every other table is byte-identical.
    for (table, rows) in &before {
        if table != "web_sessions" {
            assert_eq!(rows, &after[table], "{table} changed");
        }
    }

    // Contacts: anonymized (strategy columns only), the held person kept.
    let o = run(&t.app, &req("contacts", at), &mut |_| {}).unwrap();
    assert_eq!(o.status, RunStatus::Completed);
    assert_eq!(o.anonymized as usize, contacts_due.len() - 1);
    assert_eq!(o.held, 1);
    let after2 = dump(&t.crm);
    let strategy_cols: BTreeSet<&str> = [
        "customer_no",
        "first_name",
        "last_name",
        "email",
        "phone",
        "birth_date",
        "street",
        "postcode",
        "created_at",
        "last_activity_at",
    ]
    .into();
    for (key, row) in &after["contacts"] {
        let new = &after2["contacts"][key];
        if contacts_due.contains(key) && *key != held_contact {
            assert_eq!(new["email"], Value::Text("[erased]".into()));
            assert!(new["customer_no"].as_text().unwrap().starts_with("hmac:"));
            for (c, v) in row {
                if !strategy_cols.contains(c.as_str()) {
                    assert_eq!(
                        &new[c], v,
                        "contact {key}: unmapped or kept column {c} changed"
                    );
                }
            }
        } else {
            assert_eq!(row, new, "contact {key} must be untouched");
        }
    }
    for (table, rows) in &after {
        if table != "contacts" {
            assert_eq!(rows, &after2[table], "{table} changed");
        }
    }
    // A second run finds nothing left to do.
    let o = run(&t.app, &req("contacts", at), &mut |_| {}).unwrap();
    assert_eq!((o.anonymized, o.held), (0, 1));
    assert_eq!(after2, dump(&t.crm));

    // Tickets with their messages (cascade, children first).
    let o = run(&t.app, &req("tickets", at), &mut |_| {}).unwrap();
    assert_eq!(o.status, RunStatus::Completed);
    let after3 = dump(&t.crm);
    let due_tickets = due_ids(
        &after2,
        "tickets",
        "created_at",
        "2023-11-01 02:00:00",
        |r| r["status"] == Value::Text("closed".into()),
    );
    assert_eq!(o.per_table["tickets"].deleted as usize, due_tickets.len());
    let msgs: BTreeSet<Key> = after2["ticket_messages"]
        .iter()
        .filter(|(_, r)| due_tickets.contains(&Key(vec![r["ticket_id"].clone()])))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(o.per_table["ticket_messages"].deleted as usize, msgs.len());
    assert!(
        msgs.iter()
            .all(|m| !after3["ticket_messages"].contains_key(m))
    );

    // Statutory rule across the year boundary: an invoice from 2016-12-31 is due on
    // 2027-01-01, not on 2026-12-31 (leap years change nothing).
    exec(
        "INSERT INTO invoices (id, invoice_no, contact_id, company_id, customer_no, billing_name, billing_email, billing_street, billing_city, billing_postcode, issued_on, total, currency) VALUES (800001, 'T-1', NULL, NULL, 'X', 'X', NULL, NULL, NULL, NULL, '2016-12-31', 1, 'EUR'), (800002, 'T-2', NULL, NULL, 'X', 'X', NULL, NULL, NULL, NULL, '2016-02-29', 1, 'EUR')",
        t,
    );
    exec(
        "INSERT INTO invoice_lines (id, invoice_id, description, quantity, unit_price, amount) VALUES (800001, 800001, 'x', 1, 1, 1)",
        t,
    );
    let o = run(&t.app, &req("invoices", "2026-12-31 23:59:59"), &mut |_| {}).unwrap();
    let left = dump(&t.crm);
    assert!(
        left["invoices"].contains_key(&k(800001)) && left["invoices"].contains_key(&k(800002)),
        "{o:?}"
    );
    let o = run(&t.app, &req("invoices", "2027-01-01 00:00:00"), &mut |_| {}).unwrap();
    let left = dump(&t.crm);
    assert!(
        !left["invoices"].contains_key(&k(800001)) && !left["invoices"].contains_key(&k(800002)),
        "{o:?}"
    );
    assert!(
        !left["invoice_lines"].contains_key(&k(800001)),
        "the line goes with its invoice"
    );
    // Jane's 2016-12-30 invoice too.
    assert!(!left["invoices"].contains_key(&k(2)));

    // Every run has a certificate that verifies; the audit chain holds.
    let runs = t
        .app
        .store
        .read(|c| lethe::store::retention::runs(c, None, 100))
        .unwrap();
    assert!(runs.len() >= 6);
    let jwks = t.app.store.read(lethe::cert::keys::jwks).unwrap();
    for r in &runs {
        let cert = t
            .app
            .store
            .read(|c| lethe::cert::issue::get(c, r.certificate_id.as_deref().unwrap()))
            .unwrap();
        let v = lethe::cert::jws::verify(&cert.jws, &jwks).unwrap();
        assert_eq!(v.payload["kind"], "retention");
        assert_eq!(v.payload["run"]["id"], Json::String(r.id.clone()));
        assert_eq!(v.payload["totals"]["deleted"], r.rows_deleted);
    }
    assert!(t.app.store.read(lethe::audit::verify).unwrap().is_valid());
}

#[test]
fn retention_exact_and_held_sqlite() {
    check_retention(
        &TestApp::builder()
            .crm(Crm::sqlite(300))
            .retention(RULES)
            .build(),
    );
}

#[test]
fn retention_exact_and_held_postgres() {
    let crm = crate::require_pg!();
    let store = crate::require_pg!();
    check_retention(
        &TestApp::builder()
            .crm(Crm::postgres(crm, 300))
            .store_on_postgres(store)
            .retention(RULES)
            .build(),
    );
}

/// The CRM on MariaDB (the engine store stays on SQLite: MySQL is a source backend only).
#[cfg(feature = "mysql")]
#[test]
fn retention_exact_and_held_mariadb() {
    let crm = crate::require_mysql!();
    check_retention(
        &TestApp::builder()
            .crm(Crm::mariadb(crm, 300))
            .retention(RULES)
            .build(),
    );
}

#[test]
fn bad_rules_are_rejected_with_file_and_line() {
    let base = std::fs::read_to_string(repo().join("policies/datamap.toml")).unwrap();
    let load = |rules: &str| -> Vec<lethe::policy::Diagnostic> {
        match lethe::policy::load_texts(&[
            ("policies/datamap.toml".into(), base.clone()),
            ("policies/retention.toml".into(), rules.into()),
        ]) {
            Ok(p) => panic!("expected errors, got {} rules", p.retention.rules.len()),
            Err(e) => e.0.into_iter().filter(|d| d.is_error()).collect(),
        }
    };
    let rule = |body: &str| {
        format!(
            "[[rules]]\nname = \"r\"\ntable = \"contacts\"\naction = \"delete\"\nbasis = \"b\"\n{body}\n"
        )
    };
    for (body, key, line) in [
        (
            "anchor = \"last_touch\"\nwindow = \"1 year\"",
            "rules[0].anchor",
            6,
        ),
        (
            "anchor = \"last_activity_at\"\nwindow = \"a while\"",
            "rules[0].window",
            7,
        ),
        (
            "anchor = \"last_activity_at\"\nwindow = \"1 year\"\nconditions = [{ column = \"owner_id\", op = \"=\", value = 3 }]",
            "rules[0].conditions[0].column",
            8,
        ),
        ("anchor = \"last_activity_at\"", "rules[0].window", 1),
        (
            "anchor = \"last_activity_at\"\nwindow = \"1 year\"\ncascade = [\"employees\"]",
            "rules[0].cascade",
            8,
        ),
        (
            "anchor = \"last_activity_at\"\nwindow = \"1 year\"\nschedule = \"every night\"",
            "rules[0].schedule",
            8,
        ),
    ] {
        let d = load(&rule(body));
        let hit = d
            .iter()
            .find(|x| x.key == key)
            .unwrap_or_else(|| panic!("{key} not in {d:?}"));
        assert_eq!(&*hit.at.file, "policies/retention.toml");
        assert_eq!(hit.at.line, line, "{key}: {hit}");
    }
    let d = load(
        "[[rules]]\nname = \"r\"\ntable = \"contacts\"\nanchor = \"email\"\nwindow = \"1 year\"\nactoin = \"delete\"\n",
    );
    assert!(d[0].message.contains("actoin"), "{d:?}");
    assert_eq!(d[0].at.line, 6);

    // An anchor that is not a date: the lint against the live schema rejects it.
    let p = lethe::policy::load_texts(&[
        ("policies/datamap.toml".into(), base.clone()),
        (
            "policies/retention.toml".into(),
            rule("anchor = \"email\"\nwindow = \"1 year\""),
        ),
    ])
    .unwrap();
    let crm = Crm::sqlite(10);
    let mut conn = crm.conn();
    let cat = lethe::source::Catalog::load(&mut conn).unwrap();
    let cats = std::collections::BTreeMap::from([("crm".to_string(), Ok(&cat))]);
    let d = lethe::retention::rules::lint(&p.retention, &p.datamap, &cats);
    let e = d.iter().find(|x| x.is_error()).expect("anchor error");
    assert!(e.message.contains("not a date or timestamp"), "{e}");
    assert_eq!(e.at.line, 1);
    // Two rules acting differently on one table are reported.
    let p = lethe::policy::load_texts(&[
        ("policies/datamap.toml".into(), base),
        (
            "policies/retention.toml".into(),
            format!(
                "{}{}",
                rule("anchor = \"last_activity_at\"\nwindow = \"1 year\""),
                rule("anchor = \"created_at\"\nwindow = \"2 years\"")
                    .replace("name = \"r\"", "name = \"r2\"")
                    .replace("delete", "anonymize")
            ),
        ),
    ])
    .unwrap();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.message.contains("conflicts with rule r")),
        "{:?}",
        p.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_over_http() {
    let t = TestApp::builder()
        .crm(Crm::sqlite(200))
        .retention(RULES)
        .build();
    let base = t.serve().await;
    let http = client();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let tok = t.auditor.clone();
        let http = http.clone();
        async move { http.get(url).bearer_auth(tok).send().await.unwrap() }
    };
    let plan: Json = get("/api/v1/retention/plan?at=2026-11-01")
        .await
        .json()
        .await
        .unwrap();
    let sessions = plan["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "sessions")
        .unwrap();
    assert!(sessions["due_now"].as_i64().unwrap() > 0);
    assert!(
        sessions["forecast"]["next_90_days"].as_i64().unwrap()
            >= sessions["forecast"]["next_7_days"].as_i64().unwrap()
    );
    assert_eq!(get("/api/v1/retention/plan?at=someday").await.status(), 422);
    let rules: Json = get("/api/v1/retention/rules").await.json().await.unwrap();
    assert_eq!(rules["rules"].as_array().unwrap().len(), 4);
    // Auditors cannot start runs; officers can.
    let r = http
        .post(format!("{base}/api/v1/retention/runs"))
        .bearer_auth(&t.auditor)
        .json(&serde_json::json!({"rule": "sessions"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(format!("{base}/api/v1/retention/runs"))
        .bearer_auth(&t.officer)
        .json(&serde_json::json!({"rule": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = http
        .post(format!("{base}/api/v1/retention/runs"))
        .bearer_auth(&t.officer)
        .json(&serde_json::json!({"rule": "sessions", "dry_run": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dry: Json = r.json().await.unwrap();
    assert_eq!(dry["status"], "dry_run");
    let r = http
        .post(format!("{base}/api/v1/retention/runs"))
        .bearer_auth(&t.officer)
        .json(&serde_json::json!({"rule": "sessions"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs: Json = get("/api/v1/retention/runs?rule=sessions")
            .await
            .json()
            .await
            .unwrap();
        if let Some(run) = runs["runs"].as_array().unwrap().first()
            && run["status"] == "completed"
        {
            assert!(run["deleted"].as_i64().unwrap() > 0);
            let one: Json = get(&format!(
                "/api/v1/retention/runs/{}",
                run["id"].as_str().unwrap()
            ))
            .await
            .json()
            .await
            .unwrap();
            assert_eq!(one["certificate"]["id"], run["certificate"]["id"]);
            break;
        }
        assert!(Instant::now() < deadline, "the run did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get("/api/v1/retention/runs/run-nope").await.status(), 404);
}

/// A `lethe` process for the multi-process tests.
fn lethe_cmd(
    dir: &std::path::Path,
    policies: &std::path::Path,
    crm: &Crm,
    store: &str,
    key: &str,
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
    c.current_dir(dir)
        .env("LETHE_LOG", "warn")
        .env("LETHE_DATA_DIR", dir)
        .env("LETHE_POLICY_DIR", policies)
        .env("LETHE_SOURCE_CRM_URL", crm.url_string())
        .env("LETHE_STORE_URL", store)
        .env("LETHE_MASTER_KEY", key)
        .env_remove("LETHE_FAULTS");
    c
}

fn policy_dir(rules: &str) -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::copy(
        repo().join("policies/datamap.toml"),
        dir.join("datamap.toml"),
    )
    .unwrap();
    std::fs::write(dir.join("retention.toml"), rules).unwrap();
    dir
}

#[test]
fn sigkill_between_batches_then_resume_counts_exactly() {
    let crm = Crm::sqlite(600);
    let dir = tempfile::tempdir().unwrap();
    let pol = policy_dir(RULES);
    let store = format!("sqlite://{}", dir.path().join("store.sqlite3").display());
    let key = lethe::crypto::MasterKey::generate().to_base64();
    let cmd = |args: &[&str]| {
        let mut c = lethe_cmd(dir.path(), &pol, &crm, &store, &key);
        c.args(args);
        c
    };
    assert!(cmd(&["migrate"]).status().unwrap().success());
    let before = dump(&crm);
    let expected: BTreeSet<Key> = due_ids(
        &before,
        "web_sessions",
        "started_at",
        "2026-10-02 02:00:00",
        |_| true,
    );
    assert!(expected.len() > 30);
    // Kill after the 2nd batch commits in the CRM, before the store records it.
    let mut child = cmd(&[
        "retention",
        "run",
        "--rule",
        "sessions",
        "--at",
        "2026-11-01T02:00:00Z",
        "--batch-size",
        "10",
    ])
    .env("LETHE_FAULTS", "retention.after_batch_commit=sleep:60000")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(lines.any(|l| {
        l.unwrap()
            .contains("fault point retention.after_batch_commit reached")
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    let mid = dump(&crm);
    let gone_mid = before["web_sessions"].len() - mid["web_sessions"].len();
    assert_eq!(gone_mid, 10, "the first batch committed before the kill");
    // Resume: the same run continues (its cutoff kept), counting the killed batch once.
    let out = cmd(&[
        "retention",
        "run",
        "--rule",
        "sessions",
        "--json",
        "--batch-size",
        "10",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    let runv = &v["runs"][0];
    assert_eq!(runv["status"], "completed", "{v}");
    assert_eq!(
        runv["deleted"].as_u64().unwrap() as usize,
        expected.len(),
        "{v}"
    );
    let after = dump(&crm);
    let gone: BTreeSet<Key> = before["web_sessions"]
        .keys()
        .filter(|k| !after["web_sessions"].contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(gone, expected);
    // One run, resumed, with one certificate.
    let st = lethe::store::Store::open(&lethe::source::DbUrl::parse(&store).unwrap()).unwrap();
    let runs = st
        .read(|c| lethe::store::retention::runs(c, Some("sessions"), 10))
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].cutoff, dt("2026-10-02 02:00:00"));
    assert!(runs[0].certificate_id.is_some());
    let entries = st.read(|c| lethe::audit::recent(c, 100)).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == "retention.batch.recovered")
    );
}

#[test]
fn two_schedulers_on_one_postgres_store_never_overlap() {
    let Some(store_db) = PgDb::create() else {
        return;
    };
    let crm = Crm::sqlite(800);
    // Every 2 seconds; slow batches so a run lasts long enough to collide.
    let rules = RULES.replace(
        "[settings]\nbatch_size = 7",
        "[settings]\nbatch_size = 20\nschedule = \"*/2 * * * * *\"",
    );
    let pol = policy_dir(&rules);
    let key = lethe::crypto::MasterKey::generate().to_base64();
    let dir = tempfile::tempdir().unwrap();
    assert!(
        lethe_cmd(dir.path(), &pol, &crm, &store_db.url, &key)
            .arg("migrate")
            .status()
            .unwrap()
            .success()
    );
    let before = dump(&crm);
    let mut servers = Vec::new();
    for _ in 0..2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = lethe_cmd(dir.path(), &pol, &crm, &store_db.url, &key)
            .arg("serve")
            .env("LETHE_LISTEN", format!("127.0.0.1:{port}"))
            .env("LETHE_FAULTS", "retention.after_batch_commit=sleep:150")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        servers.push(child);
    }
    std::thread::sleep(Duration::from_secs(12));
    for mut s in servers {
        s.kill().unwrap();
        s.wait().unwrap();
    }
    // Settle a run the kill may have interrupted, then compare the counts with the CRM.
    let out = lethe_cmd(dir.path(), &pol, &crm, &store_db.url, &key)
        .args(["retention", "run", "--rule", "sessions", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = lethe::store::Store::open(&store_db.db_url()).unwrap();
    let runs = st
        .read(|c| lethe::store::retention::runs(c, None, 1000))
        .unwrap();
    assert!(runs.len() >= 4, "the schedulers ran: {}", runs.len());
    let owners: BTreeSet<&str> = runs.iter().map(|r| r.owner.as_str()).collect();
    assert!(owners.len() >= 2, "both replicas took part: {owners:?}");
    for rule in ["sessions", "contacts", "tickets", "invoices"] {
        let mut intervals: Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)> = runs
            .iter()
            .filter(|r| r.rule == rule)
            .map(|r| {
                (
                    r.started_at,
                    r.finished_at.unwrap_or(chrono::NaiveDateTime::MAX),
                )
            })
            .collect();
        intervals.sort();
        for w in intervals.windows(2) {
            assert!(w[0].1 <= w[1].0, "rule {rule}: runs overlap: {w:?}");
        }
    }
    // Each session row was deleted once: the runs' counts add up to the rows gone.
    let deleted: i64 = runs
        .iter()
        .filter(|r| r.rule == "sessions")
        .map(|r| r.rows_deleted)
        .sum();
    let gone = before["web_sessions"].len() - dump(&crm)["web_sessions"].len();
    assert!(gone > 0);
    assert_eq!(deleted as usize, gone);
}
