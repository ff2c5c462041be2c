//! The `Lethe-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
//!
//! The signed message is the decimal timestamp, a full stop and the raw body bytes
//! (`"<t>.<body>"`), keyed with the recipient's webhook secret; the MAC is written as
//! lowercase hex. The scheme follows Stripe's webhook signatures, so receivers can reuse
//! their code: while a secret is rotated the header carries one `v1` entry per secret
//! (`t=...,v1=<new>,v1=<old>`), and a receiver accepts the notice when any entry matches a
//! secret it knows. Unknown schemes (`v0=`, `v2=`) are ignored, so a later scheme can be
//! added beside `v1`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The name of the signature header.
pub const HEADER: &str = "Lethe-Signature";

/// The tolerance receivers are advised to use (and lethe's own tests use): 5 minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The HMAC over `"<t>.<body>"`, before finalization (cloned per comparison in [`verify`]).
fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Lowercase hex HMAC-SHA256 of `"<t>.<body>"` under `secret` (one `v1` value).
pub fn signature_hex(secret: &[u8], t: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, t, body).finalize().into_bytes())
}

/// The header value `t=<t>,v1=<hex>` for one secret.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    sign_rotating(&[secret], t, body)
}

/// The header value with one `v1` entry per secret, in the order given (the current secret
/// first, then the ones being retired), all over the same timestamp.
pub fn sign_rotating(secrets: &[&[u8]], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&signature_hex(secret, t, body));
    }
    header
}

/// The secrets held by one webhook-secret variable: separated by whitespace, the current
/// one first (`"new old"` while rotating). Empty when the value is blank.
pub fn split_secrets(value: &str) -> Vec<&[u8]> {
    value.split_whitespace().map(str::as_bytes).collect()
}

/// Why a `Lethe-Signature` header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not a comma-separated list of `key=value` pairs with exactly one
    /// decimal `t` and hex `v1` values.
    Malformed(&'static str),
    /// The header has no `v1` entry.
    NoSignature,
    /// The timestamp is older than the tolerance allows (a replay, or a very late retry
    /// signed long ago: lethe signs every attempt afresh, so this is never a retry).
    Stale {
        /// Seconds between the timestamp and now.
        age_secs: i64,
    },
    /// The timestamp lies further in the future than the tolerance allows (clock skew).
    FromTheFuture {
        /// Seconds between now and the timestamp.
        ahead_secs: i64,
    },
    /// No `v1` entry matches the secret.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Malformed(why) => write!(f, "malformed signature header: {why}"),
            SignatureError::NoSignature => f.write_str("the signature header has no v1 entry"),
            SignatureError::Stale { age_secs } => write!(
                f,
                "the signature timestamp is {age_secs} s old, beyond the tolerance"
            ),
            SignatureError::FromTheFuture { ahead_secs } => write!(
                f,
                "the signature timestamp is {ahead_secs} s in the future, beyond the tolerance"
            ),
            SignatureError::Mismatch => f.write_str("no signature matches the secret"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// A parsed header: the timestamp and the decoded `v1` MACs.
struct ParsedHeader {
    t: i64,
    v1: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<ParsedHeader, SignatureError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(SignatureError::Malformed("an entry is not key=value"));
        };
        match key {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed("t appears twice"));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::Malformed("t is not a decimal number"));
                }
                let parsed = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is out of range"))?;
                t = Some(parsed);
            }
            "v1" => {
                let mac = hex::decode(value)
                    .map_err(|_| SignatureError::Malformed("a v1 value is not hex"))?;
                if mac.len() != 32 {
                    return Err(SignatureError::Malformed(
                        "a v1 value is not 32 bytes (64 hex digits)",
                    ));
                }
                v1.push(mac);
            }
            "" => return Err(SignatureError::Malformed("an entry has an empty key")),
            // Other schemes are ignored so a new one can be added beside v1.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no t entry"))?;
    if v1.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    Ok(ParsedHeader { t, v1 })
}

