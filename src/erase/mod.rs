//! Erasure, rectification and opt-out: strategies (pure), the planner, the executor (one
//! write transaction per source, set-based statements on pinned keys, idempotent on
//! re-run) and the verifier; `run` drives them through the request workflow.
//!
//! Architecture invariant: execution writes only what the approved plan says, after checking
//! every pinned row still has its planned digest; no certificate is issued unless the
//! verifier found nothing of the subject outside the exemptions.

pub mod execute;
pub mod plan;
pub mod run;
pub mod strategy;
pub mod verify;
