//! The engine store: migrations on both backends, the audit chain, and sealed data.

use crate::support::{Crm, TestApp};
use diesel::prelude::*;
use lethe::app::Actor;
use lethe::request::service::{self, NewRequest};
use lethe::request::{Channel, Regime, RequestKind};
use lethe::store::schema::{audit_log, requests};

fn new_request(email: &str) -> NewRequest {
    NewRequest {
        kind: RequestKind::Access,
        regime: Regime::Gdpr,
        identities: vec![("email".into(), email.into())],
        channel: Channel::Email,
        received_at: None,
        note: None,
        changes: Vec::new(),
    }
}

fn flow(t: &TestApp) {
    let actor = Actor::cli();
    for email in ["jane.doe@example.com", "max@mustermann-it.example"] {
        let r = service::create(&t.app, &actor, new_request(email)).unwrap();
        service::verify(&t.app, &actor, &r.id, "document_check", None).unwrap();
        service::run(&t.app, &actor, &r.id).unwrap();
    }
}

fn check_audit_chain(t: &TestApp) {
    flow(t);
    let report = t.app.store.read(lethe::audit::verify).unwrap();
    assert!(report.is_valid(), "{report:?}");
    // The signing key, then per request: created, verify, run, certificate, complete.
    assert_eq!(report.entries, 11);
    // No raw identity in the audit log or the request rows' clear-text columns.
    let rows = t.app.store.read(|c| lethe::audit::recent(c, 100)).unwrap();
    let all = format!("{rows:?}");
    assert!(
        !all.contains("jane.doe") && !all.contains("mustermann"),
        "identity leaked into the audit log"
    );
    let stored: Vec<(String, Vec<u8>)> = t
        .app
        .store
        .read(|c| {
            Ok(requests::table
                .select((requests::identity_summary, requests::identities_enc))
                .load(c)?)
        })
        .unwrap();
    for (summary, sealed) in stored {
        assert!(!summary.contains("jane.doe"), "{summary}");
        assert!(!String::from_utf8_lossy(&sealed).contains("jane.doe"));
    }

    // Edit one entry: verification names it.
    t.app
        .store
        .write(|c| {
            diesel::update(audit_log::table.find(3))
                .set(audit_log::actor.eq("mallory"))
                .execute(c)
                .map_err(lethe::store::StoreError::from)
        })
        .unwrap();
    let report = t.app.store.read(lethe::audit::verify).unwrap();
    assert_eq!(
        report.first_bad.as_ref().map(|b| b.0),
        Some(3),
        "{report:?}"
    );
}

fn check_tail_removal(t: &TestApp) {
    flow(t);
    t.app
        .store
        .write(|c| {
            diesel::delete(audit_log::table.find(11))
                .execute(c)
                .map_err(lethe::store::StoreError::from)
        })
        .unwrap();
    let report = t.app.store.read(lethe::audit::verify).unwrap();
    assert!(
        !report.is_valid(),
        "removing the last entry must be detected: {report:?}"
    );
}

#[test]
fn audit_chain_sqlite() {
    check_audit_chain(&TestApp::builder().crm(Crm::sqlite(50)).build());
    check_tail_removal(&TestApp::builder().crm(Crm::sqlite(50)).build());
}

#[test]
fn audit_chain_postgres() {
    let db = crate::require_pg!();
    let t = TestApp::builder()
        .crm(Crm::sqlite(50))
        .store_on_postgres(db)
        .build();
    check_audit_chain(&t);
}

#[test]
fn concurrent_appends_form_one_chain() {
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    std::thread::scope(|s| {
        for i in 0..4 {
            let app = t.app.clone();
            s.spawn(move || {
                for j in 0..10 {
                    service::create(
                        &app,
                        &Actor::cli(),
                        new_request(&format!("p{i}x{j}@example.com")),
                    )
                    .unwrap();
                }
            });
        }
    });
    let report = t.app.store.read(lethe::audit::verify).unwrap();
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.entries, 41, "40 requests and the signing key");
}

#[test]
fn wrong_master_key_cannot_open_sealed_identities() {
    let t = TestApp::builder().crm(Crm::sqlite(20)).build();
    let r = service::create(&t.app, &Actor::cli(), new_request("jane.doe@example.com")).unwrap();
    let other = lethe::crypto::MasterKey::generate();
    assert!(
        other
            .open("request-identities", &r.id, &r.identities_enc)
            .is_err()
    );
    assert!(
        t.app
            .key
            .open("request-identities", &r.id, &r.identities_enc)
            .is_ok()
    );
}
