//! Canonical JSON: for any JSON document, the canonical form parses back and is its own
//! canonical form; the encoder never panics.
#![no_main]

use lethe::cert::canonical::to_canonical;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let c = to_canonical(&v);
    let back: Value = match serde_json::from_str(&c) {
        Ok(b) => b,
        Err(e) => panic!("canonical output is not JSON ({e}): {c}"),
    };
    assert_eq!(to_canonical(&back), c, "not a fixpoint");
});
