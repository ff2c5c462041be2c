//! JWS (RFC 7515) in the flattened JSON serialization, signed with Ed25519 (`alg` EdDSA,
//! RFC 8037), and JWKS with RFC 7638 thumbprints as key ids. Any JOSE library verifies
//! these certificates with the published JWKS; [`verify`] is lethe's own verifier.

use super::canonical::{canonical, to_canonical};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A JWS in the flattened JSON serialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jws {
    pub protected: String,
    pub payload: String,
    pub signature: String,
}

/// One public key (OKP / Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The RFC 7638 thumbprint of an Ed25519 public key, used as its `kid`.
pub fn thumbprint(public: &VerifyingKey) -> String {
    let x = B64.encode(public.as_bytes());
    let members = json!({"crv": "Ed25519", "kty": "OKP", "x": x});
    B64.encode(Sha256::digest(to_canonical(&members).as_bytes()))
}

pub fn jwk(public: &VerifyingKey) -> Jwk {
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: B64.encode(public.as_bytes()),
        kid: thumbprint(public),
        use_: Some("sig".into()),
        alg: Some("EdDSA".into()),
    }
}

/// Signs a payload (serialized as canonical JSON) with the protected header
/// `{"alg":"EdDSA","kid":...,"typ":...}`.
pub fn sign<T: Serialize>(
    payload: &T,
    typ: &str,
    key: &SigningKey,
) -> Result<Jws, serde_json::Error> {
    let kid = thumbprint(&key.verifying_key());
    let header = canonical(&json!({"alg": "EdDSA", "kid": kid, "typ": typ}))?;
    let protected = B64.encode(header.as_bytes());
    let payload = B64.encode(canonical(payload)?.as_bytes());
    let signature = key.sign(format!("{protected}.{payload}").as_bytes());
    Ok(Jws {
        protected,
        payload,
        signature: B64.encode(signature.to_bytes()),
    })
}

impl Jws {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The decoded payload (unverified).
    pub fn payload_json(&self) -> Option<Value> {
        let bytes = B64.decode(&self.payload).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Why a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// A verified certificate.
#[derive(Debug, Clone)]
pub struct Verified {
    pub kid: String,
    pub header: Value,
    pub payload: Value,
}

/// Parses a JWS (flattened, or general with exactly one signature).
pub fn parse(text: &str) -> Result<Jws, Invalid> {
    let v: Value =
        serde_json::from_str(text.trim()).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("a JWS in JSON serialization is an object"))?;
    let get = |o: &serde_json::Map<String, Value>, k: &str| -> Result<String, Invalid> {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("missing \"{k}\"")))
    };
    if obj.contains_key("header") {
        return Err(invalid("unprotected headers are not accepted"));
    }
    let payload = get(obj, "payload")?;
    if let Some(sigs) = obj.get("signatures") {
        let arr = sigs
            .as_array()
            .ok_or_else(|| invalid("\"signatures\" must be an array"))?;
        let [one] = arr.as_slice() else {
            return Err(invalid("expected exactly one signature"));
        };
        let o = one
            .as_object()
            .ok_or_else(|| invalid("signature entry must be an object"))?;
        return Ok(Jws {
            protected: get(o, "protected")?,
            payload,
            signature: get(o, "signature")?,
        });
    }
    Ok(Jws {
        protected: get(obj, "protected")?,
        payload,
        signature: get(obj, "signature")?,
    })
}

