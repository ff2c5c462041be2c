//! Erasure strategies as pure functions over values: what an anonymized cell becomes.
//!
//! Type-aware: a strategy never writes text into a number or date column (the linter checks
//! the map against the schema; [`apply`] refuses at run time too). Deterministic, so a
//! re-run after a crash computes the same values (encryption derives its nonce from the
//! request and the cell).

use crate::policy::{Generalization, Normalizer, Strategy, replace_ranges};
use crate::source::{ColumnType, TypeKind, Value};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What replaces an identity found in free text.
pub const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StrategyError(pub String);

/// Keys and identities the strategies need.
pub struct StrategyContext<'a> {
    /// Key for `hmac` (derived from the master key; stable across requests).
    pub hmac_key: [u8; 32],
    /// The subject's key for `encrypt` (shredded when the erasure completes).
    pub subject_key: Option<[u8; 32]>,
    /// Makes encryption nonces unique per request.
    pub nonce_salt: &'a str,
    /// The subject's identities, for `redact`.
    pub identities: &'a [(Normalizer, String)],
}

/// Where a value lives (for nonces and messages).
pub struct Cell<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub key: &'a str,
}

fn text_of(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

/// Applies `strategy` to `value` of a column of type `ty`. NULL stays NULL (except for
/// `constant`).
pub fn apply(
    strategy: &Strategy,
    value: &Value,
    ty: Option<&ColumnType>,
    cell: &Cell<'_>,
    ctx: &StrategyContext<'_>,
) -> Result<Value, StrategyError> {
    let kind = ty.map_or(TypeKind::Other, |t| t.kind);
    let wrong = |what: &str| {
        StrategyError(format!(
            "{}.{}: {} cannot apply to a {} value",
            cell.table,
            cell.column,
            strategy.name(),
            what
        ))
    };
    if value.is_null() && !matches!(strategy, Strategy::Constant(_)) {
        return Ok(Value::Null);
    }
    Ok(match strategy {
        Strategy::Null => Value::Null,
        Strategy::Keep => value.clone(),
        Strategy::Constant(c) => c.clone(),
        Strategy::Mask => {
            let s = text_of(value).ok_or_else(|| wrong("non-text"))?;
            Value::Text(mask(s))
        }
        Strategy::Redact => {
            let s = text_of(value).ok_or_else(|| wrong("non-text"))?;
            Value::Text(redact(s, ctx.identities))
        }
        Strategy::Hmac => {
            let s = value.to_text().ok_or_else(|| wrong("binary"))?;
            if !kind.accepts_text() {
                return Err(wrong(&format!("{kind:?} column's")));
            }
            // Already pseudonymized (a re-run): leave it, so the strategy is idempotent.
            if is_hmac_output(&s) {
                return Ok(value.clone());
            }
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&ctx.hmac_key)
                .map_err(|e| StrategyError(e.to_string()))?;
            mac.update(s.as_bytes());
            Value::Text(format!(
                "hmac:{}",
                hex::encode(&mac.finalize().into_bytes()[..16])
            ))
        }
        Strategy::Encrypt if value.as_text().is_some_and(|t| t.starts_with("enc:v1:")) => {
            value.clone()
        }
        Strategy::Encrypt => {
            let key = ctx.subject_key.ok_or_else(|| {
                StrategyError(format!(
                    "{}.{}: no subject key for encrypt",
                    cell.table, cell.column
                ))
            })?;
            let plain = match value {
                Value::Bytes(b) => b.clone(),
                v => v.to_text().unwrap_or_default().into_bytes(),
            };
            let sealed = encrypt_cell(&key, ctx.nonce_salt, cell, &plain)?;
            if kind == TypeKind::Bytes {
                Value::Bytes(sealed)
            } else {
                Value::Text(format!(
                    "enc:v1:{}",
                    base64::engine::general_purpose::STANDARD.encode(sealed)
                ))
            }
        }
        Strategy::Generalize(g) => {
            generalize(g, value, kind).ok_or_else(|| wrong(&format!("{kind:?}")))?
        }
    })
}

