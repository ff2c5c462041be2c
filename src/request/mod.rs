//! Data-subject requests: kinds, regimes and states, the workflow, legal deadlines, the
//! service that runs requests, and the exports they produce.
//!
//! Architecture invariant: a request's state changes only through [`workflow::apply`], and
//! each change writes its event and audit entry in the same engine-store transaction.

pub mod deadline;
pub mod export;
pub mod metrics;
pub mod model;
pub mod notices;
pub mod service;
pub mod view;
pub mod workflow;

pub use model::{Channel, Regime, RequestKind, RequestState, Role};
pub use service::{NewRequest, RequestError};