/// Verifies a JWS against a JWKS: EdDSA only, the key chosen by `kid`, the signature over
/// `protected.payload`, and a payload in canonical JSON.
pub fn verify(text: &str, jwks: &Jwks) -> Result<Verified, Invalid> {
    let jws = parse(text)?;
    let header_bytes = B64
        .decode(&jws.protected)
        .map_err(|_| invalid("protected header is not base64url"))?;
    let header: Value = serde_json::from_slice(&header_bytes)
        .map_err(|_| invalid("protected header is not JSON"))?;
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err(invalid("unsupported algorithm (only EdDSA is accepted)"));
    }
    if header.get("crit").is_some() {
        return Err(invalid("critical header parameters are not supported"));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("protected header has no kid"))?;
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| invalid(format!("unknown key id {kid} (not in the JWKS)")))?;
    if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
        return Err(invalid(format!("key {kid} is not an Ed25519 key")));
    }
    let x: [u8; 32] = B64
        .decode(&jwk.x)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| invalid(format!("key {kid} is malformed")))?;
    let public = VerifyingKey::from_bytes(&x)
        .map_err(|_| invalid(format!("key {kid} is not a valid Ed25519 point")))?;
    let sig_bytes: [u8; 64] = B64
        .decode(&jws.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| invalid("signature is not 64 base64url-encoded bytes"))?;
    public
        .verify(
            format!("{}.{}", jws.protected, jws.payload).as_bytes(),
            &Signature::from_bytes(&sig_bytes),
        )
        .map_err(|_| {
            invalid(
                "signature does not verify: the certificate was altered or signed by another key",
            )
        })?;
    let payload_bytes = B64
        .decode(&jws.payload)
        .map_err(|_| invalid("payload is not base64url"))?;
    let payload: Value =
        serde_json::from_slice(&payload_bytes).map_err(|_| invalid("payload is not JSON"))?;
    if to_canonical(&payload).as_bytes() != payload_bytes.as_slice() {
        return Err(invalid("payload is not in canonical JSON (RFC 8785)"));
    }
    Ok(Verified {
        kid: kid.to_string(),
        header,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3u8; 32])
    }

    #[test]
    fn round_trip() {
        let k = key();
        let jwks = Jwks {
            keys: vec![jwk(&k.verifying_key())],
        };
        let jws = sign(&json!({"b": 1, "a": "x"}), "lethe-certificate+jws", &k).unwrap();
        let v = verify(&jws.to_json(), &jwks).unwrap();
        assert_eq!(v.payload, json!({"a": "x", "b": 1}));
        assert_eq!(v.kid, thumbprint(&k.verifying_key()));
    }

    #[test]
    fn any_flipped_byte_is_rejected() {
        let k = key();
        let jwks = Jwks {
            keys: vec![jwk(&k.verifying_key())],
        };
        let jws = sign(
            &json!({"certificate": "c-1", "rows": 27}),
            "lethe-certificate+jws",
            &k,
        )
        .unwrap();
        for field in 0..3 {
            let orig = [&jws.protected, &jws.payload, &jws.signature][field].clone();
            let bytes = B64.decode(&orig).unwrap();
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0x01;
                let mut j = jws.clone();
                let enc = B64.encode(&b);
                match field {
                    0 => j.protected = enc,
                    1 => j.payload = enc,
                    _ => j.signature = enc,
                }
                assert!(
                    verify(&j.to_json(), &jwks).is_err(),
                    "field {field} byte {i}"
                );
            }
        }
    }

    #[test]
    fn wrong_key_and_alg_are_rejected() {
        let k = key();
        let other = SigningKey::from_bytes(&[4u8; 32]);
        let jws = sign(&json!({"x": 1}), "t", &k).unwrap();
        let e = verify(
            &jws.to_json(),
            &Jwks {
                keys: vec![jwk(&other.verifying_key())],
            },
        )
        .unwrap_err();
        assert!(e.0.contains("unknown key id"));
        // A JWKS entry with the right kid but another key.
        let mut forged = jwk(&other.verifying_key());
        forged.kid = thumbprint(&k.verifying_key());
        let e = verify(&jws.to_json(), &Jwks { keys: vec![forged] }).unwrap_err();
        assert!(e.0.contains("does not verify"));
        let mut j = jws.clone();
        j.protected = B64.encode(br#"{"alg":"none","kid":"x"}"#);
        assert!(
            verify(&j.to_json(), &Jwks::default())
                .unwrap_err()
                .0
                .contains("algorithm")
        );
        assert!(verify("{", &Jwks::default()).is_err());
    }

    #[test]
    fn rfc7638_thumbprint_shape() {
        let t = thumbprint(&key().verifying_key());
        assert_eq!(t.len(), 43);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::cert::canonical::proptests::arb_json;
    use proptest::prelude::*;

    const TYP: &str = "lethe-certificate+jws";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn jwks_of(keys: &[&SigningKey]) -> Jwks {
        Jwks {
            keys: keys.iter().map(|k| jwk(&k.verifying_key())).collect(),
        }
    }

    /// A certificate-like payload: an object with a few claims, nested values included.
    fn payload() -> impl Strategy<Value = Value> {
        proptest::collection::btree_map("[a-z_]{1,12}", arb_json(), 1..8)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    /// A copy of `v` with the leaf at `pick` (modulo the number of leaves) changed.
    fn change_one_leaf(v: &Value, pick: usize) -> Value {
        fn leaves(v: &Value) -> usize {
            match v {
                Value::Array(a) => a.iter().map(leaves).sum::<usize>(),
                Value::Object(m) => m.values().map(leaves).sum::<usize>(),
                _ => 1,
            }
        }
        fn change(v: &mut Value, pick: &mut usize) -> bool {
            match v {
                Value::Array(a) => a.iter_mut().any(|x| change(x, pick)),
                Value::Object(m) => m.values_mut().any(|x| change(x, pick)),
                leaf => {
                    if *pick > 0 {
                        *pick -= 1;
                        return false;
                    }
                    *leaf = match leaf.take() {
                        Value::Null => json!(0),
                        Value::Bool(b) => Value::Bool(!b),
                        Value::String(s) => Value::String(format!("{s}x")),
                        Value::Number(n) => match n.as_i64() {
                            Some(i) if i != i64::MAX => json!(i + 1),
                            _ => json!(null),
                        },
                        other => json!([other]),
                    };
                    true
                }
            }
        }
        let mut out = v.clone();
        let n = leaves(v);
        if n == 0 {
            // Only empty containers: add a claim instead.
            if let Value::Object(m) = &mut out {
                m.insert("added".into(), json!(true));
            }
            return out;
        }
        let mut at = pick % n;
        change(&mut out, &mut at);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_valid_certificate_verifies_and_round_trips(p in payload(), seed in 1u8..=255) {
            let k = key(seed);
            let jws = sign(&p, TYP, &k).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let text = jws.to_json();
            prop_assert_eq!(&parse(&text).map_err(|e| TestCaseError::fail(e.0))?, &jws);
            let v = verify(&text, &jwks_of(&[&key(0), &k])).map_err(|e| TestCaseError::fail(e.0))?;
            prop_assert_eq!(v.kid, thumbprint(&k.verifying_key()));
            prop_assert_eq!(v.header["typ"].as_str(), Some(TYP));
            prop_assert_eq!(to_canonical(&v.payload), to_canonical(&p));
            prop_assert_eq!(jws.payload_json().map(|x| to_canonical(&x)), Some(to_canonical(&p)));
        }

        #[test]
        fn any_changed_character_is_rejected(
            p in payload(),
            pos in any::<prop::sample::Index>(),
            replacement in any::<char>(),
        ) {
            let k = key(7);
            let jwks = jwks_of(&[&k]);
            let text = sign(&p, TYP, &k).map_err(|e| TestCaseError::fail(e.to_string()))?.to_json();
            let chars: Vec<char> = text.chars().collect();
            let i = pos.index(chars.len());
            prop_assume!(chars[i] != replacement);
            let mut mutated = chars.clone();
            mutated[i] = replacement;
            let mutated: String = mutated.into_iter().collect();
            prop_assert!(verify(&mutated, &jwks).is_err(), "accepted with {replacement:?} at {i}: {mutated}");
        }

        #[test]
        fn any_flipped_bit_in_a_part_is_rejected(
            p in payload(),
            part in 0usize..3,
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let k = key(9);
            let jwks = jwks_of(&[&k]);
            let jws = sign(&p, TYP, &k).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut j = jws.clone();
            let field = match part {
                0 => &mut j.protected,
                1 => &mut j.payload,
                _ => &mut j.signature,
            };
            let mut bytes = B64.decode(field.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            *field = B64.encode(&bytes);
            prop_assert!(verify(&j.to_json(), &jwks).is_err());
        }

        #[test]
        fn any_truncation_is_rejected(p in payload(), cut in any::<prop::sample::Index>()) {
            let k = key(11);
            let text = sign(&p, TYP, &k).map_err(|e| TestCaseError::fail(e.to_string()))?.to_json();
            let chars: Vec<char> = text.chars().collect();
            let keep = cut.index(chars.len());
            let short: String = chars[..keep].iter().collect();
            prop_assert!(verify(&short, &jwks_of(&[&k])).is_err());
        }

        #[test]
        fn changed_claims_are_rejected_even_when_canonical(p in payload(), pick in any::<usize>()) {
            let k = key(13);
            let jwks = jwks_of(&[&k]);
            let jws = sign(&p, TYP, &k).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let changed = change_one_leaf(&p, pick);
            prop_assume!(to_canonical(&changed) != to_canonical(&p));
            let mut forged = jws.clone();
            forged.payload = B64.encode(to_canonical(&changed).as_bytes());
            prop_assert!(verify(&forged.to_json(), &jwks).is_err());
            // Signed by another key under the same kid: rejected too.
            let other = sign(&changed, TYP, &key(14)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut swapped = other.clone();
            swapped.protected = jws.protected.clone();
            prop_assert!(verify(&swapped.to_json(), &jwks).is_err());
            prop_assert!(verify(&other.to_json(), &jwks).is_err(), "unknown key");
        }

        #[test]
        fn reordered_or_reformatted_payloads_are_rejected_even_when_signed(p in payload()) {
            // A payload that is not canonical (members reordered, whitespace), signed by the
            // right key, still fails: certificates are canonical JSON or nothing.
            let k = key(17);
            let jwks = jwks_of(&[&k]);
            let Value::Object(m) = &p else { return Ok(()) };
            let mut rev = serde_json::Map::new();
            for (key, v) in m.iter().rev() {
                rev.insert(key.clone(), v.clone());
            }
            for text in [
                serde_json::to_string(&Value::Object(rev)).unwrap_or_default(),
                serde_json::to_string_pretty(&p).unwrap_or_default(),
                format!(" {}", to_canonical(&p)),
            ] {
                if text == to_canonical(&p) {
                    continue;
                }
                let kid = thumbprint(&k.verifying_key());
                let protected = B64.encode(to_canonical(&json!({"alg": "EdDSA", "kid": kid, "typ": TYP})));
                let payload = B64.encode(text.as_bytes());
                let signature = B64.encode(k.sign(format!("{protected}.{payload}").as_bytes()).to_bytes());
                let j = Jws { protected, payload, signature };
                let e = verify(&j.to_json(), &jwks);
                prop_assert!(e.is_err(), "{text}");
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = verify(&text, &jwks_of(&[&key(1)]));
        }
    }
}
