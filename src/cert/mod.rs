//! Certificates and their building blocks: canonical JSON (RFC 8785).

pub mod canonical;
