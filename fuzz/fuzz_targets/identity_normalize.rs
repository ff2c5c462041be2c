//! Identity normalizers: the first byte picks a normalizer, the rest is what a requester
//! typed (and, after a NUL, free text to search). Normalizing is idempotent, masks never
//! contain the value, matches are clean byte ranges, nothing panics.
#![no_main]

use lethe::policy::{Normalizer, replace_ranges};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let (raw, text) = rest.split_once('\0').unwrap_or((rest, rest));
    let n = match pick % 6 {
        0 => Normalizer::Email,
        1 => Normalizer::Text,
        2 => Normalizer::Phone {
            country_code: Some("49".into()),
        },
        3 => Normalizer::Phone { country_code: None },
        4 => Normalizer::Reference {
            prefix: "CUST-".into(),
            digits: Some(7),
        },
        _ => Normalizer::Reference {
            prefix: String::new(),
            digits: None,
        },
    };
    let Ok(v) = n.normalize(raw) else {
        return;
    };
    assert_eq!(n.normalize(&v).as_deref(), Ok(v.as_str()), "idempotent");
    // (Only a value with a '*' of its own can be "in" a mask by the mask's stars.)
    assert!(
        v.contains('*') || !n.mask(&v).contains(&v),
        "mask reveals the value"
    );
    let _ = n.spellings(&v);
    let _ = n.search_terms(&v);
    let ms = n.matches(&v, text);
    let mut at = 0;
    for m in &ms {
        assert!(m.start >= at && m.start < m.end && m.end <= text.len());
        assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        at = m.end;
    }
    let _ = replace_ranges(text, &ms, "[redacted]");
});
