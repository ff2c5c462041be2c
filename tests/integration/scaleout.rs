//! Scale-out: two `lethe serve` processes share one PostgreSQL engine store. One of them is
//! SIGKILLed in the middle of an erasure and in the middle of a retention run; the other
//! claims each job once its lease has expired and finishes it exactly once (counts exact,
//! one certificate each).

use crate::crash::{expected_totals, totals};
use crate::erasure::{assert_only_planned_changes, dump};
use crate::retention::{RULES, due_ids};
use crate::support::{Crm, PgDb, client, repo};
use lethe::erase::plan::ErasurePlan;
use lethe::source::Key;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LEASE_SECS: u64 = 3;

struct Cluster {
    dir: tempfile::TempDir,
    policies: std::path::PathBuf,
    crm: Crm,
    store: PgDb,
    key: String,
}

impl Cluster {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("LETHE_LOG", "info")
            .env("LETHE_DATA_DIR", self.dir.path())
            .env("LETHE_POLICY_DIR", &self.policies)
            .env("LETHE_SOURCE_CRM_URL", self.crm.url_string())
            .env("LETHE_STORE_URL", &self.store.url)
            .env("LETHE_MASTER_KEY", &self.key)
            .env("LETHE_JOB_LEASE_SECS", LEASE_SECS.to_string())
            .env("LETHE_JOB_POLL_MS", "200")
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

    /// Starts `lethe serve` as replica `node` on a free port; with `faults`, it stops at
    /// those points. Each replica has its own node name, as on separate machines, so a
    /// dead replica's jobs are taken over only when their leases expire.
    fn serve(&self, node: &str, faults: Option<&str>) -> (Child, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = self.cmd(&["serve"]);
        c.env("LETHE_LISTEN", format!("127.0.0.1:{port}"))
            .env("LETHE_NODE_NAME", node)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(f) = faults {
            c.env("LETHE_FAULTS", f);
        }
        let child = c.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "lethe serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        (child, base)
    }

    fn store(&self) -> lethe::store::Store {
        lethe::store::Store::open(&self.store.db_url()).unwrap()
    }

    fn plan(&self, id: &str) -> ErasurePlan {
        let key = lethe::crypto::MasterKey::parse(&self.key).unwrap();
        let row = self
            .store()
            .read(|c| lethe::store::erasure::get_plan(c, id))
            .unwrap();
        serde_json::from_slice(&key.open("plan", id, &row.plan_enc).unwrap()).unwrap()
    }
}

