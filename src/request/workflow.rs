//! The request state machine: which action is allowed in which state for which kind of
//! request, and where it leads. Pure; the service applies it inside a store transaction.

use super::model::{RequestKind, RequestState};
use serde::Serialize;
use std::fmt;

/// Something an officer (or the engine) does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Acknowledge,
    RequestIdentity,
    Verify,
    /// Access, portability and opt-out: trace and produce the result.
    Run,
    /// Erasure and rectification: trace and build the plan for review.
    Plan,
    Approve,
    Execute,
    Deny,
    Withdraw,
    Cancel,
    // Engine-internal steps.
    StartVerification,
    Complete,
    CompletePartially,
    Fail,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::RequestIdentity => "request_identity",
            Action::Verify => "verify",
            Action::Run => "run",
            Action::Plan => "plan",
            Action::Approve => "approve",
            Action::Execute => "execute",
            Action::Deny => "deny",
            Action::Withdraw => "withdraw",
            Action::Cancel => "cancel",
            Action::StartVerification => "start_verification",
            Action::Complete => "complete",
            Action::CompletePartially => "complete_partially",
            Action::Fail => "fail",
        }
    }

    /// Actions people take (the others are the engine's own steps).
    pub fn is_manual(self) -> bool {
        !matches!(
            self,
            Action::StartVerification | Action::Complete | Action::CompletePartially | Action::Fail
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action that is not allowed now, with the ones that are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalTransition {
    pub state: RequestState,
    pub action: Action,
    pub allowed: Vec<Action>,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<&str> = self.allowed.iter().map(|a| a.as_str()).collect();
        write!(
            f,
            "cannot {} a request in state {}; allowed now: {}",
            self.action,
            self.state,
            if allowed.is_empty() {
                "nothing (final state)".to_string()
            } else {
                allowed.join(", ")
            }
        )
    }
}

impl std::error::Error for IllegalTransition {}

fn executes_directly(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Access | RequestKind::Portability | RequestKind::OptOut
    )
}

/// Where `action` leads from `state`, or `None` when it is not allowed.
fn target(kind: RequestKind, state: RequestState, action: Action) -> Option<RequestState> {
    use Action as A;
    use RequestState as S;
    let open_exit = |a: Action| match a {
        A::Deny => Some(S::Denied),
        A::Withdraw => Some(S::Withdrawn),
        A::Cancel => Some(S::Cancelled),
        _ => None,
    };
    match (state, action) {
        (S::Received, A::Acknowledge) => Some(S::Acknowledged),
        (S::Received | S::Acknowledged, A::RequestIdentity) if kind != RequestKind::OptOut => {
            Some(S::IdentityPending)
        }
        (S::Received | S::Acknowledged | S::IdentityPending, A::Verify)
            if kind != RequestKind::OptOut =>
        {
            Some(S::Verified)
        }
        // Opt-out of sale/sharing needs no identity verification (CCPA regs 7026).
        (S::Received | S::Acknowledged, A::Run) if kind == RequestKind::OptOut => {
            Some(S::Executing)
        }
        (S::Verified, A::Run) if executes_directly(kind) => Some(S::Executing),
        (S::Verified | S::Planned | S::Approved | S::Failed, A::Plan)
            if !executes_directly(kind) =>
        {
            Some(S::Planned)
        }
        (S::Planned, A::Approve) => Some(S::Approved),
        (S::Approved, A::Execute) => Some(S::Executing),
        (S::Failed, A::Run) if executes_directly(kind) => Some(S::Executing),
        (S::Executing, A::StartVerification) if !executes_directly(kind) => Some(S::Verifying),
        (S::Executing, A::Complete) if executes_directly(kind) => Some(S::Completed),
        (S::Verifying, A::Complete) => Some(S::Completed),
        (S::Verifying, A::CompletePartially) => Some(S::PartiallyCompleted),
        (S::Executing | S::Verifying, A::Fail) => Some(S::Failed),
        (
            S::Received
            | S::Acknowledged
            | S::IdentityPending
            | S::Verified
            | S::Planned
            | S::Failed,
            A::Deny | A::Withdraw | A::Cancel,
        ) => open_exit(action),
        (S::Approved, A::Withdraw | A::Cancel) => open_exit(action),
        _ => None,
    }
}

const ALL_ACTIONS: [Action; 14] = [
    Action::Acknowledge,
    Action::RequestIdentity,
    Action::Verify,
    Action::Run,
    Action::Plan,
    Action::Approve,
    Action::Execute,
    Action::Deny,
    Action::Withdraw,
    Action::Cancel,
    Action::StartVerification,
    Action::Complete,
    Action::CompletePartially,
    Action::Fail,
];

/// The manual actions allowed in `state`.
pub fn allowed(kind: RequestKind, state: RequestState) -> Vec<Action> {
    ALL_ACTIONS
        .iter()
        .copied()
        .filter(|a| a.is_manual() && target(kind, state, *a).is_some())
        .collect()
}

/// Applies `action`, returning the new state or the reason it is illegal.
pub fn apply(
    kind: RequestKind,
    state: RequestState,
    action: Action,
) -> Result<RequestState, IllegalTransition> {
    target(kind, state, action).ok_or_else(|| IllegalTransition {
        state,
        action,
        allowed: allowed(kind, state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestKind as K;
    use RequestState as S;

    #[test]
    fn access_happy_path() {
        let mut s = S::Received;
        for a in [
            Action::Acknowledge,
            Action::Verify,
            Action::Run,
            Action::Complete,
        ] {
            s = apply(K::Access, s, a).unwrap();
        }
        assert_eq!(s, S::Completed);
    }

    #[test]
    fn erasure_happy_path() {
        let mut s = S::Received;
        for a in [
            Action::Verify,
            Action::Plan,
            Action::Approve,
            Action::Execute,
            Action::StartVerification,
            Action::CompletePartially,
        ] {
            s = apply(K::Erasure, s, a).unwrap();
        }
        assert_eq!(s, S::PartiallyCompleted);
    }

    #[test]
    fn illegal_transitions_list_allowed_ones() {
        let e = apply(K::Access, S::Received, Action::Run).unwrap_err();
        assert!(e.allowed.contains(&Action::Verify));
        assert!(!e.allowed.contains(&Action::Run));
        assert!(e.to_string().contains("allowed now"));
        // Approving without verification.
        assert!(apply(K::Erasure, S::Received, Action::Approve).is_err());
        // Nothing leaves a final state.
        for s in [
            S::Completed,
            S::Denied,
            S::Withdrawn,
            S::Cancelled,
            S::PartiallyCompleted,
        ] {
            assert!(allowed(K::Erasure, s).is_empty(), "{s}");
        }
    }

    #[test]
    fn opt_out_needs_no_verification() {
        assert_eq!(
            apply(K::OptOut, S::Received, Action::Run).unwrap(),
            S::Executing
        );
        assert!(apply(K::OptOut, S::Received, Action::Verify).is_err());
    }

    #[test]
    fn access_is_not_planned() {
        assert!(apply(K::Access, S::Verified, Action::Plan).is_err());
        assert!(apply(K::Erasure, S::Verified, Action::Run).is_err());
    }
}