/// Checks a `Lethe-Signature` header against the raw body and one secret: the timestamp
/// must be within `tolerance_secs` of `now` (both ways), and some `v1` entry must equal the
/// HMAC, compared in constant time.
pub fn verify(
    header: &str,
    secret: &[u8],
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let parsed = parse(header)?;
    let age = now.saturating_sub(parsed.t);
    if age > tolerance_secs {
        return Err(SignatureError::Stale { age_secs: age });
    }
    if age < tolerance_secs.saturating_neg() {
        return Err(SignatureError::FromTheFuture {
            ahead_secs: age.saturating_neg(),
        });
    }
    let expected = mac(secret, parsed.t, body);
    if parsed
        .v1
        .iter()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"type":"lethe.notice","version":1}"#;
    const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    // Computed independently with Python 3:
    //   hmac.new(b"whsec_test_secret", b'1767225600.{"type":"lethe.notice","version":1}',
    //            hashlib.sha256).hexdigest()
    // and checked with:
    //   printf '%s' '1767225600.{"type":"lethe.notice","version":1}' \
    //     | openssl dgst -sha256 -hmac whsec_test_secret
    const VECTOR: &str = "9b411b1069135557d418ed22ca40207ac73179b18a1a93ea4fb8ddd2d38ab8d9";
    // hmac.new(b"old_secret", <same message>, hashlib.sha256).hexdigest()
    const VECTOR_OLD: &str = "ff41e978622decb15d87434f742e77b7ce1818fcb9b6039b739cf31f2fc8067b";
    // hmac.new(b"", b"0.", hashlib.sha256).hexdigest()
    const VECTOR_EMPTY: &str = "b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3";
    // hmac.new(b"whsec_test_secret", b'1767225600.{"a":"\xc3\xa9"}', hashlib.sha256)
    const VECTOR_UTF8: &str = "ada6ee4a5636c65a71b5caa958f8e017334deb0a8d7e58f625f10b94a897f08a";

    #[test]
    fn matches_independent_vectors() {
        assert_eq!(signature_hex(SECRET, T, BODY), VECTOR);
        assert_eq!(signature_hex(b"old_secret", T, BODY), VECTOR_OLD);
        assert_eq!(signature_hex(b"", 0, b""), VECTOR_EMPTY);
        assert_eq!(
            signature_hex(SECRET, T, "{\"a\":\"é\"}".as_bytes()),
            VECTOR_UTF8
        );
        assert_eq!(sign(SECRET, T, BODY), format!("t={T},v1={VECTOR}"));
    }

    #[test]
    fn rotation_signs_with_every_secret() {
        let header = sign_rotating(&[SECRET, b"old_secret"], T, BODY);
        assert_eq!(header, format!("t={T},v1={VECTOR},v1={VECTOR_OLD}"));
        assert_eq!(verify(&header, SECRET, BODY, T, 300), Ok(()));
        assert_eq!(verify(&header, b"old_secret", BODY, T, 300), Ok(()));
        assert_eq!(
            verify(&header, b"other", BODY, T, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            split_secrets("  new\told \n"),
            vec![&b"new"[..], &b"old"[..]]
        );
        assert!(split_secrets(" \n").is_empty());
    }

    #[test]
    fn verifies_a_good_signature_within_tolerance() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(verify(&header, SECRET, BODY, T, 300), Ok(()));
        assert_eq!(verify(&header, SECRET, BODY, T + 300, 300), Ok(()));
        assert_eq!(verify(&header, SECRET, BODY, T - 300, 300), Ok(()));
        // Spaces after commas and unknown schemes are tolerated.
        let loose = format!("t={T}, v0=abc, v1={VECTOR}");
        assert_eq!(verify(&loose, SECRET, BODY, T, 300), Ok(()));
        // Uppercase hex decodes to the same MAC.
        let upper = format!("t={T},v1={}", VECTOR.to_uppercase());
        assert_eq!(verify(&upper, SECRET, BODY, T, 300), Ok(()));
    }

    #[test]
    fn rejects_stale_and_future_timestamps() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(
            verify(&header, SECRET, BODY, T + 301, 300),
            Err(SignatureError::Stale { age_secs: 301 })
        );
        assert_eq!(
            verify(&header, SECRET, BODY, T - 301, 300),
            Err(SignatureError::FromTheFuture { ahead_secs: 301 })
        );
    }

    #[test]
    fn rejects_wrong_secret_body_or_timestamp() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(
            verify(&header, b"wrong", BODY, T, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, SECRET, b"{\"type\":\"lethe.notice\"}", T, 300),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = format!("t={},v1={VECTOR}", T + 1);
        assert_eq!(
            verify(&moved, SECRET, BODY, T, 300),
            Err(SignatureError::Mismatch)
        );
        // One flipped hex digit.
        let mut flipped = VECTOR.to_string();
        flipped.replace_range(0..1, "a");
        assert_eq!(
            verify(&format!("t={T},v1={flipped}"), SECRET, BODY, T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        for header in [
            "",
            "garbage",
            &format!("v1={VECTOR}"),
            &format!("t=,v1={VECTOR}"),
            &format!("t=-5,v1={VECTOR}"),
            &format!("t=12x,v1={VECTOR}"),
            &format!("t=99999999999999999999,v1={VECTOR}"),
            &format!("t={T},t={T},v1={VECTOR}"),
            &format!("t={T},v1=zz"),
            &format!("t={T},v1=abcd"),
            &format!("t={T},=x,v1={VECTOR}"),
            &format!("t={T},,v1={VECTOR}"),
        ] {
            assert!(
                matches!(
                    verify(header, SECRET, BODY, T, 300),
                    Err(SignatureError::Malformed(_))
                ),
                "{header:?}"
            );
        }
        assert_eq!(
            verify(&format!("t={T}"), SECRET, BODY, T, 300),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            verify(&format!("t={T},v0=00"), SECRET, BODY, T, 300),
            Err(SignatureError::NoSignature)
        );
    }
}
