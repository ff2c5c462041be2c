//! Request kinds, legal regimes, intake channels and workflow states.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }

            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        /// A string enum of the serialized names (the API document).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($s),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What the data subject asks for.
    RequestKind {
        /// GDPR Art. 15, CCPA right to know.
        Access => "access",
        /// GDPR Art. 20: the data the person provided, machine-readable.
        Portability => "portability",
        /// GDPR Art. 17, CCPA right to delete.
        Erasure => "erasure",
        /// GDPR Art. 16, CPRA right to correct.
        Rectification => "rectification",
        /// CCPA 1798.120: opt out of sale or sharing.
        OptOut => "opt_out",
    }
}

string_enum! {
    /// The law the request is handled under (decides deadlines and notices).
    Regime {
        Gdpr => "gdpr",
        UkGdpr => "uk_gdpr",
        Ccpa => "ccpa",
        Lgpd => "lgpd",
        Pipeda => "pipeda",
        Vcdpa => "vcdpa",
        Cpa => "cpa",
    }
}

impl Regime {
    pub fn describe(self) -> &'static str {
        match self {
            Regime::Gdpr => "EU GDPR",
            Regime::UkGdpr => "UK GDPR",
            Regime::Ccpa => "California CCPA/CPRA",
            Regime::Lgpd => "Brazil LGPD",
            Regime::Pipeda => "Canada PIPEDA",
            Regime::Vcdpa => "Virginia CDPA",
            Regime::Cpa => "Colorado Privacy Act",
        }
    }
}

string_enum! {
    /// How the request reached the controller.
    Channel {
        Email => "email",
        WebForm => "web_form",
        Phone => "phone",
        Letter => "letter",
        InPerson => "in_person",
        Api => "api",
    }
}

string_enum! {
    /// Workflow states.
    RequestState {
        Received => "received",
        Acknowledged => "acknowledged",
        IdentityPending => "identity_pending",
        Verified => "verified",
        /// Footprint and erasure plan ready for review.
        Planned => "planned",
        Approved => "approved",
        Executing => "executing",
        Verifying => "verifying",
        Completed => "completed",
        /// Done, with some rows kept under an exemption.
        PartiallyCompleted => "partially_completed",
        /// Execution or verification failed; the reason is recorded and it can be re-planned.
        Failed => "failed",
        Denied => "denied",
        Withdrawn => "withdrawn",
        Cancelled => "cancelled",
    }
}

impl RequestState {
    /// No further transitions.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RequestState::Completed
                | RequestState::PartiallyCompleted
                | RequestState::Denied
                | RequestState::Withdrawn
                | RequestState::Cancelled
        )
    }

    /// Still counts against the deadline.
    pub fn is_open(self) -> bool {
        !self.is_final()
    }
}

string_enum! {
    /// Roles of API tokens and web sessions.
    Role {
        /// Handles requests, holds and retention.
        Officer => "officer",
        /// Reads everything, changes nothing.
        Auditor => "auditor",
        /// An officer who may also manage tokens and keys.
        Admin => "admin",
    }
}

impl Role {
    pub fn can_write(self) -> bool {
        matches!(self, Role::Officer | Role::Admin)
    }
}
