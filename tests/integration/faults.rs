//! Faults: a PostgreSQL CRM that goes away mid-retention and mid-erasure (the job waits in a
//! retryable state with the reason, then the same work resumes and completes once); an
//! engine store that turns read-only (PostgreSQL, for real; SQLite through the fault hook)
//! or fills its disk (a small tmpfs) while a job completes (a clear error, a 503 over HTTP,
//! no certificate, then recovery with exactly one); and SIGTERM, which drains the job in
//! flight and exits 0.

use crate::crash::{expected_totals, totals};
use crate::erasure::{assert_only_planned_changes, dump, planned_erasure};
use crate::retention::{RULES, due_ids};
use crate::support::{Crm, PgDb, TestApp, client, pg_admin_url, repo};
use lethe::erase::plan::ErasurePlan;
use lethe::jobs::{JobKind, JobOutcome};
use lethe::retention::run::RunRequest;
use lethe::source::{DbUrl, Key};
use lethe::store::StoreFault;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

fn admin_exec(sql: &str) {
    let admin = pg_admin_url().expect("LETHE_TEST_PG_URL");
    let mut c = lethe::source::connect(&DbUrl::parse(&admin).unwrap(), false).unwrap();
    c.batch(sql).unwrap();
}

/// Makes a PostgreSQL database unavailable (no new connections, the open ones ended), or
/// available again.
fn set_available(db: &str, available: bool) {
    admin_exec(&format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS {available}"
    ));
    if !available {
        terminate_backends(db);
    }
}

fn terminate_backends(db: &str) {
    admin_exec(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ));
}

/// Waits until a session of `db` sits inside an open transaction (a fault sleep there).
fn wait_idle_in_transaction(db: &str) {
    let admin = pg_admin_url().expect("LETHE_TEST_PG_URL");
    let mut c = lethe::source::connect(&DbUrl::parse(&admin).unwrap(), false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut q = c.sql();
        q.push(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND state = 'idle in transaction' AND now() - state_change > interval '30 milliseconds'"
        ));
        let n = c.query(&q).unwrap()[0][0].as_int().unwrap();
        if n > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no open transaction in {db}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn audit_actions(t: &TestApp) -> Vec<(String, String)> {
    t.app
        .store
        .read(|c| lethe::audit::page(c, None, 1000))
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.details))
        .collect()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Short back-off so a test sees the retry.
fn quick_retries(c: &mut lethe::config::Config) {
    c.jobs.retry_base = Duration::from_millis(300);
    c.jobs.retry_max = Duration::from_secs(2);
}

