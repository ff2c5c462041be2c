//! The workers inside `lethe serve`: each polls the job table, claims one due job at a time
//! and runs it on the blocking pool. Several processes sharing a PostgreSQL store each run
//! their own workers; the claim statement keeps them from taking the same job.

use super::{JobOutcome, owner_id, run_claimed};
use crate::app::AppState;
use crate::store::jobs as js;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Handle to the running workers: wake them early, stop them claiming new jobs, and wait
/// for the jobs in progress (SIGTERM drains).
#[derive(Clone, Default)]
pub struct Workers {
    wake: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    /// Jobs claimed and not yet ended (their outcome recorded).
    busy: Arc<AtomicUsize>,
    /// Signalled whenever a job ends.
    ended: Arc<Notify>,
}

/// Counts a job in progress until dropped (also when its thread unwinds).
struct Busy(Workers);

impl Busy {
    fn new(w: &Workers) -> Busy {
        w.busy.fetch_add(1, Ordering::SeqCst);
        Busy(w.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

impl Workers {
    /// Wakes idle workers (new work was queued in this process).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Stops claiming new jobs; jobs in progress run to their end.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Jobs in progress in this process's workers.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Waits until the jobs in progress have ended, at most `bound`. Returns how many are
    /// still running (0: drained). Call after [`Self::stop`].
    pub async fn drain(&self, bound: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let ended = self.ended.notified();
            let busy = self.busy();
            if busy == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return self.busy();
            }
        }
    }
}

/// Starts `app.config.jobs.workers` worker tasks, after queueing the work a previous process
/// left without a job.
pub fn spawn(app: AppState) -> Workers {
    let workers = Workers::default();
    let n = app.config.jobs.workers;
    if n == 0 {
        tracing::info!("LETHE_WORKERS=0: this process runs no background jobs");
        return workers;
    }
    let recover = app.clone();
    tokio::spawn(async move {
        match tokio::task::spawn_blocking(move || super::recover(&recover)).await {
            Ok(Ok(k)) if k > 0 => tracing::info!(jobs = k, "queued work left unfinished"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot queue unfinished work"),
            _ => {}
        }
    });
    for i in 0..n {
        let app = app.clone();
        let w = workers.clone();
        tokio::spawn(async move { work(app, w, i).await });
    }
    tracing::info!(workers = n, lease_secs = app.config.jobs.lease.num_seconds(), owner = %owner_id(&app), "job workers started");
    workers
}

async fn work(app: AppState, w: Workers, index: usize) {
    let owner = owner_id(&app);
    // Spread the polls of a process's workers over the interval.
    let poll = app.config.jobs.poll;
    let offset = poll.mul_f64(index as f64 / (app.config.jobs.workers.max(1) as f64));
    tokio::time::sleep(offset).await;
    let mut last_recover = std::time::Instant::now();
    let recover_every = app
        .config
        .jobs
        .lease
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(60));
    while !w.stopping.load(Ordering::SeqCst) {
        // The first worker re-queues work left without a job (a command-line run that
        // died, a request a crashed process left executing) once per lease period.
        if index == 0 && last_recover.elapsed() >= recover_every {
            last_recover = std::time::Instant::now();
            let app2 = app.clone();
            if let Ok(Ok(k)) = tokio::task::spawn_blocking(move || super::recover(&app2)).await
                && k > 0
            {
                tracing::info!(jobs = k, "queued work left unfinished");
            }
            // Expired exports are deleted on the same beat.
            let app3 = app.clone();
            match tokio::task::spawn_blocking(move || crate::export::sweep::sweep(&app3)).await {
                Ok(Ok(r)) if r.exports_deleted + r.orphan_files_removed > 0 => {
                    tracing::info!(
                        exports = r.exports_deleted,
                        orphans = r.orphan_files_removed,
                        "expired exports deleted"
                    );
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot sweep expired exports"),
                _ => {}
            }
        }
        let app2 = app.clone();
        let owner2 = owner.clone();
        let w2 = w.clone();
        let ran = tokio::task::spawn_blocking(move || {
            let lease = app2.config.jobs.lease;
            // Counted from before the claim, so a drain never misses a job claimed while
            // the stop was being requested.
            let _busy = Busy::new(&w2);
            if w2.stopping.load(Ordering::SeqCst) {
                return None;
            }
            match app2.store.write(|c| js::claim(c, &owner2, lease, None)) {
                Ok(Some(job)) => Some(run_claimed(&app2, &job, &owner2)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a job");
                    None
                }
            }
        })
        .await
        .ok()
        .flatten();
        if matches!(ran, Some(ref o) if *o != JobOutcome::NotClaimed) {
            // There may be more due work: look again at once.
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {},
            () = w.wake.notified() => {},
        }
    }
}
