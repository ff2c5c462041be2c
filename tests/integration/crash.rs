//! A real `lethe` process is killed with SIGKILL in the middle of an erasure (before the
//! source commit, after it, and before the certificate) and restarted: the request
//! completes, the CRM changes exactly as planned (counted once), and no certificate existed
//! before verification passed.

use crate::erasure::{Dump, assert_only_planned_changes, dump};
use crate::support::{Crm, repo};
use lethe::erase::plan::ErasurePlan;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Env {
    dir: tempfile::TempDir,
    crm: Crm,
}

impl Env {
    fn new() -> Env {
        let crm = Crm::sqlite(100);
        let dir = tempfile::tempdir().unwrap();
        let e = Env { dir, crm };
        e.ok(&["keys", "init"]);
        e.ok(&["migrate"]);
        e
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("LETHE_LOG", "warn")
            .env("LETHE_DATA_DIR", self.dir.path().join("data"))
            .env("LETHE_POLICY_DIR", repo().join("policies"))
            .env("LETHE_SOURCE_CRM_URL", self.crm.url_string())
            .env_remove("LETHE_FAULTS");
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn store(&self) -> lethe::store::Store {
        let url = lethe::source::DbUrl::Sqlite(self.dir.path().join("data/lethe.sqlite3"));
        lethe::store::Store::open(&url).unwrap()
    }

    fn approved_erasure(&self, email: &str) -> String {
        let out = self.ok(&[
            "request", "create", "--kind", "erasure", "--regime", "gdpr", "--email", email,
            "--json",
        ]);
        let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.ok(&["request", "verify", &id, "--method", "document_check"]);
        self.ok(&["request", "plan", &id]);
        self.ok(&["request", "approve", &id]);
        id
    }

    fn state(&self, id: &str) -> String {
        self.store()
            .read(|c| lethe::store::requests::get(c, id))
            .unwrap()
            .state
    }

    fn certificates(&self, id: &str) -> Vec<lethe::store::models::CertificateRow> {
        self.store()
            .read(|c| lethe::cert::issue::for_request(c, id))
            .unwrap()
    }

    fn plan(&self, id: &str) -> ErasurePlan {
        let key =
            lethe::crypto::MasterKey::read_file(&self.dir.path().join("data/master.key")).unwrap();
        let row = self
            .store()
            .read(|c| lethe::store::erasure::get_plan(c, id))
            .unwrap();
        serde_json::from_slice(&key.open("plan", id, &row.plan_enc).unwrap()).unwrap()
    }

    /// Runs `lethe request execute` with a fault point and SIGKILLs it there.
    fn execute_and_kill_at(&self, id: &str, point: &str) {
        let mut child = self
            .cmd(&["request", "execute", id])
            .env("LETHE_FAULTS", format!("{point}=sleep:60000"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut reached = false;
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains(&format!("fault point {point} reached")) {
                reached = true;
                break;
            }
        }
        assert!(reached, "fault point {point} was not reached");
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
}

pub(crate) fn totals(cert: &lethe::store::models::CertificateRow) -> Value {
    let j: lethe::cert::jws::Jws = serde_json::from_str(&cert.jws).unwrap();
    j.payload_json().unwrap()["totals"].clone()
}

pub(crate) fn expected_totals(plan: &ErasurePlan) -> (u64, u64, u64) {
    use lethe::erase::plan::StepKind::*;
    let count = |k| {
        plan.sources
            .iter()
            .flat_map(|s| &s.steps)
            .filter(|s| s.kind == k)
            .map(|s| s.rows.len() as u64)
            .sum::<u64>()
    };
    (count(Delete), count(Anonymize), count(Redact))
}

fn check_completed_exactly(env: &Env, id: &str, before: &Dump) {
    assert_eq!(env.state(id), "partially_completed");
    let certs = env.certificates(id);
    assert_eq!(certs.len(), 1, "exactly one certificate");
    let plan = env.plan(id);
    let t = totals(&certs[0]);
    let (d, a, r) = expected_totals(&plan);
    assert_eq!(
        (
            t["deleted"].as_u64().unwrap(),
            t["anonymized"].as_u64().unwrap(),
            t["redacted"].as_u64().unwrap()
        ),
        (d, a, r)
    );
    assert_only_planned_changes(before, &dump(&env.crm), &plan);
}

#[test]
fn sigkill_during_erasure_then_restart_completes_exactly_once() {
    let env = Env::new();

    // 1. Killed inside the source transaction, before its commit: nothing changed.
    let before = dump(&env.crm);
    let id = env.approved_erasure("jane.doe@example.com");
    env.execute_and_kill_at(&id, "erase.before_source_commit");
    assert_eq!(env.state(&id), "executing");
    assert!(env.certificates(&id).is_empty());
    assert_eq!(
        before,
        dump(&env.crm),
        "the uncommitted transaction was rolled back"
    );
    env.ok(&["request", "resume", &id]);
    check_completed_exactly(&env, &id, &before);

    // 2. Killed after the source commit, before the step was recorded: the re-run finds
    // the changes in place and counts them once.
    let before = dump(&env.crm);
    let id = env.approved_erasure("max@mustermann-it.example");
    env.execute_and_kill_at(&id, "erase.after_source_commit");
    assert_eq!(env.state(&id), "executing");
    assert!(env.certificates(&id).is_empty());
    assert_ne!(
        before,
        dump(&env.crm),
        "the source transaction had committed"
    );
    env.ok(&["request", "resume", &id]);
    check_completed_exactly(&env, &id, &before);

    // 3. Killed after verification started, before the certificate: `lethe serve` resumes
    // it at start-up.
    let before = dump(&env.crm);
    let id = env.approved_erasure("jane.doe@otherco.example");
    env.execute_and_kill_at(&id, "erase.before_certificate");
    assert_eq!(env.state(&id), "verifying");
    assert!(
        env.certificates(&id).is_empty(),
        "no certificate before verification passed"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = env
        .cmd(&["serve"])
        .env("LETHE_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.state(&id) != "completed" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(env.state(&id), "completed", "serve resumed the request");
    let certs = env.certificates(&id);
    assert_eq!(certs.len(), 1);
    assert_only_planned_changes(&before, &dump(&env.crm), &env.plan(&id));
    let out = env.ok(&["audit", "verify"]);
    assert!(out.starts_with("audit log valid"), "{out}");
}