#[test]
fn retention_waits_while_the_postgres_crm_is_gone_and_resumes_the_same_run() {
    let db = crate::require_pg!();
    let crm_db = db.name.clone();
    let t = TestApp::builder()
        .crm(Crm::postgres(db, 200))
        .retention(RULES)
        .fault("retention.before_batch_commit", 150)
        .configure(quick_retries)
        .build();
    let before = dump(&t.crm);
    let req = RunRequest {
        rule: "sessions".into(),
        at: Some(
            chrono::NaiveDateTime::parse_from_str("2026-11-01 02:00:00", "%Y-%m-%d %H:%M:%S")
                .unwrap(),
        ),
        dry_run: false,
        batch_size: Some(5),
        budget: None,
        trigger: "api".into(),
        not_before: None,
    };
    let args = serde_json::to_string(&req).unwrap();
    let app = t.app.clone();
    let worker = std::thread::spawn(move || {
        lethe::jobs::run_now(&app, JobKind::RetentionRun, "sessions", args)
    });
    // The CRM goes away in the middle of the run: after two batches, inside the third.
    let runs = || {
        t.app
            .store
            .read(|c| lethe::store::retention::runs(c, Some("sessions"), 10))
            .unwrap()
    };
    wait_until("two batches", 60, || {
        runs().first().is_some_and(|r| r.batches >= 2)
    });
    wait_idle_in_transaction(&crm_db);
    set_available(&crm_db, false);
    let outcome = worker.join().unwrap();
    let JobOutcome::RetryAt(retry_at, reason) = &outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!(reason.contains("source unavailable"), "{reason}");

    // Paused: waiting, with the reason and the retry time; its job queued with back-off;
    // an audit entry; no certificate; no identity value in the reason.
    let paused = runs();
    assert_eq!(paused.len(), 1);
    let run = &paused[0];
    assert_eq!(run.status, "waiting");
    let why = run.error.clone().unwrap();
    assert!(why.starts_with("waiting for a retry at "), "{why}");
    assert!(why.contains("source unavailable"), "{why}");
    assert!(!why.contains('@'), "{why}");
    assert!(run.certificate_id.is_none() && run.finished_at.is_none());
    let done_batches = run.batches;
    let job = t
        .app
        .store
        .read(|c| lethe::store::jobs::live(c, "retention.run", "sessions"))
        .unwrap()
        .expect("the job is queued again");
    assert_eq!(job.state, "queued");
    assert_eq!(job.run_after, *retry_at);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or("")
            .contains("source unavailable")
    );
    assert!(
        audit_actions(&t)
            .iter()
            .any(|(a, d)| a == "retention.run.waiting" && d.contains("retry_at")),
        "the pause is in the audit log"
    );
    // The API shows it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(t.serve());
    let shown: Value = rt.block_on(async {
        client()
            .get(format!("{base}/api/v1/retention/runs/{}", run.id))
            .bearer_auth(&t.officer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(shown["status"], "waiting");
    assert_eq!(shown["waiting_reason"].as_str(), Some(why.as_str()));

    // While the source is still down, a retry waits again (same run, nothing lost).
    std::thread::sleep(Duration::from_millis(400));
    let again = lethe::jobs::run_due(&t.app, 5);
    assert!(
        matches!(again.as_slice(), [(_, JobOutcome::RetryAt(..))]),
        "{again:?}"
    );
    assert_eq!(runs()[0].status, "waiting");
    assert_eq!(runs()[0].batches, done_batches);

    // The source is back: the queued job resumes the same run from its checkpoint.
    set_available(&crm_db, true);
    let job = t
        .app
        .store
        .read(|c| lethe::store::jobs::live(c, "retention.run", "sessions"))
        .unwrap()
        .unwrap();
    let wait = (job.run_after - lethe::store::now())
        .to_std()
        .unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(50));
    let resumed = lethe::jobs::run_due(&t.app, 5);
    assert!(
        matches!(resumed.as_slice(), [(_, JobOutcome::Done)]),
        "{resumed:?}"
    );
    let all = runs();
    assert_eq!(all.len(), 1, "the same run resumed; no new run");
    let run = &all[0];
    assert_eq!(run.status, "completed");
    assert!(run.batches > done_batches);
    let cutoff = run.cutoff.format("%Y-%m-%d %H:%M:%S").to_string();
    let expected: BTreeSet<Key> = due_ids(&before, "web_sessions", "started_at", &cutoff, |_| true);
    assert!(expected.len() > 15, "{}", expected.len());
    let after = dump(&t.crm);
    let gone: BTreeSet<Key> = before["web_sessions"]
        .keys()
        .filter(|k| !after["web_sessions"].contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(gone, expected, "each due row deleted once");
    assert_eq!(run.rows_deleted as usize, expected.len(), "counted once");
    for (table, rows) in &before {
        if table != "web_sessions" {
            assert_eq!(rows, &after[table], "{table} changed");
        }
    }
    let certs = t
        .app
        .store
        .read(|c| lethe::cert::issue::list(c, 100))
        .unwrap()
        .into_iter()
        .filter(|c| c.run_id.as_deref() == Some(run.id.as_str()))
        .count();
    assert_eq!(certs, 1, "one certificate at the end");
    assert!(
        audit_actions(&t)
            .iter()
            .any(|(a, d)| a == "retention.run.resumed" && d.contains("waiting"))
    );
}

#[test]
fn erasure_waits_while_the_postgres_crm_is_gone_and_completes_once() {
    let db = crate::require_pg!();
    let crm_db = db.name.clone();
    let t = TestApp::builder()
        .crm(Crm::postgres(db, 100))
        .fault("erase.before_source_commit", 1500)
        .configure(quick_retries)
        .build();
    let before = dump(&t.crm);
    let (id, plan) = planned_erasure(&t, "jane.doe@example.com");
    let app = t.app.clone();
    let id2 = id.clone();
    let exec = std::thread::spawn(move || {
        lethe::erase::run::execute(&app, &lethe::app::Actor::cli(), &id2)
    });
    // The CRM goes away while the erasure's source transaction is open.
    wait_idle_in_transaction(&crm_db);
    set_available(&crm_db, false);
    let row = exec.join().unwrap().unwrap();
    assert_eq!(row.state, "executing", "waits in a retryable state");
    let reason = row.state_reason.clone().unwrap();
    assert!(reason.starts_with("waiting for a retry at "), "{reason}");
    assert!(reason.contains("source unavailable: crm"), "{reason}");
    assert!(!reason.contains('@'), "{reason}");
    set_available(&crm_db, true);
    assert_eq!(before, dump(&t.crm), "the open transaction was rolled back");
    assert!(
        t.app
            .store
            .read(|c| lethe::store::erasure::steps(c, &id))
            .unwrap()
            .is_empty()
    );
    assert!(
        t.app
            .store
            .read(|c| lethe::cert::issue::for_request(c, &id))
            .unwrap()
            .is_empty()
    );
    assert!(
        audit_actions(&t)
            .iter()
            .any(|(a, _)| a == "request.execution.waiting")
    );
    let job = t
        .app
        .store
        .read(|c| lethe::store::jobs::live(c, "request.execute", &id))
        .unwrap()
        .unwrap();
    assert_eq!(job.state, "queued");
    // The retry after the back-off completes it, once.
    let wait = (job.run_after - lethe::store::now())
        .to_std()
        .unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(50));
    let done = lethe::jobs::run_due(&t.app, 5);
    assert!(
        matches!(done.as_slice(), [(_, JobOutcome::Done)]),
        "{done:?}"
    );
    let row = lethe::request::service::get(&t.app, &id).unwrap();
    assert!(row.state.ends_with("completed"), "{}", row.state);
    assert_eq!(row.state_reason, None, "the waiting reason is cleared");
    check_one_certificate(&t.app.store, &id, &plan);
    assert_only_planned_changes(&before, &dump(&t.crm), &plan);
}

fn check_one_certificate(store: &lethe::store::Store, id: &str, plan: &ErasurePlan) {
    let certs = store
        .read(|c| lethe::cert::issue::for_request(c, id))
        .unwrap();
    assert_eq!(certs.len(), 1, "exactly one certificate");
    let t = totals(&certs[0]);
    let (d, a, r) = expected_totals(plan);
    assert_eq!(
        (
            t["deleted"].as_u64().unwrap(),
            t["anonymized"].as_u64().unwrap(),
            t["redacted"].as_u64().unwrap()
        ),
        (d, a, r)
    );
}

/// `lethe` processes on one data directory and CRM, with the store on SQLite or PostgreSQL.
struct Cli {
    dir: tempfile::TempDir,
    crm: Crm,
    key: String,
    store_url: String,
}

impl Cli {
    fn new(store_url: Option<String>) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let store_url = store_url.unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                dir.path().join("data/lethe.sqlite3").display()
            )
        });
        let c = Cli {
            dir,
            crm: Crm::sqlite(100),
            key: lethe::crypto::MasterKey::generate().to_base64(),
            store_url,
        };
        c.ok(&["migrate"]);
        c
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("LETHE_LOG", "info")
            .env("LETHE_DATA_DIR", self.dir.path().join("data"))
            .env("LETHE_POLICY_DIR", repo().join("policies"))
            .env("LETHE_SOURCE_CRM_URL", self.crm.url_string())
            .env("LETHE_STORE_URL", &self.store_url)
            .env("LETHE_MASTER_KEY", &self.key)
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
        lethe::store::Store::open(&DbUrl::parse(&self.store_url).unwrap()).unwrap()
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

    fn plan(&self, id: &str) -> ErasurePlan {
        let key = lethe::crypto::MasterKey::parse(&self.key).unwrap();
        let row = self
            .store()
            .read(|c| lethe::store::erasure::get_plan(c, id))
            .unwrap();
        serde_json::from_slice(&key.open("plan", id, &row.plan_enc).unwrap()).unwrap()
    }

    fn state(&self, id: &str) -> String {
        self.store()
            .read(|c| lethe::store::requests::get(c, id))
            .unwrap()
            .state
    }

    fn certificates(&self, id: &str) -> usize {
        self.store()
            .read(|c| lethe::cert::issue::for_request(c, id))
            .unwrap()
            .len()
    }
}

