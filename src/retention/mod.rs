//! Retention: rules with windows or statutory periods, the dry-run plan and forecast, the
//! batched, resumable executor with signed run certificates, and the scheduler.
//!
//! Architecture invariant: retention never touches held rows, works in short batch
//! transactions on pinned keys, and records each batch's intent before its commit so a
//! crash resumes without redoing or double counting.

pub mod plan;
pub mod rules;
pub mod run;
pub mod schedule;
pub mod sizing;

pub use rules::{Retention, Rule, Settings, Window};