/// Reads a child's stderr on a thread; returns a receiver of its lines.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200))
            && l.contains(needle)
        {
            return;
        }
    }
    panic!("\"{needle}\" did not appear");
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_replicas_on_postgres_finish_a_killed_replicas_erasure_and_retention_run_exactly_once() {
    let Some(store) = PgDb::create() else {
        return;
    };
    let policies = tempfile::tempdir().unwrap().keep();
    std::fs::copy(
        repo().join("policies/datamap.toml"),
        policies.join("datamap.toml"),
    )
    .unwrap();
    std::fs::write(policies.join("retention.toml"), RULES).unwrap();
    let c = Cluster {
        dir: tempfile::tempdir().unwrap(),
        policies,
        crm: Crm::sqlite(600),
        store,
        key: lethe::crypto::MasterKey::generate().to_base64(),
    };
    c.ok(&["migrate"]);
    let token = {
        let out = c.ok(&["token", "create", "--role", "officer", "--json"]);
        serde_json::from_str::<Value>(&out).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // An approved erasure, prepared from the command line.
    let out = c.ok(&[
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
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["request", "verify", &id, "--method", "document_check"]);
    c.ok(&["request", "plan", &id]);
    c.ok(&["request", "approve", &id]);

    // Replica A stops after a source commit and after a retention batch commit; B does not.
    let (mut a, a_url) = c.serve(
        "replica-a",
        Some("erase.after_source_commit=sleep:600000,retention.after_batch_commit=sleep:600000"),
    );
    let (mut b, _b_url) = c.serve("replica-b", None);
    let a_lines = lines_of(&mut a);
    let b_lines = lines_of(&mut b);
    let http = client();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // 1. The erasure: executed through A, which is killed after the CRM commit.
    let before = dump(&c.crm);
    let url = format!("{a_url}/api/v1/requests/{id}/execute");
    let tok = token.clone();
    let h = http.clone();
    rt.spawn(async move {
        let _ = h.post(url).bearer_auth(tok).json(&json!({})).send().await;
    });
    wait_for_line(&a_lines, "fault point erase.after_source_commit reached");
    let killed_at = Instant::now();
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    let store = c.store();
    let state = |st: &lethe::store::Store| {
        st.read(|x| lethe::store::requests::get(x, &id))
            .unwrap()
            .state
    };
    assert_eq!(state(&store), "executing", "killed mid-erasure");
    wait_until("replica B to complete the erasure", || {
        state(&store) == "partially_completed"
    });
    assert!(
        killed_at.elapsed() >= Duration::from_secs(LEASE_SECS) - Duration::from_millis(500),
        "B waited for A's lease to expire"
    );
    let certs = store
        .read(|x| lethe::cert::issue::for_request(x, &id))
        .unwrap();
    assert_eq!(certs.len(), 1, "exactly one certificate");
    let plan = c.plan(&id);
    let t = totals(&certs[0]);
    let (d, an, r) = expected_totals(&plan);
    assert_eq!(
        (
            t["deleted"].as_u64().unwrap(),
            t["anonymized"].as_u64().unwrap(),
            t["redacted"].as_u64().unwrap()
        ),
        (d, an, r),
        "counts exact"
    );
    assert_only_planned_changes(&before, &dump(&c.crm), &plan);
    let job = store
        .read(|x| lethe::store::jobs::list(x, None, 100))
        .unwrap()
        .into_iter()
        .find(|j| j.kind == "request.execute" && j.target == id)
        .unwrap();
    assert_eq!(job.state, "done");
    assert_eq!(job.attempts, 2, "claimed by A, then re-claimed by B");

    // 2. A retention run: started on a new replica A, killed after a batch commit.
    let (mut a, a_url) = c.serve(
        "replica-a2",
        Some("retention.after_batch_commit=sleep:600000"),
    );
    let a_lines = lines_of(&mut a);
    let before = dump(&c.crm);
    let resp = rt.block_on(async {
        http.post(format!("{a_url}/api/v1/retention/runs"))
            .bearer_auth(&token)
            .json(&json!({"rule": "sessions", "batch_size": 10}))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(resp.status().as_u16(), 202);
    wait_for_line(&a_lines, "fault point retention.after_batch_commit reached");
    a.kill().unwrap();
    a.wait().unwrap();
    let runs = |st: &lethe::store::Store| {
        st.read(|x| lethe::store::retention::runs(x, Some("sessions"), 10))
            .unwrap()
    };
    wait_until("replica B to finish the retention run", || {
        runs(&store)
            .first()
            .is_some_and(|r| r.status == "completed")
    });
    let all = runs(&store);
    assert_eq!(all.len(), 1, "one run, resumed rather than restarted");
    let run = &all[0];
    let cutoff = run.cutoff.format("%Y-%m-%d %H:%M:%S").to_string();
    let expected: BTreeSet<Key> = due_ids(&before, "web_sessions", "started_at", &cutoff, |_| true);
    assert!(expected.len() > 20, "{}", expected.len());
    assert_eq!(run.rows_deleted as usize, expected.len(), "count exact");
    let after = dump(&c.crm);
    let gone: BTreeSet<Key> = before["web_sessions"]
        .keys()
        .filter(|k| !after["web_sessions"].contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(gone, expected, "each due row deleted once");
    assert!(run.certificate_id.is_some());
    let certs = store
        .read(|x| lethe::store::retention::runs(x, Some("sessions"), 10))
        .unwrap()
        .iter()
        .filter_map(|r| r.certificate_id.clone())
        .count();
    assert_eq!(certs, 1, "one certificate");
    assert_eq!(
        run.owner,
        format!("replica-b:{}", b.id()),
        "B finished the run"
    );
    drop(b_lines);
    b.kill().unwrap();
    b.wait().unwrap();
}