/// Reads a child's stderr on a thread; returns a receiver of its lines.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn wait_for_line(rx: &Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            let hit = l.contains(needle);
            seen.push(l);
            if hit {
                return;
            }
        }
    }
    panic!("\"{needle}\" did not appear:\n{}", seen.join("\n"));
}

fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `lethe request execute` with the process held at `erase.before_certificate` for
/// `hold_ms`, and returns once it is there (its stderr lines so far in `seen`).
fn execute_held_before_certificate(
    cli: &Cli,
    id: &str,
    hold_ms: u64,
) -> (Child, Receiver<String>, Vec<String>) {
    let mut child = cli
        .cmd(&["request", "execute", id])
        .env(
            "LETHE_FAULTS",
            format!("erase.before_certificate=sleep:{hold_ms}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_for_line(
        &rx,
        "fault point erase.before_certificate reached",
        &mut seen,
    );
    (child, rx, seen)
}

/// The CLI run that hit the store fault: exit 1 with the operator-readable cause, the
/// request left in `verifying` without a certificate; then `request resume` completes it
/// with exactly one certificate and exactly the planned changes.
fn check_store_failure_then_recovery(
    cli: &Cli,
    id: &str,
    before: &crate::erasure::Dump,
    status: std::process::ExitStatus,
    stderr: &str,
    cause: &str,
) {
    assert_eq!(status.code(), Some(1), "{stderr}");
    let error_line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    assert!(error_line.contains(cause), "{error_line}");
    eprintln!("the operator sees: {error_line}");
    assert_eq!(cli.state(id), "verifying");
    assert_eq!(cli.certificates(id), 0, "no partial certificate");
    cli.ok(&["request", "resume", id]);
    assert!(cli.state(id).ends_with("completed"), "{}", cli.state(id));
    check_one_certificate(&cli.store(), id, &cli.plan(id));
    assert_only_planned_changes(before, &dump(&cli.crm), &cli.plan(id));
    let out = cli.ok(&["audit", "verify"]);
    assert!(out.starts_with("audit log valid"), "{out}");
}

#[test]
fn read_only_postgres_store_during_the_certificate_is_a_clear_error_and_recovers() {
    let Some(store_db) = PgDb::create() else {
        return;
    };
    let cli = Cli::new(Some(store_db.url.clone()));
    let before = dump(&cli.crm);
    let id = cli.approved_erasure("jane.doe@example.com");
    let (mut child, rx, mut seen) = execute_held_before_certificate(&cli, &id, 3000);
    // The store turns read-only for every new session; the open ones are ended.
    admin_exec(&format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on",
        store_db.name
    ));
    terminate_backends(&store_db.name);
    let status = wait_exit(&mut child, 60);
    seen.extend(rx.try_iter());
    let stderr = seen.join("\n");
    admin_exec(&format!(
        "ALTER DATABASE {} RESET default_transaction_read_only",
        store_db.name
    ));
    check_store_failure_then_recovery(
        &cli,
        &id,
        &before,
        status,
        &stderr,
        "engine store is read-only (cannot execute",
    );
}

