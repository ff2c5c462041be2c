//! The tracer: from a subject's identities to their [`Footprint`] across every source.
//!
//! Architecture invariant: the tracer only reads; it runs each source's queries in one
//! read transaction, so the footprint is a consistent snapshot per source.

pub mod footprint;
pub mod lean;
pub mod plan;
pub mod residual;
pub mod tracer;

pub use footprint::{
    Footprint, FoundRow, Identity, Mention, PathStep, TableRows, TraceStats, Via, describe_link,
};
pub use lean::{LeanTables, LeanTrace, RowReader, trace_lean};
pub use plan::{PlanError, TablePlan, TracePlan};
pub use tracer::{TraceOptions, push_condition, trace};

use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("unknown identity kind \"{0}\"")]
    UnknownIdentityKind(String),
    /// A value no database can compare as text (a NUL character); the value is not echoed.
    #[error("an identity value of kind \"{0}\" contains a NUL character")]
    InvalidIdentityValue(String),
    #[error("internal error: {0}")]
    Internal(String),
}