fn is_hmac_output(s: &str) -> bool {
    s.strip_prefix("hmac:")
        .is_some_and(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `jane.doe@example.com` -> `j***@example.com`; `+49301234567` -> `+49*****4567`;
/// other text keeps its first character.
pub fn mask(s: &str) -> String {
    if let Some((local, domain)) = s.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let n = s.chars().count();
    if digits >= 7 && digits * 10 >= n * 7 {
        let head: String = s.chars().take(3).collect();
        let tail: String = s.chars().skip(n.saturating_sub(4)).collect();
        return format!("{head}{}{tail}", "*".repeat(n.saturating_sub(7)));
    }
    let first: String = s.chars().take(1).collect();
    format!("{first}***")
}

/// Replaces every spelling of the subject's identities in free text.
pub fn redact(s: &str, identities: &[(Normalizer, String)]) -> String {
    let mut text = s.to_string();
    for (n, v) in identities {
        let m = n.matches(v, &text);
        if !m.is_empty() {
            text = replace_ranges(&text, &m, REDACTED);
        }
    }
    text
}

fn generalize(g: &Generalization, v: &Value, kind: TypeKind) -> Option<Value> {
    match (g, v) {
        (Generalization::Year | Generalization::Month, Value::Text(s)) => {
            let date = s.get(..10)?;
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            let cut = match g {
                Generalization::Year => format!("{}-01-01", &date[..4]),
                _ => format!("{}-01", &date[..7]),
            };
            // Keep the value's shape: a timestamp stays a timestamp.
            Some(Value::Text(
                if kind == TypeKind::Timestamp || s.len() > 10 {
                    format!("{cut} 00:00:00")
                } else {
                    cut
                },
            ))
        }
        (Generalization::Range(w), Value::Int(i)) => Some(Value::Int(i.div_euclid(*w) * w)),
        (Generalization::Range(w), Value::Float(f)) => {
            Some(Value::Float((f / *w as f64).floor() * *w as f64))
        }
        (Generalization::Range(w), Value::Text(s)) if kind == TypeKind::Decimal => {
            let f: f64 = s.trim().parse().ok()?;
            Some(Value::Text(format!(
                "{}",
                (f / *w as f64).floor() * *w as f64
            )))
        }
        (Generalization::Prefix(n), Value::Text(s)) => {
            Some(Value::Text(s.chars().take(*n).collect()))
        }
        _ => None,
    }
}

/// AES-256-GCM with a nonce derived from the request and the cell, so a re-run writes the
/// same ciphertext (a nonce is never reused for a different plaintext: each request writes
/// each cell once).
pub fn encrypt_cell(
    key: &[u8; 32],
    salt: &str,
    cell: &Cell<'_>,
    plain: &[u8],
) -> Result<Vec<u8>, StrategyError> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|e| StrategyError(e.to_string()))?;
    mac.update(
        format!(
            "nonce\0{salt}\0{}\0{}\0{}",
            cell.table, cell.column, cell.key
        )
        .as_bytes(),
    );
    let digest = mac.finalize().into_bytes();
    let nonce = &digest[..12];
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| StrategyError(e.to_string()))?;
    let aad = format!("{}.{}", cell.table, cell.column);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|e| StrategyError(e.to_string()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts a value written by `encrypt` (while the subject key still exists).
pub fn decrypt_cell(key: &[u8; 32], table: &str, column: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 + 16 {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let aad = format!("{table}.{column}");
    cipher
        .decrypt(
            Nonce::from_slice(&sealed[..12]),
            Payload {
                msg: &sealed[12..],
                aad: aad.as_bytes(),
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(ids: &'a [(Normalizer, String)]) -> StrategyContext<'a> {
        StrategyContext {
            hmac_key: [7; 32],
            subject_key: Some([9; 32]),
            nonce_salt: "req-1",
            identities: ids,
        }
    }

    fn cell() -> Cell<'static> {
        Cell {
            table: "contacts",
            column: "email",
            key: "1",
        }
    }

    fn ty(d: &str) -> ColumnType {
        ColumnType::from_declared(d)
    }

    #[test]
    fn strategies_by_type() {
        let c = ctx(&[]);
        let t = Value::Text("jane.doe@example.com".into());
        assert_eq!(
            apply(&Strategy::Null, &t, Some(&ty("text")), &cell(), &c).unwrap(),
            Value::Null
        );
        assert_eq!(
            apply(&Strategy::Mask, &t, Some(&ty("text")), &cell(), &c).unwrap(),
            Value::Text("j***@example.com".into())
        );
        let h = apply(&Strategy::Hmac, &t, Some(&ty("text")), &cell(), &c).unwrap();
        assert_eq!(
            h,
            apply(&Strategy::Hmac, &t, Some(&ty("text")), &cell(), &c).unwrap(),
            "deterministic"
        );
        assert!(h.as_text().unwrap().starts_with("hmac:"));
        assert_eq!(
            apply(&Strategy::Hmac, &h, Some(&ty("text")), &cell(), &c).unwrap(),
            h,
            "idempotent"
        );
        let d = Value::Text("1985-04-12".into());
        assert_eq!(
            apply(
                &Strategy::Generalize(Generalization::Year),
                &d,
                Some(&ty("date")),
                &cell(),
                &c
            )
            .unwrap(),
            Value::Text("1985-01-01".into())
        );
        let ts = Value::Text("2019-02-01 10:15:00".into());
        assert_eq!(
            apply(
                &Strategy::Generalize(Generalization::Month),
                &ts,
                Some(&ty("timestamp")),
                &cell(),
                &c
            )
            .unwrap(),
            Value::Text("2019-02-01 00:00:00".into())
        );
        assert_eq!(
            apply(
                &Strategy::Generalize(Generalization::Range(1000)),
                &Value::Int(45_678),
                Some(&ty("integer")),
                &cell(),
                &c
            )
            .unwrap(),
            Value::Int(45_000)
        );
        assert_eq!(
            apply(
                &Strategy::Generalize(Generalization::Prefix(2)),
                &Value::Text("10115".into()),
                Some(&ty("text")),
                &cell(),
                &c
            )
            .unwrap(),
            Value::Text("10".into())
        );
        // Never text into numbers or dates.
        assert!(
            apply(
                &Strategy::Mask,
                &Value::Int(5),
                Some(&ty("integer")),
                &cell(),
                &c
            )
            .is_err()
        );
        assert!(
            apply(
                &Strategy::Hmac,
                &Value::Int(5),
                Some(&ty("integer")),
                &cell(),
                &c
            )
            .is_err()
        );
        assert!(
            apply(
                &Strategy::Generalize(Generalization::Year),
                &Value::Int(5),
                Some(&ty("integer")),
                &cell(),
                &c
            )
            .is_err()
        );
        // NULL stays NULL.
        assert_eq!(
            apply(
                &Strategy::Mask,
                &Value::Null,
                Some(&ty("text")),
                &cell(),
                &c
            )
            .unwrap(),
            Value::Null
        );
    }

    #[test]
    fn encryption_is_deterministic_per_request_and_reversible_until_shredded() {
        let c = ctx(&[]);
        let t = Value::Text("secret".into());
        let a = apply(&Strategy::Encrypt, &t, Some(&ty("text")), &cell(), &c).unwrap();
        assert_eq!(
            a,
            apply(&Strategy::Encrypt, &t, Some(&ty("text")), &cell(), &c).unwrap()
        );
        let body = a.as_text().unwrap().strip_prefix("enc:v1:").unwrap();
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(
            decrypt_cell(&[9; 32], "contacts", "email", &sealed).unwrap(),
            b"secret"
        );
        assert!(decrypt_cell(&[8; 32], "contacts", "email", &sealed).is_none());
    }

    #[test]
    fn redaction_keeps_the_rest_of_the_text() {
        let ids = [
            (Normalizer::Email, "jane.doe@example.com".to_string()),
            (
                Normalizer::Phone {
                    country_code: Some("49".into()),
                },
                "+49301234567".to_string(),
            ),
        ];
        let c = ctx(&ids);
        let v =
            Value::Text("cc: Jane.Doe@example.com, call 030 123 45 67 or bob@example.com".into());
        assert_eq!(
            apply(&Strategy::Redact, &v, Some(&ty("text")), &cell(), &c).unwrap(),
            Value::Text("cc: [redacted], call [redacted] or bob@example.com".into())
        );
    }

    #[test]
    fn masks() {
        assert_eq!(mask("+49301234567"), "+49*****4567");
        assert_eq!(mask("Lindenallee 12"), "L***");
    }
}
