//! Certificates: verified by lethe and by an independent JOSE implementation (Python
//! jwcrypto), rejected after any byte flip, still valid after a key rotation; the CLI
//! verifies offline; the audit log detects edits, removals and reorderings.

use crate::erasure::planned_erasure;
use crate::support::{Crm, TestApp, client, repo};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use diesel::prelude::*;
use lethe::app::Actor;
use lethe::cert::{issue, jws, keys};
use lethe::erase::run;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

/// The Python with jwcrypto (`LETHE_TEST_PYTHON`, or target/pyjose made by `.ci/run`).
fn jose_python() -> Option<PathBuf> {
    let p = std::env::var("LETHE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/pyjose/bin/python"));
    let ok = p.exists()
        && Command::new(&p)
            .args(["-c", "import jwcrypto"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok && std::env::var("LETHE_TEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!(
            "no Python with jwcrypto at {}: .ci/run installs it",
            p.display()
        );
    }
    ok.then_some(p)
}

fn erased_certificate(t: &TestApp) -> (String, String) {
    let (id, _) = planned_erasure(t, "jane.doe@example.com");
    run::execute(&t.app, &Actor::cli(), &id).unwrap();
    let certs = t.app.store.read(|c| issue::for_request(c, &id)).unwrap();
    (id, certs[0].jws.clone())
}