#[test]
fn read_only_sqlite_store_during_the_certificate_is_a_clear_error_and_recovers() {
    let cli = Cli::new(None);
    let before = dump(&cli.crm);
    let id = cli.approved_erasure("jane.doe@example.com");
    let out = cli
        .cmd(&["request", "execute", &id])
        .env(
            "LETHE_FAULTS",
            "erase.before_certificate.store_read_only=sleep:0",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    check_store_failure_then_recovery(
        &cli,
        &id,
        &before,
        out.status,
        &stderr,
        "engine store is read-only (attempt to write a readonly database)",
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallDisk(dir))
    }

    /// Writes a file until the file system is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.path().join("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        // What is left is smaller than a chunk: take it byte-sized.
        while f.write_all(&chunk[..512]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.0.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn full_disk_under_the_sqlite_store_during_the_certificate_is_a_clear_error_and_recovers() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    let cli = Cli::new(Some(format!(
        "sqlite://{}",
        disk.0.path().join("lethe.sqlite3").display()
    )));
    let before = dump(&cli.crm);
    let id = cli.approved_erasure("jane.doe@example.com");
    let (mut child, rx, mut seen) = execute_held_before_certificate(&cli, &id, 2000);
    disk.fill();
    let status = wait_exit(&mut child, 60);
    seen.extend(rx.try_iter());
    let stderr = seen.join("\n");
    disk.free();
    check_store_failure_then_recovery(
        &cli,
        &id,
        &before,
        status,
        &stderr,
        "engine store disk is full (database or disk is full)",
    );
}

#[test]
fn an_unwritable_store_is_a_503_naming_the_cause() {
    let check = |t: &TestApp, fault: &dyn Fn(bool), cause: &str| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let base = rt.block_on(t.serve());
        let create = |token: &str| {
            let url = format!("{base}/api/v1/requests");
            let token = token.to_string();
            rt.block_on(async move {
                let r = client()
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"kind": "access", "regime": "gdpr", "identities": {"email": "a@example.com"}}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        };
        fault(true);
        let (status, body) = create(&t.officer);
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "store_unavailable");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(cause), "{msg}");
        assert!(!msg.contains("a@example.com"), "{msg}");
        fault(false);
        let (status, body) = create(&t.officer);
        assert_eq!(status, 201, "{body}");
    };
    // SQLite, through the fault hook.
    let t = TestApp::builder().build();
    let store = t.app.store.clone();
    check(
        &t,
        &|on| {
            store
                .inject_fault(on.then_some(StoreFault::ReadOnly))
                .unwrap()
        },
        "engine store is read-only",
    );
    // PostgreSQL, for real: the database turns read-only and its sessions are ended.
    let Some(store_db) = PgDb::create() else {
        return;
    };
    let name = store_db.name.clone();
    let t = TestApp::builder().store_on_postgres(store_db).build();
    check(
        &t,
        &|on| {
            let v = if on { "on" } else { "off" };
            admin_exec(&format!(
                "ALTER DATABASE {name} SET default_transaction_read_only = {v}"
            ));
            terminate_backends(&name);
        },
        "engine store is read-only (cannot execute INSERT in a read-only transaction)",
    );
}

