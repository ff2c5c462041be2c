//! Metrics for Prometheus at `/metrics` (see `docs/operations.md`): [`encode`] writes the
//! text exposition format (pure), [`recorder`] holds what this process observes (HTTP and
//! job durations), [`collect`] reads the engine store at scrape time and assembles every
//! family. No label ever carries personal data, an id or a token.

pub mod collect;
pub mod encode;
pub mod recorder;

pub use recorder::Recorder;

/// The whole exposition of one scrape (blocking: reads the store).
pub fn render(app: &crate::app::App) -> String {
    encode::encode(&collect::families(app))
}
