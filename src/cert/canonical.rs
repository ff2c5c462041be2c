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