#[test]
fn sigterm_drains_the_job_in_flight_and_exits_cleanly() {
    let cli = Cli::new(None);
    let id = cli.approved_erasure("jane.doe@example.com");
    // A request left executing by a process that died: `lethe serve`'s worker takes it.
    let mut dead = cli
        .cmd(&["request", "execute", &id])
        .env("LETHE_FAULTS", "erase.before_source_commit=sleep:60000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut dead);
    let mut seen = Vec::new();
    wait_for_line(
        &rx,
        "fault point erase.before_source_commit reached",
        &mut seen,
    );
    dead.kill().unwrap();
    dead.wait().unwrap();
    assert_eq!(cli.state(&id), "executing");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = cli
        .cmd(&["serve"])
        .env("LETHE_LISTEN", format!("127.0.0.1:{port}"))
        .env("LETHE_JOB_POLL_MS", "200")
        .env("LETHE_FAULTS", "erase.before_certificate=sleep:2500")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut server);
    let mut seen = Vec::new();
    wait_for_line(
        &rx,
        "fault point erase.before_certificate reached",
        &mut seen,
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let term_at = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // New connections are refused at once, while the job is still running.
    wait_until("the listener to close", 5, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(
        server.try_wait().unwrap().is_none(),
        "still draining when the listener closed"
    );
    let status = wait_exit(&mut server, 30);
    let took = term_at.elapsed();
    seen.extend(rx.try_iter());
    let log = seen.join("\n");
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        log.contains("draining: waiting for the jobs in progress"),
        "{log}"
    );
    assert!(log.contains("drained"), "{log}");
    eprintln!("SIGTERM to exit: {took:?}");
    // The job in flight finished: completed, with its certificate.
    assert!(cli.state(&id).ends_with("completed"), "{}", cli.state(&id));
    assert_eq!(cli.certificates(&id), 1);
    let job = cli
        .store()
        .read(|c| lethe::store::jobs::list(c, None, 10))
        .unwrap()
        .into_iter()
        .find(|j| j.target == id)
        .unwrap();
    assert_eq!(
        job.state, "done",
        "its outcome was recorded before the exit"
    );
}
