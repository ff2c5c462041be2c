//! lethe's integration tests: one binary, real SQLite always, real PostgreSQL when
//! `LETHE_TEST_PG_URL` is set (CI sets it and `LETHE_TEST_REQUIRE_SERVERS=1`).

mod support;

mod api;
mod certs;
mod crash;
mod datamap;
mod demo;
mod erasure;
mod retention;
mod store;
mod trace;
mod workflow;
