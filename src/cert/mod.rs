//! Signed completion certificates: canonical JSON (RFC 8785) payloads in JWS (RFC 7515,
//! JSON serialization) signed with Ed25519, verifiable offline with the JWKS; the signing
//! key store; signed audit-log checkpoints.
//!
//! Architecture invariant: a certificate never contains raw identity values (only the keyed
//! subject reference), and an erasure certificate is only issued after verification passed,
//! in the same store transaction as the request's completion.

pub mod canonical;
pub mod issue;
pub mod jws;
pub mod keys;
