//! Erasure end to end on real SQLite, PostgreSQL and (with the `mysql` feature) MariaDB:
//! exactly the planned rows change (full table dumps before and after, every column), the
//! re-trace finds nothing outside the exemptions, mentions are redacted inside other
//! people's text, the certificate verifies (with lethe and with an independent JOSE
//! implementation) and holds no raw identity.

use crate::support::{Crm, TestApp};
use lethe::app::Actor;
use lethe::demo::schema::TABLES;
use lethe::erase::plan::{ErasurePlan, StepKind};
use lethe::erase::run;
use lethe::request::service::{self, NewRequest};
use lethe::request::{Channel, Regime, RequestKind};
use lethe::source::{Key, Value};
use lethe::trace::TraceOptions;
use std::collections::{BTreeMap, BTreeSet};

/// table -> key -> (column -> value), every column of every demo table.
pub type Dump = BTreeMap<String, BTreeMap<Key, BTreeMap<String, Value>>>;

pub fn dump(crm: &Crm) -> Dump {
    let mut conn = crm.conn();
    let d = conn.dialect();
    let cat = lethe::source::Catalog::load(&mut conn).expect("catalog");
    let mut out = Dump::new();
    for t in TABLES {
        let cols: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
        let mut q = conn.sql();
        q.push("SELECT ");
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push(&d.select_column(c, cat.column_type(t.name, c)));
        }
        q.push(" FROM ").ident(t.name).push(" ORDER BY id");
        let rows = conn.query(&q).expect("dump");
        let table = out.entry(t.name.to_string()).or_default();
        for r in rows {
            let key = Key(vec![r[0].clone()]);
            table.insert(key, cols.iter().map(|c| c.to_string()).zip(r).collect());
        }
    }
    out
}

pub fn new_request(kind: RequestKind, email: &str) -> NewRequest {
    NewRequest {
        kind,
        regime: Regime::Gdpr,
        identities: vec![("email".into(), email.into())],
        channel: Channel::Email,
        received_at: None,
        note: None,
        changes: Vec::new(),
    }
}

/// Creates, verifies, plans and approves an erasure; returns the request id and plan.
pub fn planned_erasure(t: &TestApp, email: &str) -> (String, ErasurePlan) {
    let actor = Actor::cli();
    let r = service::create(&t.app, &actor, new_request(RequestKind::Erasure, email)).unwrap();
    service::verify(&t.app, &actor, &r.id, "document_check", None).unwrap();
    run::plan(&t.app, &actor, &r.id).unwrap();
    run::approve(&t.app, &actor, &r.id, Some("reviewed")).unwrap();
    let (_, plan) = run::load_plan(&t.app, &r.id).unwrap();
    (r.id, plan)
}

/// Every difference between two dumps must be one the plan made: a deleted row, or a
/// changed column of an updated row. Everything else is identical, byte for byte.
pub fn assert_only_planned_changes(before: &Dump, after: &Dump, plan: &ErasurePlan) {
    let mut deleted: BTreeSet<(String, Key)> = BTreeSet::new();
    let mut updated: BTreeMap<(String, Key), BTreeSet<String>> = BTreeMap::new();
    for sp in &plan.sources {
        for st in &sp.steps {
            for r in &st.rows {
                let k = (st.table.clone(), r.key.clone());
                if st.kind == StepKind::Delete {
                    deleted.insert(k);
                } else {
                    updated
                        .entry(k)
                        .or_default()
                        .extend(st.changes.iter().map(|c| c.column.clone()));
                }
            }
        }
    }
    let mut changed_cells = 0;
    for (table, rows) in before {
        let after_rows = &after[table];
        for (key, cols) in rows {
            let k = (table.clone(), key.clone());
            match after_rows.get(key) {
                None => assert!(
                    deleted.contains(&k),
                    "{table} row {key} disappeared but was not planned for deletion"
                ),
                Some(after_cols) => {
                    assert!(
                        !deleted.contains(&k),
                        "{table} row {key} was planned for deletion but is still there"
                    );
                    let allowed = updated.get(&k);
                    for (c, v) in cols {
                        if after_cols[c] != *v {
                            assert!(
                                allowed.is_some_and(|a| a.contains(c)),
                                "{table} row {key} column {c} changed ({v:?} -> {:?}) but the plan does not change it",
                                after_cols[c]
                            );
                            changed_cells += 1;
                        }
                    }
                }
            }
        }
        for key in after_rows.keys() {
            assert!(rows.contains_key(key), "{table} row {key} appeared");
        }
    }
    let gone: usize = before
        .iter()
        .map(|(t, rows)| rows.len() - after[t].len())
        .sum();
    assert!(changed_cells + gone > 0, "the erasure changed nothing");
}

