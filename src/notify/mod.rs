//! Notices to recipients: when an erasure, rectification or restriction (opt-out of sale or
//! sharing) completes, lethe tells every recipient that received the subject's data
//! (GDPR Art. 19; CCPA regulations § 7022(b)(2)-(3) and § 7026(f)) by POSTing a signed JSON
//! notice to the webhook the data map gives it (`[recipients.<name>] webhook = {...}`).
//!
//! This module is the pure core and the HTTP client; the store, the job queue and the
//! workflow use it (`request::notices`):
//!
//! - [`notice`]: the JSON body and its builder (plain inputs, deterministic bytes, the
//!   keyed subject reference only, changed columns without their values);
//! - [`signature`]: the `Lethe-Signature` header (`t=<unix>,v1=<hex HMAC-SHA256>` over
//!   `"<t>.<body>"`, Stripe-style, several `v1` while a secret is rotated) and its verifier;
//! - [`backoff`]: when to try again (exponential, capped, with jitter derived from the
//!   notice id so every replica computes the same time);
//! - [`client`]: one blocking HTTPS POST with `ureq` (rustls + ring, webpki roots; no
//!   redirects, no proxy from the environment), classifying the answer as acknowledged,
//!   retryable or permanent.
//!
//! The wire format for receivers is documented in `docs/webhooks.md`.

pub mod backoff;
pub mod client;
pub mod notice;
pub mod signature;

pub use backoff::Backoff;
pub use client::{Delivery, DeliveryError, deliver};
pub use notice::{Notice, NoticeError, NoticeInput, NoticeTable, TableAction};
pub use signature::{SignatureError, sign, sign_rotating, split_secrets, verify};
