//! Canonical JSON (RFC 8785, JCS): object members sorted by their UTF-16 code units, no
//! insignificant whitespace, ECMAScript number formatting, minimal string escaping. Used
//! for certificate payloads and audit-log hashes, so any JCS implementation reproduces
//! the exact bytes.

use serde_json::Value;

/// Serializes a JSON value canonically.
pub fn to_canonical(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, &mut out);
    out
}

/// Canonical JSON of any serializable value.
pub fn canonical<T: serde::Serialize>(v: &T) -> Result<String, serde_json::Error> {
    Ok(to_canonical(&serde_json::to_value(v)?))
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(x, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push_str(&es_number(f));
    } else {
        out.push_str("null");
    }
}

/// ECMAScript Number::toString for finite doubles.
pub(crate) fn es_number(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    if !f.is_finite() {
        return "null".into();
    }
    let abs = f.abs();
    if (1e-6..1e21).contains(&abs) {
        // Rust's Display gives the shortest round-trip digits in plain notation.
        let s = format!("{f}");
        return s;
    }
    // Exponent form: d.ddde+N / d.ddde-N.
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mant, exp)) if !exp.starts_with('-') => format!("{mant}e+{exp}"),
        _ => s,
    }
}

pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sort_and_whitespace_goes() {
        let v = json!({"b": 1, "a": [true, null, "x"], "c": {"z": 0, "y": -5}});
        assert_eq!(
            to_canonical(&v),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":-5,"z":0}}"#
        );
    }

    #[test]
    fn rfc8785_examples() {
        // Sorting by UTF-16 code units, from RFC 8785 section 3.2.3.
        let v = json!({"\u{20ac}": "Euro Sign", "\r": "Carriage Return", "\u{fb33}": "Hebrew Letter Dalet With Dagesh", "1": "One", "\u{1f600}": "Emoji: Grinning Face", "\u{80}": "Control", "\u{f6}": "Latin Small Letter O With Diaeresis"});
        let c = to_canonical(&v);
        let keys: Vec<&str> = [
            "\\r",
            "1",
            "\u{80}",
            "\u{f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}",
        ]
        .to_vec();
        let mut pos = 0;
        for k in keys {
            let at = c[pos..].find(&format!("\"{k}\"")).map(|p| p + pos);
            assert!(at.is_some(), "{k} after {pos} in {c}");
            pos = at.unwrap_or(0);
        }
        // Numbers, from RFC 8785 appendix B.
        assert_eq!(es_number(1e21), "1e+21");
        assert_eq!(es_number(1e-7), "1e-7");
        assert_eq!(es_number(333333333.3333333), "333333333.3333333");
        assert_eq!(es_number(-0.0), "0");
        assert_eq!(to_canonical(&json!("\u{1}\n")), "\"\\u0001\\n\"");
    }
}

#[cfg(test)]
pub(crate) mod proptests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Number};

    /// Any JSON value (finite numbers only, as JSON has no others).
    pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| Value::Number(i.into())),
            any::<u64>().prop_map(|u| Value::Number(u.into())),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            (-1e6f64..1e6).prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            any::<String>().prop_map(Value::String),
            "[a-z\\\\\"\\n\\u{1}-\\u{1f}\\u{7f}\\u{2028}]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// The same value with every object's members in reverse insertion order.
    fn reversed(v: &Value) -> Value {
        match v {
            Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m.iter().rev() {
                    out.insert(k.clone(), reversed(x));
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    /// Equal as JSON data: numbers by value (an integral double may come back as an
    /// integer, -0 as 0), objects regardless of member order.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
            }
            _ => a == b,
        }
    }

    /// Every object's keys are in UTF-16 code-unit order (read back preserving order).
    fn sorted(v: &Value) -> bool {
        match v {
            Value::Array(a) => a.iter().all(sorted),
            Value::Object(m) => {
                let keys: Vec<Vec<u16>> = m.keys().map(|k| k.encode_utf16().collect()).collect();
                keys.windows(2).all(|w| w[0] < w[1]) && m.values().all(sorted)
            }
            _ => true,
        }
    }

    /// ECMAScript Number::toString shapes: plain digits in [1e-6, 1e21), else d.ddde±N;
    /// no trailing zeros in a fraction, no leading zeros.
    fn es_shape(s: &str) -> bool {
        let s = s.strip_prefix('-').unwrap_or(s);
        let (mant, exp) = match s.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (s, None),
        };
        let (int, frac) = match mant.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (mant, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let int_ok = digits(int) && (int == "0" || !int.starts_with('0'));
        let frac_ok = frac.is_none_or(|f| digits(f) && !f.ends_with('0'));
        let exp_ok = exp.is_none_or(|e| {
            let (sign, n) = e.split_at(1);
            (sign == "+" || sign == "-") && digits(n) && !n.starts_with('0') && int.len() == 1
        });
        int_ok && frac_ok && exp_ok
    }

    /// Found by the properties: serde_json's default float parser was one ULP off for
    /// these, so their canonical text did not read back to the same number (and a
    /// certificate holding one failed verification). `float_roundtrip` fixes it.
    #[test]
    fn floats_read_back_exactly() {
        for f in [-261015.26638550273, -4.698107935318695e-39] {
            let text = es_number(f);
            let back: Value = serde_json::from_str(&text).unwrap_or_default();
            assert_eq!(back.as_f64(), Some(f), "{text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn canonical_is_deterministic_and_order_independent(v in arb_json()) {
            let c = to_canonical(&v);
            prop_assert_eq!(&c, &to_canonical(&v.clone()));
            prop_assert_eq!(&c, &to_canonical(&reversed(&v)));
        }

        #[test]
        fn canonical_round_trips_and_is_a_fixpoint(v in arb_json()) {
            let c = to_canonical(&v);
            let back: Value = serde_json::from_str(&c).map_err(|e| TestCaseError::fail(format!("{e}: {c}")))?;
            prop_assert!(same(&v, &back), "{v} -> {c} -> {back}");
            prop_assert_eq!(&to_canonical(&back), &c, "canonical form of the canonical form");
            prop_assert!(sorted(&back), "{}", c);
        }

        #[test]
        fn strings_are_escaped_minimally(s in any::<String>()) {
            // JCS escapes exactly what JSON requires, like serde_json: '"', '\\', the
            // control characters (short forms where they exist), nothing else.
            let mut out = String::new();
            write_string(&s, &mut out);
            prop_assert_eq!(&out, &serde_json::to_string(&s).unwrap_or_default());
        }

        #[test]
        fn numbers_print_the_ecmascript_way(f in any::<f64>()) {
            prop_assume!(f.is_finite());
            let s = es_number(f);
            let back: f64 = s.parse().map_err(|_| TestCaseError::fail(s.clone()))?;
            prop_assert!(back == f, "{f} printed as {s}");
            prop_assert!(es_shape(&s), "{f} printed as {s}");
            let plain = (1e-6..1e21).contains(&f.abs());
            prop_assert_eq!(!s.contains('e'), plain || f == 0.0, "{}", s);
        }

        #[test]
        fn canonical_json_has_no_whitespace_outside_strings(v in arb_json()) {
            let c = to_canonical(&v);
            let mut in_string = false;
            let mut escaped = false;
            for ch in c.chars() {
                if in_string {
                    match (escaped, ch) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => in_string = false,
                        _ => {}
                    }
                } else {
                    prop_assert!(!ch.is_whitespace(), "{}", c);
                    in_string = ch == '"';
                }
            }
        }
    }
}
