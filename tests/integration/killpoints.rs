//! Kill at random points: real `lethe` processes (`request execute`/`resume` for erasures,
//! `retention run` for retention rules) on a SQLite engine store and SQLite CRMs are
//! SIGKILLed after a random delay, again and again, and restarted until the work completes.
//! Fault sleeps spread each job over time (inside the source transaction, between the CRM
//! commit and the store record, before verification, before and inside the certificate's
//! transaction, between retention batches), so the kills land all over it.
//!
//! After every kill: no certificate exists for a request or run that is not completed; the
//! CRM holds either none or all of an erasure's changes (one source transaction); a
//! retention run's recorded counts equal the rows changed so far, or fall short by exactly
//! the batch whose intent is pending. After every job: the CRM equals the end state computed
//! independently (erasure: the plan applied to the dump taken before; retention: the same
//! runs, never interrupted, on an identical CRM), counts equal the plan, and there is exactly
//! one certificate per job.
//!
//! The random delays come from a seeded RNG: the seed is printed, and `LETHE_KILL_SEED=N`
//! repeats a run.

use crate::crash::{expected_totals, totals};
use crate::erasure::{Dump, dump};
use crate::support::{Crm, repo};
use lethe::erase::plan::{ErasurePlan, StepKind, storage_form};
use lethe::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills that must land (on a running process) in each half.
const KILLS_PER_PHASE: usize = 25;
/// After this many kills of one job, it is left to finish (the test must end).
const MAX_KILLS_PER_JOB: usize = 6;

const ERASURE_FAULTS: &str = "erase.before_source_commit=sleep:150,erase.after_source_commit=sleep:150,\
     erase.before_verify=sleep:60,erase.before_certificate=sleep:80,erase.certificate_issued=sleep:150";
/// The points where a job's first process is killed, in turn.
const ERASURE_TARGETS: [&str; 4] = [
    "erase.before_source_commit",
    "erase.after_source_commit",
    "erase.before_certificate",
    "erase.certificate_issued",
];
const RETENTION_TARGETS: [&str; 3] = [
    "retention.before_batch_commit",
    "retention.after_batch_commit",
    "retention.certificate_issued",
];

const RETENTION_FAULTS: &str = "retention.before_batch_commit=sleep:15,retention.after_batch_commit=sleep:15,\
     retention.certificate_issued=sleep:100";

/// One engine (data directory with its SQLite store) on one CRM.
struct Engine {
    dir: tempfile::TempDir,
    policies: PathBuf,
    crm: Crm,
    key: String,
    log: PathBuf,
}

