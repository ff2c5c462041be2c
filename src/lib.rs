//! lethe: a GDPR/CCPA retention and data-subject-request engine for CRM databases.
//!
//! See ARCHITECTURE.md for the bird's-eye view, the code map and the invariants.

pub mod app;
pub mod audit;
pub mod bench;
pub mod cert;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod erase;
pub mod error;
pub mod export;
pub mod hold;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod request;
pub mod retention;
pub mod source;
pub mod store;
pub mod trace;
