//! lethe's integration tests: one binary, real SQLite always, real PostgreSQL when
//! `LETHE_TEST_PG_URL` is set (CI sets it and `LETHE_TEST_REQUIRE_SERVERS=1`), headless
//! Chromium (`browser`) when Debian's chromium and chromium-driver are installed (CI installs
//! them and sets `LETHE_TEST_REQUIRE_BROWSER=1`).

mod support;

mod api;
mod browser;
mod browser_ui;
mod certs;
mod crash;
mod datamap;
mod demo;
mod erasure;
mod exports;
mod faults;
mod headers;
mod hostile;
mod killpoints;
mod logsearch;
mod metrics;
#[cfg(feature = "mysql")]
mod multisource;
mod notices;
mod retention;
mod scaleout;
mod store;
mod trace;
mod web;
mod workflow;