impl Engine {
    fn new(policies: &Path, crm: Crm, key: &str) -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("lethe.log");
        let e = Engine {
            dir,
            policies: policies.to_path_buf(),
            crm,
            key: key.to_string(),
            log,
        };
        let out = e.cmd(&["migrate"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        e
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        c.args(args)
            .current_dir(self.dir.path())
            .env("LETHE_LOG", "warn")
            .env("LETHE_DATA_DIR", self.dir.path().join("data"))
            .env("LETHE_POLICY_DIR", &self.policies)
            .env("LETHE_SOURCE_CRM_URL", self.crm.url_string())
            .env("LETHE_MASTER_KEY", &self.key)
            .env_remove("LETHE_FAULTS")
            .env_remove("LETHE_STORE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        c
    }

    /// Runs a command to its end; it must succeed.
    fn ok(&self, args: &[&str]) {
        let status = self.cmd(args).status().unwrap();
        assert!(status.success(), "{args:?}: {status}\n{}", self.log_tail());
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn store(&self) -> Store {
        Store::open(&lethe::source::DbUrl::Sqlite(
            self.dir.path().join("data/lethe.sqlite3"),
        ))
        .unwrap()
    }

    /// The engine in this process (to prepare requests and read their plans).
    fn app(&self) -> lethe::app::App {
        let mut config =
            lethe::config::Config::for_data_dir(&self.dir.path().join("data"), &self.policies);
        config
            .source_urls
            .insert("crm".into(), self.crm.url_string());
        config.master_key = Some(self.key.clone());
        lethe::app::App::open(config).unwrap()
    }
}

/// When to kill a process.
#[derive(Clone, Copy)]
enum Kill {
    /// Let it finish.
    Never,
    /// After a random delay up to this many milliseconds.
    Random(u64),
    /// As soon as it reaches this fault point.
    At(&'static str),
}

/// Where the kills landed: the last fault point each killed process had reached
/// (`start` when none).
type Landed = std::collections::BTreeMap<String, usize>;

/// The last fault point a process announced on its stderr.
fn last_fault_point(log: &str) -> Option<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix("lethe: fault point "))
        .filter_map(|l| l.split(' ').next())
        .next_back()
        .map(str::to_string)
}

/// Starts `cmd` and SIGKILLs it as `kill` says, unless it ended first. Returns whether the
/// kill landed on a running process (and records where); a process that ended by itself
/// must have succeeded.
fn run_and_kill(
    e: &Engine,
    mut cmd: Command,
    rng: &mut StdRng,
    kill: Kill,
    landed: &mut Landed,
) -> bool {
    let attempt = e.dir.path().join("attempt.log");
    cmd.stderr(Stdio::from(std::fs::File::create(&attempt).unwrap()));
    let mut child: Child = cmd.spawn().unwrap();
    let read = || std::fs::read_to_string(&attempt).unwrap_or_default();
    let deadline = match kill {
        Kill::Random(max) => Some(Instant::now() + Duration::from_millis(rng.gen_range(20..max))),
        _ => None,
    };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        let due = match kill {
            Kill::Never => false,
            Kill::Random(_) => deadline.is_some_and(|d| Instant::now() >= d),
            Kill::At(point) => read().contains(&format!("fault point {point} reached")),
        };
        if due {
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let killed = match status {
        Some(status) => {
            assert!(status.success(), "{status}\n{}\n{}", e.log_tail(), read());
            false
        }
        None => {
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            assert!(!status.success());
            let at = last_fault_point(&read()).unwrap_or_else(|| "start".into());
            *landed.entry(at).or_default() += 1;
            true
        }
    };
    // Keep every attempt's log for a failure's report.
    let mut all = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&e.log)
        .unwrap();
    std::io::Write::write_all(&mut all, read().as_bytes()).unwrap();
    killed
}

/// Every value in the form databases store it, so dumps compare across representations.
fn normalized(d: &Dump) -> Dump {
    d.iter()
        .map(|(t, rows)| {
            (
                t.clone(),
                rows.iter()
                    .map(|(k, cols)| {
                        (
                            k.clone(),
                            cols.iter()
                                .map(|(c, v)| (c.clone(), storage_form(v)))
                                .collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The end state of an erasure, computed from the plan alone: planned deletions gone,
/// planned columns holding the planned values, everything else as before.
fn apply_plan(before: &Dump, plan: &ErasurePlan) -> Dump {
    let mut out = before.clone();
    for sp in &plan.sources {
        for st in &sp.steps {
            let table = out.get_mut(&st.table).unwrap();
            for r in &st.rows {
                if st.kind == StepKind::Delete {
                    assert!(table.remove(&r.key).is_some(), "{} {}", st.table, r.key);
                } else {
                    let row = table.get_mut(&r.key).unwrap();
                    let after = r.after.as_ref().unwrap();
                    for (c, v) in st.changes.iter().zip(after) {
                        row.insert(c.column.clone(), v.clone());
                    }
                }
            }
        }
    }
    out
}

fn certificate_rows(st: &Store) -> Vec<(String, Option<String>, Option<String>)> {
    use diesel::prelude::*;
    use lethe::store::schema::certificates::dsl as c;
    st.read(|conn| {
        Ok(c::certificates
            .select((c::id, c::request_id, c::run_id))
            .load::<(String, Option<String>, Option<String>)>(conn)?)
    })
    .unwrap()
}

/// No certificate for a request or run that has not completed.
fn assert_no_premature_certificate(st: &Store) {
    for (cert, request, run) in certificate_rows(st) {
        if let Some(r) = request {
            let state = st
                .read(|c| lethe::store::requests::get(c, &r))
                .unwrap()
                .state;
            assert!(
                state == "completed" || state == "partially_completed",
                "certificate {cert} exists while request {r} is {state}"
            );
        }
        if let Some(r) = run {
            let status = st
                .read(|c| lethe::store::retention::get_run(c, &r))
                .unwrap()
                .status;
            assert_eq!(
                status, "completed",
                "certificate {cert} exists while run {r} is {status}"
            );
        }
    }
}

fn seed() -> u64 {
    let seed = std::env::var("LETHE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("killpoints seed: {seed} (LETHE_KILL_SEED={seed} repeats this run)");
    seed
}

/// Erasures: requests executed by processes killed at random points until each completes.
fn erasure_phase(rng: &mut StdRng, key: &str, landed: &mut Landed) -> usize {
    let e = Engine::new(&repo().join("policies"), Crm::sqlite(60), key);
    let app = e.app();
    let st = e.store();
    let contacts = dump(&e.crm)["contacts"].clone();
    let emails: Vec<String> = contacts
        .values()
        .filter_map(|r| r["email"].as_text().map(str::to_string))
        .collect();
    let mut kills = 0;
    let mut jobs = 0;
    for email in emails.iter().take(20) {
        if kills >= KILLS_PER_PHASE {
            break;
        }
        let actor = lethe::app::Actor::cli();
        let r = lethe::request::service::create(
            &app,
            &actor,
            crate::erasure::new_request(lethe::request::RequestKind::Erasure, email),
        )
        .unwrap();
        let id = r.id.clone();
        lethe::request::service::verify(&app, &actor, &id, "document_check", None).unwrap();
        lethe::erase::run::plan(&app, &actor, &id).unwrap();
        lethe::erase::run::approve(&app, &actor, &id, Some("reviewed")).unwrap();
        let (_, plan) = lethe::erase::run::load_plan(&app, &id).unwrap();
        let before = normalized(&dump(&e.crm));
        let expected = normalized(&apply_plan(&before, &plan));
        assert_ne!(before, expected, "the plan changes something");
        let state = || {
            st.read(|c| lethe::store::requests::get(c, &id))
                .unwrap()
                .state
        };
        let mut job_kills = 0;
        let mut attempts = 0;
        loop {
            let s = state();
            if s == "completed" || s == "partially_completed" {
                break;
            }
            assert!(
                s == "approved" || s == "executing" || s == "verifying",
                "request {id} is {s}\n{}",
                e.log_tail()
            );
            let mut cmd = if s == "approved" {
                e.cmd(&["request", "execute", &id])
            } else {
                e.cmd(&["request", "resume", &id])
            };
            cmd.env("LETHE_FAULTS", ERASURE_FAULTS);
            // Each request's first run is killed at a chosen point (in turn: inside the
            // source transaction, between the CRM commit and the store record, before and
            // inside the certificate's transaction); later runs after a random delay.
            let kill = match (attempts, job_kills) {
                (0, _) => Kill::At(ERASURE_TARGETS[jobs % ERASURE_TARGETS.len()]),
                (_, k) if k < MAX_KILLS_PER_JOB => Kill::Random(1000),
                _ => Kill::Never,
            };
            attempts += 1;
            if run_and_kill(&e, cmd, rng, kill, landed) {
                job_kills += 1;
                kills += 1;
            }
            // After every stop: no certificate before completion, and the CRM holds none or
            // all of the erasure (one source transaction).
            assert_no_premature_certificate(&st);
            let now = normalized(&dump(&e.crm));
            assert!(
                now == before || now == expected,
                "request {id}: the CRM holds part of the erasure, or something else"
            );
        }
        jobs += 1;
        // Exactly the plan, once: the end state computed from the plan, one step for the
        // source, one certificate whose totals are the plan's.
        assert_eq!(normalized(&dump(&e.crm)), expected, "request {id}");
        let steps = st.read(|c| lethe::store::erasure::steps(c, &id)).unwrap();
        assert_eq!(steps.len(), 1, "one recorded source step");
        let certs = st
            .read(|c| lethe::cert::issue::for_request(c, &id))
            .unwrap();
        assert_eq!(certs.len(), 1, "exactly one certificate for {id}");
        let t = totals(&certs[0]);
        let (d, a, r) = expected_totals(&plan);
        assert_eq!(
            (
                t["deleted"].as_u64().unwrap(),
                t["anonymized"].as_u64().unwrap(),
                t["redacted"].as_u64().unwrap()
            ),
            (d, a, r),
            "certificate totals equal the plan for {id}"
        );
    }
    eprintln!("killpoints: erasure: {kills} kills landed over {jobs} requests");
    let out = e.cmd(&["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "audit verify: {out:?}");
    kills
}

/// The rows of a run's tables changed so far (gone or different) against the job's start.
fn changed_rows(start: &Dump, now: &Dump) -> i64 {
    let mut n = 0;
    for (t, rows) in start {
        for (k, cols) in rows {
            match now[t].get(k) {
                None => n += 1,
                Some(c) if c != cols => n += 1,
                Some(_) => {}
            }
        }
    }
    n
}

fn intent_total(pending: &str) -> i64 {
    let v: Json = serde_json::from_str(pending).unwrap();
    v["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["deleted"].as_i64().unwrap() + c["anonymized"].as_i64().unwrap())
        .sum()
}

fn run_of(st: &Store, rule: &str, at: chrono::NaiveDateTime) -> Vec<lethe::store::models::RunRow> {
    st.read(|c| lethe::store::retention::runs(c, Some(rule), 1000))
        .unwrap()
        .into_iter()
        .filter(|r| r.at_time == at)
        .collect()
}

/// Retention: each (rule, as-of time) job run by processes killed at random points until it
/// completes; the same jobs run without interruption on an identical CRM give the oracle.
fn retention_phase(rng: &mut StdRng, key: &str, landed: &mut Landed) -> usize {
    let policies = tempfile::tempdir().unwrap().keep();
    std::fs::copy(
        repo().join("policies/datamap.toml"),
        policies.join("datamap.toml"),
    )
    .unwrap();
    std::fs::write(policies.join("retention.toml"), crate::retention::RULES).unwrap();
    let main = Engine::new(&policies, Crm::sqlite(150), key);
    let reference = Engine::new(&policies, Crm::sqlite(150), key);
    assert_eq!(dump(&main.crm), dump(&reference.crm), "identical CRMs");
    let st = main.store();
    let ref_st = reference.store();
    let mut jobs: Vec<(&str, &str)> = Vec::new();
    for at in [
        "2026-06-01",
        "2026-09-01",
        "2026-12-01",
        "2027-03-01",
        "2027-06-01",
        "2027-09-01",
        "2027-12-01",
        "2028-03-01",
    ] {
        for rule in ["sessions", "contacts", "tickets", "invoices"] {
            jobs.push((rule, at));
        }
    }
    let mut kills = 0;
    let mut done = 0;
    for (rule, at) in jobs {
        if kills >= KILLS_PER_PHASE && done >= 4 {
            break;
        }
        let at_time = chrono::NaiveDate::parse_from_str(at, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let args = [
            "retention",
            "run",
            "--rule",
            rule,
            "--at",
            at,
            "--batch-size",
            "2",
        ];
        let start = dump(&main.crm);
        let mut job_kills = 0;
        let mut attempts = 0;
        loop {
            let runs = run_of(&st, rule, at_time);
            assert!(runs.len() <= 1, "one run per job: {runs:?}");
            if runs.first().is_some_and(|r| r.status == "completed") {
                break;
            }
            let mut cmd = main.cmd(&args);
            cmd.env("LETHE_FAULTS", RETENTION_FAULTS);
            // Each run's first process is killed at a chosen point (in turn: a batch's
            // transaction open with its intent stored, a batch committed in the CRM but not
            // yet counted, the certificate written but not committed); later ones after a
            // random delay.
            let kill = match (attempts, job_kills) {
                (0, _) => Kill::At(RETENTION_TARGETS[done % RETENTION_TARGETS.len()]),
                (_, k) if k < MAX_KILLS_PER_JOB => Kill::Random(350),
                _ => Kill::Never,
            };
            attempts += 1;
            if run_and_kill(&main, cmd, rng, kill, landed) {
                job_kills += 1;
                kills += 1;
            }
            assert_no_premature_certificate(&st);
            // The counts recorded so far equal the rows changed, or fall short by exactly
            // the batch whose intent is pending (committed in the CRM, not yet counted).
            if let Some(run) = run_of(&st, rule, at_time).first() {
                let changed = changed_rows(&start, &dump(&main.crm));
                let recorded = run.rows_deleted + run.rows_anonymized;
                let pending = run.pending.as_deref().map_or(0, intent_total);
                assert!(
                    changed == recorded || (pending > 0 && changed == recorded + pending),
                    "{rule} at {at}: {changed} rows changed, {recorded} recorded, {pending} pending"
                );
            } else {
                assert_eq!(changed_rows(&start, &dump(&main.crm)), 0);
            }
        }
        // The oracle: the same job, never interrupted, on the identical CRM.
        reference.ok(&args);
        assert_eq!(
            normalized(&dump(&main.crm)),
            normalized(&dump(&reference.crm)),
            "{rule} at {at}: the CRM equals the uninterrupted run's"
        );
        let run = &run_of(&st, rule, at_time)[0];
        let ref_run = &run_of(&ref_st, rule, at_time)[0];
        assert_eq!(
            (
                run.rows_deleted,
                run.rows_anonymized,
                run.rows_held,
                &run.per_table
            ),
            (
                ref_run.rows_deleted,
                ref_run.rows_anonymized,
                ref_run.rows_held,
                &ref_run.per_table
            ),
            "{rule} at {at}: counts equal the uninterrupted run's"
        );
        assert_eq!(
            changed_rows(&start, &dump(&main.crm)),
            run.rows_deleted + run.rows_anonymized,
            "{rule} at {at}: each changed row counted once"
        );
        // Deleted exactly the due rows, by the dump taken before the job alone.
        let cutoff = run.cutoff.format("%Y-%m-%d %H:%M:%S").to_string();
        let due = |table: &str,
                   anchor: &str,
                   extra: &dyn Fn(
            &std::collections::BTreeMap<String, lethe::source::Value>,
        ) -> bool| {
            crate::retention::due_ids(&start, table, anchor, &cutoff, extra)
        };
        let gone = |table: &str| -> std::collections::BTreeSet<lethe::source::Key> {
            let now = dump(&main.crm);
            start[table]
                .keys()
                .filter(|k| !now[table].contains_key(*k))
                .cloned()
                .collect()
        };
        match rule {
            "sessions" => assert_eq!(
                gone("web_sessions"),
                due("web_sessions", "started_at", &|_| true)
            ),
            "tickets" => assert_eq!(
                gone("tickets"),
                due("tickets", "created_at", &|r| r["status"].as_text()
                    == Some("closed"))
            ),
            _ => {}
        }
        let certs: Vec<_> = certificate_rows(&st)
            .into_iter()
            .filter(|(_, _, r)| r.as_deref() == Some(run.id.as_str()))
            .collect();
        assert_eq!(certs.len(), 1, "{rule} at {at}: exactly one certificate");
        assert_eq!(run.certificate_id.as_deref(), Some(certs[0].0.as_str()));
        done += 1;
    }
    eprintln!("killpoints: retention: {kills} kills landed over {done} runs");
    let out = main.cmd(&["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "audit verify: {out:?}");
    kills
}

#[test]
fn sigkill_at_random_points_loses_nothing_and_doubles_nothing() {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed());
    let key = lethe::crypto::MasterKey::generate().to_base64();
    let mut landed = Landed::new();
    let erasure = erasure_phase(&mut rng, &key, &mut landed);
    let retention = retention_phase(&mut rng, &key, &mut landed);
    eprintln!(
        "killpoints: {erasure} + {retention} = {} kills in {:.1}s; last fault point reached when killed: {landed:?}",
        erasure + retention,
        started.elapsed().as_secs_f64()
    );
    assert!(erasure >= KILLS_PER_PHASE, "{erasure} erasure kills");
    assert!(retention >= KILLS_PER_PHASE, "{retention} retention kills");
    for point in ERASURE_TARGETS.iter().chain(&RETENTION_TARGETS) {
        assert!(
            landed.get(*point).is_some_and(|n| *n > 0),
            "no kill at {point}: {landed:?}"
        );
    }
}