#[test]
fn certificates_verify_with_an_independent_jose_library() {
    let Some(python) = jose_python() else {
        eprintln!("SKIPPED: no Python with jwcrypto (set LETHE_TEST_PYTHON)");
        return;
    };
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    let (_, cert) = erased_certificate(&t);
    let jwks = t.app.store.read(keys::jwks).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, serde_json::to_string(&jwks).unwrap()).unwrap();
    let run_py = |text: &str| -> (bool, Value) {
        let f = dir.path().join("cert.json");
        std::fs::write(&f, text).unwrap();
        let out = Command::new(&python)
            .arg(repo().join("tests/tools/jose_verify.py"))
            .arg(&f)
            .arg(&jwks_path)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), v)
    };
    let (ok, v) = run_py(&cert);
    assert!(ok, "{v}");
    assert_eq!(v["payload"]["kind"], "erasure");
    assert_eq!(v["payload"]["verification"]["passed"], true);
    // Flip one byte in each part: the independent verifier rejects it too.
    let j: jws::Jws = serde_json::from_str(&cert).unwrap();
    for part in 0..3 {
        let text = [&j.protected, &j.payload, &j.signature][part];
        let mut bytes = B64.decode(text).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        let mut m = j.clone();
        let enc = B64.encode(&bytes);
        match part {
            0 => m.protected = enc,
            1 => m.payload = enc,
            _ => m.signature = enc,
        }
        let (ok, v) = run_py(&serde_json::to_string(&m).unwrap());
        assert!(!ok, "part {part}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_over_http_and_after_key_rotation() {
    let t = TestApp::builder().crm(Crm::sqlite(50)).build();
    let (_, cert) = erased_certificate(&t);
    let base = t.serve().await;
    let http = client();
    // The JWKS needs no token.
    let jwks: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    let verify = |body: String| {
        let http = http.clone();
        let base = base.clone();
        let tok = t.auditor.clone();
        async move {
            let r = http
                .post(format!("{base}/api/v1/certificates/verify"))
                .bearer_auth(tok)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = verify(cert.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(v["valid"], true, "{v}");
    let (_, v) = verify(json!({"jws": cert}).to_string()).await;
    assert_eq!(v["valid"], true);
    // Every single-byte flip of the payload is rejected.
    let j: jws::Jws = serde_json::from_str(&cert).unwrap();
    let payload = B64.decode(&j.payload).unwrap();
    for i in (0..payload.len()).step_by(7) {
        let mut p = payload.clone();
        p[i] ^= 0x01;
        let mut m = j.clone();
        m.payload = B64.encode(&p);
        let (s, v) = verify(serde_json::to_string(&m).unwrap()).await;
        assert_eq!(s, 200);
        assert_eq!(v["valid"], false, "byte {i}");
    }
    let (s, _) = verify("not json".into()).await;
    assert_eq!(s, 400);
    let (s, _) = verify(json!({"hello": 1}).to_string()).await;
    assert_eq!(s, 422);

    // Rotate: new certificates use the new key; the old one still verifies.
    let old_kid = j.protected.clone();
    t.app
        .store
        .write(|c| keys::add(c, &t.app.key, "test", "rotation"))
        .unwrap();
    let jwks: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let (_, v) = verify(cert.clone()).await;
    assert_eq!(v["valid"], true);
    let (_, cert2) = {
        let (id, _) = planned_erasure(&t, "max@mustermann-it.example");
        run::execute(&t.app, &Actor::cli(), &id).unwrap();
        (
            id.clone(),
            t.app.store.read(|c| issue::for_request(c, &id)).unwrap()[0]
                .jws
                .clone(),
        )
    };
    let j2: jws::Jws = serde_json::from_str(&cert2).unwrap();
    assert_ne!(j2.protected, old_kid, "signed with the new key");
    let (_, v) = verify(cert2).await;
    assert_eq!(v["valid"], true);
    // Listing and the raw download.
    let list: Value = http
        .get(format!("{base}/api/v1/certificates"))
        .bearer_auth(&t.auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["certificates"].as_array().unwrap().len(), 2);
    let id = list["certificates"][0]["id"].as_str().unwrap();
    let raw = http
        .get(format!("{base}/api/v1/certificates/{id}/jws"))
        .bearer_auth(&t.auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "application/jose+json");
    let (s, _) = (
        http.get(format!("{base}/api/v1/certificates/cert-nope"))
            .bearer_auth(&t.auditor)
            .send()
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(s, 404);
}

#[test]
fn access_requests_get_a_certificate_too() {
    let t = TestApp::builder().crm(Crm::sqlite(30)).build();
    let actor = Actor::cli();
    let r = lethe::request::service::create(
        &t.app,
        &actor,
        crate::erasure::new_request(lethe::request::RequestKind::Access, "jane.doe@example.com"),
    )
    .unwrap();
    lethe::request::service::verify(&t.app, &actor, &r.id, "document_check", None).unwrap();
    lethe::request::service::run(&t.app, &actor, &r.id).unwrap();
    let certs = t.app.store.read(|c| issue::for_request(c, &r.id)).unwrap();
    assert_eq!(certs.len(), 1);
    let jwks = t.app.store.read(keys::jwks).unwrap();
    let v = jws::verify(&certs[0].jws, &jwks).unwrap();
    assert_eq!(v.payload["kind"], "access");
    assert_eq!(v.payload["export"]["records"], 26);
    assert!(
        v.payload["export"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(!v.payload.to_string().contains("jane.doe"));
}

/// Runs the lethe binary against a data directory.
fn lethe(dir: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
    c.args(args)
        .current_dir(dir)
        .env("LETHE_LOG", "warn")
        .env("LETHE_DATA_DIR", dir.join("data"))
        .env("LETHE_POLICY_DIR", repo().join("policies"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn cli_verifies_certificates_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let crm = dir.path().join("crm.sqlite3");
    {
        let mut conn =
            lethe::source::connect(&lethe::source::DbUrl::Sqlite(crm.clone()), true).unwrap();
        lethe::demo::seed(&mut conn, 30, crate::support::SEED, |_| {}).unwrap();
    }
    let env = [(
        "LETHE_SOURCE_CRM_URL",
        format!("sqlite://{}", crm.display()),
    )];
    let run = |args: &[&str]| {
        let out = lethe(dir.path(), args, &env);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["keys", "init"]);
    run(&["migrate"]);
    let created = run(&[
        "request",
        "create",
        "--kind",
        "erasure",
        "--regime",
        "gdpr",
        "--email",
        "jane.doe@example.com",
        "--json",
    ]);
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for args in [
        vec!["request", "verify", &id, "--method", "document_check"],
        vec!["request", "plan", &id],
        vec!["request", "approve", &id],
        vec!["request", "execute", &id],
    ] {
        run(&args);
    }
    let store = format!(
        "sqlite://{}",
        dir.path().join("data/lethe.sqlite3").display()
    );
    let store_url = lethe::source::DbUrl::parse(&store).unwrap();
    let st = lethe::store::Store::open(&store_url).unwrap();
    let cert = st.read(|c| issue::for_request(c, &id)).unwrap().remove(0);
    std::fs::write(dir.path().join("cert.json"), &cert.jws).unwrap();
    std::fs::write(dir.path().join("jwks.json"), run(&["keys", "jwks"])).unwrap();
    let out = run(&["cert", "verify", "cert.json", "--jwks", "jwks.json"]);
    assert!(out.starts_with("valid: erasure certificate"), "{out}");
    let mut tampered: jws::Jws = serde_json::from_str(&cert.jws).unwrap();
    let mut p = B64.decode(&tampered.payload).unwrap();
    p[10] ^= 1;
    tampered.payload = B64.encode(&p);
    std::fs::write(
        dir.path().join("bad.json"),
        serde_json::to_string(&tampered).unwrap(),
    )
    .unwrap();
    let out = lethe(
        dir.path(),
        &["cert", "verify", "bad.json", "--jwks", "jwks.json"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("INVALID"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The audit log verifies; an edited, removed or reordered entry is named.
    let out = run(&["audit", "verify"]);
    assert!(out.starts_with("audit log valid"), "{out}");
    use lethe::store::schema::audit_log::dsl as a;
    let backup: Vec<lethe::store::models::AuditRow> = st
        .read(|c| Ok(a::audit_log.order(a::seq.asc()).load(c)?))
        .unwrap();
    let restore = |st: &lethe::store::Store| {
        st.write(|c| -> Result<(), lethe::store::StoreError> {
            diesel::delete(a::audit_log).execute(c)?;
            for row in &backup {
                diesel::insert_into(a::audit_log).values(row).execute(c)?;
            }
            Ok(())
        })
        .unwrap();
    };
    let check_bad = |expect: i64| {
        let out = lethe(dir.path(), &["audit", "verify"], &env);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!("INVALID at entry {expect}")),
            "{text}"
        );
    };
    // Edit entry 4.
    st.write(|c| {
        diesel::update(a::audit_log.find(4))
            .set(a::details.eq("{\"from\":\"x\"}"))
            .execute(c)
            .map_err(lethe::store::StoreError::from)
    })
    .unwrap();
    check_bad(4);
    restore(&st);
    // Delete entry 3.
    st.write(|c| {
        diesel::delete(a::audit_log.find(3))
            .execute(c)
            .map_err(lethe::store::StoreError::from)
    })
    .unwrap();
    check_bad(3);
    restore(&st);
    // Reorder entries 5 and 6 (swap their contents).
    let (r5, r6) = (backup[4].clone(), backup[5].clone());
    st.write(|c| -> Result<(), lethe::store::StoreError> {
        diesel::update(a::audit_log.find(5))
            .set((
                a::action.eq(&r6.action),
                a::object.eq(&r6.object),
                a::details.eq(&r6.details),
                a::hash.eq(&r6.hash),
                a::prev_hash.eq(&r6.prev_hash),
                a::at.eq(r6.at),
            ))
            .execute(c)?;
        diesel::update(a::audit_log.find(6))
            .set((
                a::action.eq(&r5.action),
                a::object.eq(&r5.object),
                a::details.eq(&r5.details),
                a::hash.eq(&r5.hash),
                a::prev_hash.eq(&r5.prev_hash),
                a::at.eq(r5.at),
            ))
            .execute(c)?;
        Ok(())
    })
    .unwrap();
    check_bad(5);
    restore(&st);
    let out = run(&["audit", "verify"]);
    assert!(out.starts_with("audit log valid"), "{out}");
}
