//! Certificate verification: arbitrary text never panics, and a valid certificate changed
//! anywhere (bytes XORed over its text) is rejected unless it still parses to the very same
//! JWS (a change JSON itself ignores).
#![no_main]

use ed25519_dalek::SigningKey;
use lethe::cert::jws;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::sync::LazyLock;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[42; 32]));
static JWKS: LazyLock<jws::Jwks> = LazyLock::new(|| jws::Jwks {
    keys: vec![jws::jwk(&KEY.verifying_key())],
});
static VALID: LazyLock<jws::Jws> = LazyLock::new(|| {
    let payload = json!({
        "format": "lethe.certificate/1",
        "kind": "erasure",
        "subject_ref": "hmac-sha256:0f1e",
        "results": [{"table": "contacts", "deleted": 1, "anonymized": 0}],
        "verification": {"passed": true, "rows_remaining_outside_exemptions": 0},
        "ratio": 0.5,
    });
    match jws::sign(&payload, "lethe-certificate+jws", &KEY) {
        Ok(j) => j,
        Err(e) => panic!("sign: {e}"),
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Ok(v) = jws::verify(text, &JWKS) {
                // Only a certificate signed by the key verifies.
                assert_eq!(jws::parse(text).ok().as_ref(), Some(&*VALID), "{v:?}");
            }
        }
        return;
    }
    let original = VALID.to_json();
    let mut bytes = original.clone().into_bytes();
    for (i, b) in rest.iter().enumerate() {
        let at = i % bytes.len();
        bytes[at] ^= b;
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return;
    };
    if text == original {
        return;
    }
    if jws::verify(&text, &JWKS).is_ok() {
        assert_eq!(
            jws::parse(&text).ok().as_ref(),
            Some(&*VALID),
            "a changed certificate verified: {text}"
        );
    }
});
