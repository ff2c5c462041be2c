//! What this process observes itself: HTTP request durations (by method, route template and
//! status class) and job durations (by kind and outcome). Held in [`crate::app::App`], one
//! per process; the store-backed figures are read at scrape time instead ([`super::collect`]).
//!
//! Label values come from closed sets only (route templates, never raw paths; job kinds;
//! outcome names), so no identifier, token or personal data can become a label.

use super::encode::Histogram;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Bucket bounds (seconds) for HTTP requests: 5 ms to 30 s.
pub const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds (seconds) for jobs and retention runs: 100 ms to 1 h.
pub const WORK_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// Histograms keyed by label values.
#[derive(Debug)]
pub struct HistogramVec {
    bounds: &'static [f64],
    series: Mutex<BTreeMap<Vec<String>, Histogram>>,
}

impl HistogramVec {
    pub fn new(bounds: &'static [f64]) -> HistogramVec {
        HistogramVec {
            bounds,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts one observation for these label values.
    pub fn observe(&self, labels: &[&str], value: Duration) {
        let key: Vec<String> = labels.iter().map(|s| (*s).to_string()).collect();
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        series
            .entry(key)
            .or_insert_with(|| Histogram::new(self.bounds))
            .observe(value.as_secs_f64());
    }

    /// A copy of every series.
    pub fn snapshot(&self) -> Vec<(Vec<String>, Histogram)> {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect()
    }
}

/// The process's own observations.
#[derive(Debug)]
pub struct Recorder {
    /// When the process started (`process_start_time_seconds`).
    pub started: SystemTime,
    /// Labels: method, route, status_class.
    pub http: HistogramVec,
    /// Labels: kind, outcome.
    pub jobs: HistogramVec,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            started: SystemTime::now(),
            http: HistogramVec::new(HTTP_BUCKETS),
            jobs: HistogramVec::new(WORK_BUCKETS),
        }
    }

    /// Records one HTTP request. `route` must be a route template (or `unmatched`).
    pub fn observe_http(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http
            .observe(&[http_method(method), route, status_class(status)], took);
    }

    /// Records one job run by this process (`outcome`: done, retry, failed, not_claimed).
    pub fn observe_job(&self, kind: &str, outcome: &str, took: Duration) {
        self.jobs.observe(&[kind, outcome], took);
    }
}

/// The method as a label: the standard ones by name, anything else `other`.
pub fn http_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `1xx` .. `5xx` (anything else `other`).
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_series() {
        let r = Recorder::new();
        r.observe_http(
            "GET",
            "/api/v1/requests/{id}",
            200,
            Duration::from_millis(3),
        );
        r.observe_http(
            "GET",
            "/api/v1/requests/{id}",
            204,
            Duration::from_millis(40),
        );
        r.observe_http("BREW", "unmatched", 418, Duration::from_secs(60));
        let snap = r.http.snapshot();
        assert_eq!(snap.len(), 2);
        let (labels, h) = &snap[0];
        assert_eq!(labels, &["GET", "/api/v1/requests/{id}", "2xx"]);
        assert_eq!(h.count(), 2);
        assert_eq!(h.counts[0], 1, "3 ms is in the 5 ms bucket");
        assert_eq!(snap[1].0, ["other", "unmatched", "4xx"]);
        assert_eq!(
            snap[1].1.counts.last(),
            Some(&1),
            "60 s is above every bound"
        );
        r.observe_job("retention.run", "done", Duration::from_secs(2));
        assert_eq!(r.jobs.snapshot()[0].0, ["retention.run", "done"]);
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(302), "3xx");
        assert_eq!(status_class(422), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(99), "other");
    }
}