fn check_erasure(t: &TestApp) {
    let before = dump(&t.crm);
    let (id, plan) = planned_erasure(t, "jane.doe@example.com");
    // The plan: about 20 rows in 8+ tables, the polymorphic, copied and free-text cases.
    let tables: BTreeSet<&str> = plan
        .sources
        .iter()
        .flat_map(|s| s.steps.iter().map(|s| s.table.as_str()))
        .collect();
    assert!(tables.len() >= 8, "{tables:?}");
    for t in [
        "activities",
        "notes",
        "tickets",
        "ticket_messages",
        "contacts",
        "deals",
        "leads",
    ] {
        assert!(tables.contains(t), "{t} missing from {tables:?}");
    }
    let row = run::execute(&t.app, &Actor::cli(), &id).unwrap();
    assert_eq!(row.state, "partially_completed", "{:?}", row.state_reason);
    let after = dump(&t.crm);
    assert_only_planned_changes(&before, &after, &plan);

    // Specific cases.
    let activities = &after["activities"];
    assert!(
        !activities.contains_key(&Key(vec![Value::Int(3)])),
        "the deal's activity (two hops, polymorphic) is gone"
    );
    let erika = &activities[&Key(vec![Value::Int(4)])]["body"];
    assert_eq!(
        erika,
        &Value::Text(
            "Erika forwarded a question; cc: [redacted] and purchasing@acme-logistics.example."
                .into()
        )
    );
    let note = &after["notes"][&Key(vec![Value::Int(3)])]["body"];
    assert!(
        note.as_text()
            .unwrap()
            .contains("customer [redacted] (J. Doe)"),
        "{note:?}"
    );
    assert!(
        !after["tickets"].contains_key(&Key(vec![Value::Int(2)])),
        "the ticket with only a copied e-mail is gone"
    );
    // Kept under the statutory exemption: invoices untouched, the contact anonymized because
    // kept invoices point at it.
    assert_eq!(before["invoices"], after["invoices"]);
    let contact = &after["contacts"][&Key(vec![Value::Int(1)])];
    assert_eq!(contact["email"], Value::Text("[erased]".into()));
    assert_eq!(contact["phone"], Value::Null);
    // The other Jane Doe is untouched.
    assert_eq!(
        before["contacts"][&Key(vec![Value::Int(2)])],
        after["contacts"][&Key(vec![Value::Int(2)])]
    );

    // Re-trace: nothing outside the exemptions.
    let fp = t
        .app
        .trace(&plan.identities, &TraceOptions::default())
        .unwrap();
    let map = &t.app.policy.datamap;
    for (&ti, rows) in &fp.tables {
        for k in rows.rows.keys() {
            assert!(
                plan.is_exempt(&map.tables[ti].name, k),
                "{} {k} remains",
                map.tables[ti].name
            );
        }
    }
    assert!(fp.mentions.is_empty(), "{:?}", fp.mentions);

    // One certificate, valid, without raw identities.
    let certs = t
        .app
        .store
        .read(|c| lethe::cert::issue::for_request(c, &id))
        .unwrap();
    assert_eq!(certs.len(), 1);
    let jwks = t.app.store.read(lethe::cert::keys::jwks).unwrap();
    let v = lethe::cert::jws::verify(&certs[0].jws, &jwks).expect("valid certificate");
    let p = &v.payload;
    assert_eq!(p["kind"], "erasure");
    assert_eq!(p["verification"]["passed"], true);
    assert_eq!(p["verification"]["rows_remaining_outside_exemptions"], 0);
    assert_eq!(p["totals"]["redacted"], 2);
    assert_eq!(p["totals"]["anonymized"], 1);
    assert_eq!(p["totals"]["kept_under_exemption"], 5);
    let deleted: u64 = p["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["deleted"].as_u64().unwrap())
        .sum();
    assert_eq!(p["totals"]["deleted"].as_u64().unwrap(), deleted);
    assert_eq!(
        deleted,
        plan.sources[0]
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Delete)
            .map(|s| s.rows.len() as u64)
            .sum::<u64>()
    );
    assert!(
        p["subject_ref"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    let decoded = p.to_string().to_lowercase();
    for secret in ["jane", "doe@", "1234567", "cust-0000001", "example.com"] {
        assert!(
            !decoded.contains(secret),
            "certificate payload contains {secret}"
        );
    }
    let report = t.app.store.read(lethe::audit::verify).unwrap();
    assert!(report.is_valid(), "{report:?}");
}

#[test]
fn erasure_changes_exactly_the_plan_sqlite() {
    check_erasure(&TestApp::builder().crm(Crm::sqlite(300)).build());
}

#[test]
fn erasure_changes_exactly_the_plan_postgres() {
    let crm = crate::require_pg!();
    let store = crate::require_pg!();
    check_erasure(
        &TestApp::builder()
            .crm(Crm::postgres(crm, 300))
            .store_on_postgres(store)
            .build(),
    );
}

/// The CRM on MariaDB (the engine store stays on SQLite: MySQL is a source backend only).
#[cfg(feature = "mysql")]
#[test]
fn erasure_changes_exactly_the_plan_mariadb() {
    let crm = crate::require_mysql!();
    check_erasure(&TestApp::builder().crm(Crm::mariadb(crm, 300)).build());
}

#[test]
fn sole_trader_company_is_anonymized_and_mentions_redacted_for_generated_people() {
    let t = TestApp::builder().crm(Crm::sqlite(400)).build();
    // Max: his sole-trader company is anonymized, not deleted.
    let before = dump(&t.crm);
    let (id, plan) = planned_erasure(&t, "max@mustermann-it.example");
    let row = run::execute(&t.app, &Actor::cli(), &id).unwrap();
    assert_eq!(row.state, "partially_completed");
    let after = dump(&t.crm);
    assert_only_planned_changes(&before, &after, &plan);
    let company = &after["companies"][&Key(vec![Value::Int(3)])];
    assert_eq!(company["name"], Value::Text("[sole trader, erased]".into()));
    assert_eq!(
        company["city"],
        before["companies"][&Key(vec![Value::Int(3)])]["city"]
    );

    // A generated contact whose e-mail someone else's activity mentions.
    let mut conn = t.crm.conn();
    let mut q = conn.sql();
    q.push(
        "SELECT id, body FROM activities WHERE body LIKE '%cc: %' AND id > 7 ORDER BY id LIMIT 1",
    );
    let r = conn.query(&q).unwrap();
    let body = r[0][1].as_text().unwrap().to_string();
    let cc = body
        .rsplit("cc: ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let (id, _) = planned_erasure(&t, &cc);
    let row = run::execute(&t.app, &Actor::cli(), &id).unwrap();
    assert!(
        row.state.ends_with("completed"),
        "{} {:?}",
        row.state,
        row.state_reason
    );
    let after = dump(&t.crm);
    let redacted = after["activities"][&Key(vec![r[0][0].clone()])]["body"]
        .as_text()
        .unwrap()
        .to_string();
    assert!(redacted.ends_with("cc: [redacted]"), "{redacted}");
    assert!(!redacted.contains(&cc));
}

#[test]
fn re_executing_after_completion_changes_nothing() {
    let t = TestApp::builder().crm(Crm::sqlite(100)).build();
    let (id, plan) = planned_erasure(&t, "jane.doe@example.com");
    run::execute(&t.app, &Actor::cli(), &id).unwrap();
    let once = dump(&t.crm);
    // The executor finds every row already in its end state and reports the same counts.
    let handle = t.app.sources.get("crm").unwrap();
    let cat = handle.catalog().unwrap();
    let mut conn = handle.pool.get().unwrap();
    let map = &t.app.policy.datamap;
    let pk = |tb: &str| map.table(tb).unwrap().primary_key.clone();
    let res = lethe::erase::execute::execute_source(&mut conn, &cat, &pk, &plan.sources[0], &|| {})
        .unwrap();
    assert!(res.already_applied);
    assert_eq!(
        res.steps.iter().map(|s| s.rows).sum::<u64>(),
        plan.actionable_rows() as u64
    );
    assert_eq!(once, dump(&t.crm));
    // And the request cannot be executed again.
    assert!(run::execute(&t.app, &Actor::cli(), &id).is_err());
}

#[test]
fn rectification_records_before_and_after() {
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    let actor = Actor::cli();
    let mut new = new_request(RequestKind::Rectification, "jane.doe@example.com");
    new.changes = vec![lethe::erase::plan::Change {
        table: "contacts".into(),
        column: "city".into(),
        value: Value::Text("Potsdam".into()),
    }];
    let r = service::create(&t.app, &actor, new).unwrap();
    service::verify(&t.app, &actor, &r.id, "account_login", None).unwrap();
    run::plan(&t.app, &actor, &r.id).unwrap();
    let (_, plan) = run::load_plan(&t.app, &r.id).unwrap();
    let step = &plan.sources[0].steps[0];
    assert_eq!(step.kind, StepKind::Rectify);
    assert_eq!(
        step.rows[0].previous,
        Some(vec![Value::Text("Berlin".into())])
    );
    assert_eq!(
        step.rows[0].after,
        Some(vec![Value::Text("Potsdam".into())])
    );
    run::approve(&t.app, &actor, &r.id, None).unwrap();
    let done = run::execute(&t.app, &actor, &r.id).unwrap();
    assert_eq!(done.state, "completed");
    assert_eq!(
        dump(&t.crm)["contacts"][&Key(vec![Value::Int(1)])]["city"],
        Value::Text("Potsdam".into())
    );
    // A change to an unmapped or key column, or of the wrong type, is refused at intake.
    for (col, val, field) in [
        ("owner_id", Value::Int(3), "changes[0].column"),
        ("id", Value::Int(3), "changes[0].column"),
        ("birth_date", Value::Text("soon".into()), "changes[0].value"),
    ] {
        let mut bad = new_request(RequestKind::Rectification, "jane.doe@example.com");
        bad.changes = vec![lethe::erase::plan::Change {
            table: "contacts".into(),
            column: col.into(),
            value: val,
        }];
        match service::create(&t.app, &actor, bad) {
            Err(lethe::request::RequestError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{col}: {other:?}"),
        }
    }
}

#[test]
fn opt_out_needs_no_verification_and_sets_the_mapped_column() {
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    let actor = Actor::cli();
    let mut new = new_request(RequestKind::OptOut, "jane.doe@example.com");
    new.regime = Regime::Ccpa;
    let r = service::create(&t.app, &actor, new).unwrap();
    let done = service::run(&t.app, &actor, &r.id).unwrap();
    assert_eq!(done.state, "completed", "{:?}", done.state_reason);
    let v = &dump(&t.crm)["contacts"][&Key(vec![Value::Int(1)])]["do_not_sell"];
    assert!(matches!(v, Value::Int(1) | Value::Bool(true)), "{v:?}");
    // CCPA opt-out: 15 business days.
    let received = done.received_at.date();
    assert_eq!(
        done.due_at.date(),
        lethe::request::deadline::add_business_days(received, 15)
    );
}

#[test]
fn verification_failure_is_visible_and_issues_no_certificate() {
    // A row of the subject appears between execution and verification: the verifier finds
    // it, the request fails with the reason, and no certificate is issued.
    let t = TestApp::builder()
        .crm(Crm::sqlite(50))
        .fault("erase.before_verify", 1500)
        .build();
    let (id, _) = planned_erasure(&t, "jane.doe@example.com");
    let app = t.app.clone();
    let id2 = id.clone();
    let worker = std::thread::spawn(move || run::execute(&app, &Actor::cli(), &id2));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut conn = t.crm.conn();
    let mut q = conn.sql();
    q.push("INSERT INTO tickets (id, contact_id, requester_email, requester_name, subject, status, priority, created_at) VALUES (999999, NULL, 'JANE.DOE@example.com', 'J', 'again', 'open', 'low', '2026-11-01 00:00:00')");
    conn.execute(&q).unwrap();
    let row = worker.join().unwrap().unwrap();
    assert_eq!(row.state, "failed");
    let reason = row.state_reason.unwrap();
    assert!(
        reason.contains("verification failed") && reason.contains("tickets#999999"),
        "{reason}"
    );
    assert!(
        t.app
            .store
            .read(|c| lethe::cert::issue::for_request(c, &id))
            .unwrap()
            .is_empty()
    );
    // It can be re-planned from there.
    let again = run::plan(&t.app, &Actor::cli(), &id).unwrap();
    assert_eq!(again.state, "planned");
}

#[test]
fn unknown_subject_erasure_completes_with_nothing_to_do() {
    let t = TestApp::builder().crm(Crm::sqlite(30)).build();
    let (id, plan) = planned_erasure(&t, "nobody@nowhere.example");
    assert_eq!(plan.actionable_rows(), 0);
    let row = run::execute(&t.app, &Actor::cli(), &id).unwrap();
    assert_eq!(row.state, "completed");
}
