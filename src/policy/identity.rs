//! Identity normalizers: turn what a requester typed into the canonical value lethe traces,
//! produce the spellings the residual scan searches for, find those spellings in free text
//! precisely (word boundaries, separators), and mask values for display.
//!
//! Pure functions only; error messages never repeat the raw value (it is personal data and
//! error messages end up in logs).

use std::fmt;

/// How one identity kind is normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalizer {
    /// trim + lowercase, validated shape `local@domain.tld`.
    Email,
    /// E.164 `+<digits>`; national numbers (leading `0`) get the default country code.
    Phone { country_code: Option<String> },
    /// A business reference such as a customer number: optional fixed prefix, digits
    /// zero-padded to a width (`CUST-004711`).
    Reference { prefix: String, digits: Option<u32> },
    /// trim only; compared exactly.
    Text,
}

/// Why an identity value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidIdentity(pub String);

impl fmt::Display for InvalidIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidIdentity {}

fn invalid(msg: impl Into<String>) -> InvalidIdentity {
    InvalidIdentity(msg.into())
}

/// One occurrence of an identity in free text (byte range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub form: &'static str,
}

/// Replaces the given (sorted, non-overlapping) byte ranges of `text` with `with`.
pub fn replace_ranges(text: &str, ranges: &[Match], with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for m in ranges {
        if m.start < at || m.end > text.len() {
            continue;
        }
        out.push_str(&text[at..m.start]);
        out.push_str(with);
        at = m.end;
    }
    out.push_str(&text[at..]);
    out
}

/// A conjunction of alternatives: every group must match, each by any of its substrings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SearchTerm(pub Vec<Vec<String>>);

/// One way an identity value may be written in free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spelling {
    /// The substring to search for (compared case-insensitively).
    pub text: String,
    /// A label for the form, e.g. `url-encoded`.
    pub form: &'static str,
}

impl Normalizer {
    /// The normalizer names accepted in the data map.
    pub const NAMES: [&'static str; 4] = ["email", "phone", "reference", "text"];

    pub fn normalize(&self, raw: &str) -> Result<String, InvalidIdentity> {
        match self {
            Normalizer::Email => normalize_email(raw),
            Normalizer::Phone { country_code } => normalize_phone(raw, country_code.as_deref()),
            Normalizer::Reference { prefix, digits } => normalize_reference(raw, prefix, *digits),
            Normalizer::Text => {
                let v = raw.trim();
                if v.is_empty() {
                    return Err(invalid("is empty"));
                }
                if v.chars().any(char::is_control) {
                    return Err(invalid("contains control characters"));
                }
                Ok(v.to_string())
            }
        }
    }

    /// Substrings the residual scan looks for (each at least three characters, so a
    /// trigram index can serve them). Candidates are then confirmed with [`Self::find`].
    pub fn spellings(&self, normalized: &str) -> Vec<Spelling> {
        match self {
            Normalizer::Email => email_spellings(normalized),
            Normalizer::Phone { country_code } => {
                phone_spellings(normalized, country_code.as_deref())
            }
            Normalizer::Reference { prefix, digits } => {
                reference_spellings(normalized, prefix, *digits)
            }
            Normalizer::Text => vec![Spelling {
                text: normalized.to_string(),
                form: "as written",
            }],
        }
    }

    /// The database-side filter for residual-scan candidates, as OR-of-AND-of-OR: any term
    /// may match; a term needs all of its groups; a group needs any of its substrings. Every
    /// substring has at least three characters (trigram indexes serve them) and is chosen to
    /// be selective; candidates are confirmed with [`Self::find`].
    pub fn search_terms(&self, normalized: &str) -> Vec<SearchTerm> {
        match self {
            Normalizer::Email => {
                // The segments of the local part occur in every spelling (as written,
                // HTML-escaped, URL-encoded) and, searched as separate words, cost far less
                // than one long phrase that shares a common name and domain with many rows.
                let local = normalized.split('@').next().unwrap_or(normalized);
                let segments: Vec<Vec<String>> = local
                    .split(['.', '_', '-', '+'])
                    .filter(|seg| seg.chars().count() >= 3)
                    .map(|seg| vec![seg.to_string()])
                    .collect();
                if segments.is_empty() {
                    vec![SearchTerm(vec![
                        email_spellings(normalized)
                            .into_iter()
                            .map(|s| s.text)
                            .collect(),
                    ])]
                } else {
                    vec![SearchTerm(segments)]
                }
            }
            Normalizer::Phone { country_code } => {
                let digits = normalized.trim_start_matches('+');
                let nsn = country_code
                    .as_deref()
                    .and_then(|cc| digits.strip_prefix(cc))
                    .unwrap_or(digits);
                // The last four digits (possibly split in two) and the three before them
                // occur in every spelling, separated ("030 200 45 67", "(415) 555-0123")
                // or not ("+4930…", "0049…", "030…").
                let n = nsn.len();
                if n < 7 {
                    return vec![SearchTerm(vec![vec![nsn.to_string()]])];
                }
                let last4 = &nsn[n - 4..];
                let mut tail = vec![last4.to_string()];
                for sep in [' ', '-', '.'] {
                    tail.push(format!("{}{sep}{}", &last4[..2], &last4[2..]));
                }
                vec![SearchTerm(vec![tail, vec![nsn[n - 7..n - 4].to_string()]])]
            }
            Normalizer::Reference { prefix, .. } => {
                // Every variant holds the unpadded number and the prefix's letters.
                let p = prefix.to_uppercase();
                let core = p.trim_end_matches(['-', '_', ' ', '#', '/']).to_string();
                let number = normalized
                    .strip_prefix(&p)
                    .unwrap_or(normalized)
                    .trim_start_matches('0');
                if number.len() >= 3 {
                    let mut groups = vec![vec![number.to_string()]];
                    if core.chars().count() >= 3 {
                        groups.push(vec![core]);
                    }
                    vec![SearchTerm(groups)]
                } else {
                    vec![SearchTerm(vec![
                        self.spellings(normalized)
                            .into_iter()
                            .map(|s| s.text)
                            .filter(|t| t.chars().count() >= 3)
                            .collect(),
                    ])]
                }
            }
            Normalizer::Text => vec![SearchTerm(vec![vec![normalized.to_string()]])],
        }
    }

    /// Whether `text` contains the identity in one of its spellings, respecting word
    /// boundaries. Returns the form that matched.
    pub fn find(&self, normalized: &str, text: &str) -> Option<&'static str> {
        self.matches(normalized, text).first().map(|m| m.form)
    }

    /// Every occurrence of the identity in `text` (byte ranges, in order, not overlapping).
    pub fn matches(&self, normalized: &str, text: &str) -> Vec<Match> {
        let mut out = match self {
            Normalizer::Email => {
                let hay = text.to_ascii_lowercase();
                email_spellings(normalized)
                    .into_iter()
                    .flat_map(|s| {
                        bounded_matches(
                            &hay,
                            &s.text.to_ascii_lowercase(),
                            is_email_char,
                            is_email_char,
                        )
                        .into_iter()
                        .map(move |(start, end)| Match {
                            start,
                            end,
                            form: s.form,
                        })
                    })
                    .collect()
            }
            Normalizer::Phone { country_code } => {
                phone_matches(normalized, country_code.as_deref(), text)
            }
            Normalizer::Reference { prefix, digits } => {
                let hay = text.to_ascii_lowercase();
                reference_spellings(normalized, prefix, *digits)
                    .into_iter()
                    .flat_map(|s| {
                        bounded_matches(
                            &hay,
                            &s.text.to_ascii_lowercase(),
                            |c| c.is_alphanumeric(),
                            |c| c.is_ascii_digit(),
                        )
                        .into_iter()
                        .map(move |(start, end)| Match {
                            start,
                            end,
                            form: s.form,
                        })
                    })
                    .collect()
            }
            Normalizer::Text => text
                .match_indices(normalized)
                .map(|(start, m)| Match {
                    start,
                    end: start + m.len(),
                    form: "as written",
                })
                .collect(),
        };
        out.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
        let mut merged: Vec<Match> = Vec::new();
        for m in out {
            match merged.last_mut() {
                Some(last) if m.start < last.end => last.end = last.end.max(m.end),
                _ => merged.push(m),
            }
        }
        merged
    }

    /// A display form that does not reveal the value (`j***@example.com`).
    pub fn mask(&self, normalized: &str) -> String {
        match self {
            Normalizer::Email => match normalized.split_once('@') {
                Some((local, domain)) => {
                    let first: String = local.chars().take(1).collect();
                    format!("{first}***@{domain}")
                }
                None => "***".into(),
            },
            Normalizer::Phone { .. } => {
                let n = normalized.chars().count();
                let tail: String = normalized.chars().skip(n.saturating_sub(3)).collect();
                let head: String = normalized.chars().take(3).collect();
                format!("{head}{}{tail}", "*".repeat(n.saturating_sub(6)))
            }
            Normalizer::Reference { .. } | Normalizer::Text => {
                // The last two characters only when at least three others stay hidden.
                let n = normalized.chars().count();
                if n < 5 {
                    return "***".into();
                }
                let tail: String = normalized.chars().skip(n - 2).collect();
                format!("***{tail}")
            }
        }
    }
}

fn normalize_email(raw: &str) -> Result<String, InvalidIdentity> {
    let v = raw.trim();
    // `mailto:` in any case (`MailTo:` too, so the result never starts with one).
    let v = match v.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &v[7..],
        _ => v,
    };
    let v = v.to_lowercase();
    if v.is_empty() {
        return Err(invalid("is empty"));
    }
    if v.len() > 254 {
        return Err(invalid("is longer than 254 characters"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace"));
    }
    let (local, domain) = v
        .rsplit_once('@')
        .ok_or_else(|| invalid("is not an e-mail address (no '@')"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(invalid("has an empty or too long local part"));
    }
    // RFC 5322 specials are not allowed unquoted (':' also keeps a second `mailto:` out).
    if local.contains('@')
        || local.contains(['<', '>', ',', ';', ':', '"', '\\', '(', ')', '[', ']'])
    {
        return Err(invalid("has characters not allowed in an address"));
    }
    if !domain.contains('.') {
        return Err(invalid("has no domain with a dot"));
    }
    for label in domain.split('.') {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("has an invalid domain"));
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err(invalid("has an invalid domain"));
        }
    }
    Ok(v)
}

fn is_email_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn email_spellings(email: &str) -> Vec<Spelling> {
    let mut out = vec![Spelling {
        text: email.to_string(),
        form: "as written",
    }];
    for (esc, form) in [
        ("&#64;", "HTML-escaped"),
        ("&#x40;", "HTML-escaped"),
        ("&commat;", "HTML-escaped"),
    ] {
        out.push(Spelling {
            text: email.replace('@', esc),
            form,
        });
    }
    let url: String = email
        .chars()
        .map(|c| match c {
            '@' => "%40".to_string(),
            '+' => "%2b".to_string(),
            c => c.to_string(),
        })
        .collect();
    out.push(Spelling {
        text: url,
        form: "URL-encoded",
    });
    out
}

/// Case-sensitive substring search where the characters around the match may not be
/// `before`/`after` characters (so `ann@x.org` is not found inside `joann@x.org`). Returns
/// byte ranges.
fn bounded_matches(
    hay: &str,
    needle: &str,
    before: impl Fn(char) -> bool,
    after: impl Fn(char) -> bool,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if needle.is_empty() {
        return out;
    }
    let mut start = 0;
    while let Some(pos) = hay[start..].find(needle) {
        let at = start + pos;
        let end = at + needle.len();
        let ok_before = hay[..at].chars().next_back().is_none_or(|c| !before(c));
        let mut rest = hay[end..].chars();
        let ok_after = match rest.next() {
            None => true,
            // A trailing dot ends a sentence unless a domain label follows it.
            Some('.') => rest.next().is_none_or(|c| !c.is_alphanumeric()),
            Some(c) => !after(c),
        };
        if ok_before && ok_after {
            out.push((at, end));
            start = end;
        } else {
            start = at + hay[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

const PHONE_SEPARATORS: [char; 6] = [' ', '-', '.', '/', '(', ')'];

fn normalize_phone(raw: &str, country_code: Option<&str>) -> Result<String, InvalidIdentity> {
    let v = raw.trim().replace("(0)", "");
    if v.is_empty() {
        return Err(invalid("is empty"));
    }
    let (international, body) = match v.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, v.as_str()),
    };
    let mut digits = String::with_capacity(body.len());
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !PHONE_SEPARATORS.contains(&c) && c != '\u{a0}' {
            return Err(invalid(
                "is not a phone number (only digits, '+' and separators are allowed)",
            ));
        }
    }
    let full = if international {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        match country_code {
            Some(cc) => format!("{cc}{rest}"),
            None => {
                return Err(invalid(
                    "is a national number but the data map sets no default_country_code",
                ));
            }
        }
    } else {
        digits
    };
    if full.starts_with('0') {
        return Err(invalid("has an invalid country code"));
    }
    if !(8..=15).contains(&full.len()) {
        return Err(invalid(
            "is not a phone number (E.164 allows 8 to 15 digits)",
        ));
    }
    Ok(format!("+{full}"))
}

fn phone_spellings(normalized: &str, country_code: Option<&str>) -> Vec<Spelling> {
    let digits = normalized.trim_start_matches('+');
    let national = country_code.and_then(|cc| digits.strip_prefix(cc));
    let mut out = Vec::new();
    match national {
        // The national significant number is a substring of every unseparated spelling
        // (+49…, 0049…, 0…).
        Some(nsn) => out.push(Spelling {
            text: nsn.to_string(),
            form: "digits",
        }),
        None => out.push(Spelling {
            text: digits.to_string(),
            form: "digits",
        }),
    }
    // Separated spellings ("+49 30 123 45 67"): anchor on the last four digits, with or
    // without a separator in the middle; candidates are confirmed by `find_phone`.
    let n = digits.len();
    if n >= 4 {
        let last4 = &digits[n - 4..];
        out.push(Spelling {
            text: last4.to_string(),
            form: "separated digits",
        });
        for sep in [' ', '-', '.'] {
            out.push(Spelling {
                text: format!("{}{sep}{}", &last4[..2], &last4[2..]),
                form: "separated digits",
            });
        }
    }
    out
}

/// Finds a phone number in free text whatever its separators, country code or trunk prefix.
fn phone_matches(normalized: &str, country_code: Option<&str>, text: &str) -> Vec<Match> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |ci: usize| chars.get(ci).map_or(text.len(), |(b, _)| *b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let starts = c.is_ascii_digit() || (c == '+' || c == '(') && i + 1 < chars.len();
        let preceded_by_word = i > 0 && chars[i - 1].1.is_alphanumeric();
        if !starts || preceded_by_word {
            i += 1;
            continue;
        }
        // Collect a run of digit groups separated by at most two separator characters:
        // (digits, first char index, one past the last char index).
        let mut groups: Vec<(String, usize, usize)> = Vec::new();
        let mut plus = c == '+';
        let mut j = if plus { i + 1 } else { i };
        let mut current = String::new();
        let mut current_start = j;
        let mut seps = 0;
        let mut digits_end = j;
        while j < chars.len() {
            let d = chars[j].1;
            // "+49 (0)30 ...": the bracketed trunk prefix is not part of the number.
            if d == '('
                && plus
                && chars.get(j + 1).map(|x| x.1) == Some('0')
                && chars.get(j + 2).map(|x| x.1) == Some(')')
            {
                if !current.is_empty() {
                    groups.push((std::mem::take(&mut current), current_start, j));
                }
                j += 3;
                seps = 1;
                continue;
            }
            if d.is_ascii_digit() {
                if current.is_empty() {
                    current_start = j;
                }
                current.push(d);
                seps = 0;
                digits_end = j + 1;
            } else if (PHONE_SEPARATORS.contains(&d) || d == '\u{a0}') && seps < 2 {
                if !current.is_empty() {
                    groups.push((std::mem::take(&mut current), current_start, j));
                }
                seps += 1;
            } else if d == '+' && groups.is_empty() && current.is_empty() {
                plus = true;
            } else {
                break;
            }
            j += 1;
        }
        if !current.is_empty() {
            groups.push((current, current_start, digits_end));
        }
        let followed_by_word = digits_end < chars.len() && chars[digits_end].1.is_alphanumeric();
        let mut resume = j.max(i + 1);
        if !followed_by_word {
            // Try every window of consecutive groups: a run may hold two numbers.
            'windows: for a in 0..groups.len() {
                let mut joined = String::new();
                for b in a..groups.len() {
                    joined.push_str(&groups[b].0);
                    let written = if plus && a == 0 {
                        format!("+{joined}")
                    } else {
                        joined.clone()
                    };
                    if normalize_phone(&written, country_code).is_ok_and(|n| n == normalized) {
                        let start = if a == 0 { i } else { groups[a].1 };
                        out.push(Match {
                            start: byte_at(start),
                            end: byte_at(groups[b].2),
                            form: if b > a { "separated digits" } else { "digits" },
                        });
                        if b + 1 < groups.len() {
                            resume = groups[b + 1].1;
                        }
                        break 'windows;
                    }
                }
            }
        }
        i = resume;
    }
    out
}

fn normalize_reference(
    raw: &str,
    prefix: &str,
    width: Option<u32>,
) -> Result<String, InvalidIdentity> {
    let v = raw.trim().to_uppercase();
    if v.is_empty() {
        return Err(invalid("is empty"));
    }
    if prefix.is_empty() {
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace"));
        }
        return Ok(pad(&v, width));
    }
    let p = prefix.to_uppercase();
    let core = p.trim_end_matches(['-', '_', ' ', '#', '/']);
    let number = if let Some(rest) = v.strip_prefix(&p) {
        // Separators after the prefix are not part of the number (`AA-1` for prefix `AA`).
        rest.trim_start_matches(['-', '_', ' ', '#', '/'])
    } else if let Some(rest) = v.strip_prefix(core) {
        rest.trim_start_matches(['-', '_', ' ', '#', '/'])
    } else {
        v.as_str()
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(format!(
            "is not a reference of the form {p}<digits>"
        )));
    }
    if let Some(w) = width
        && number.trim_start_matches('0').len() > w as usize
    {
        return Err(invalid(format!("has more than {w} digits")));
    }
    Ok(format!("{p}{}", pad(number.trim_start_matches('0'), width)))
}

fn pad(number: &str, width: Option<u32>) -> String {
    match width {
        Some(w) => format!("{number:0>w$}", w = w as usize),
        None if number.is_empty() => "0".into(),
        None => number.to_string(),
    }
}

fn reference_spellings(normalized: &str, prefix: &str, width: Option<u32>) -> Vec<Spelling> {
    let p = prefix.to_uppercase();
    let core = p.trim_end_matches(['-', '_', ' ', '#', '/']).to_string();
    let number = normalized.strip_prefix(&p).unwrap_or(normalized);
    let unpadded = number.trim_start_matches('0');
    let mut numbers = vec![number.to_string()];
    if width.is_some() && !unpadded.is_empty() && unpadded != number {
        numbers.push(unpadded.to_string());
    }
    let mut out = Vec::new();
    for num in &numbers {
        let mut prefixes = vec![p.clone()];
        if !core.is_empty() {
            for sep in ["", "-", " ", "#", "_"] {
                let candidate = format!("{core}{sep}");
                if !prefixes.contains(&candidate) {
                    prefixes.push(candidate);
                }
            }
        }
        for pre in prefixes {
            let text = format!("{pre}{num}");
            if text.len() >= 3 && !out.iter().any(|s: &Spelling| s.text == text) {
                out.push(Spelling {
                    text,
                    form: if pre == p && num == number {
                        "as written"
                    } else {
                        "variant spelling"
                    },
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Normalizer {
        Normalizer::Phone {
            country_code: Some("49".into()),
        }
    }

    fn reference() -> Normalizer {
        Normalizer::Reference {
            prefix: "CUST-".into(),
            digits: Some(6),
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        let n = Normalizer::Email;
        assert_eq!(
            n.normalize("  Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert_eq!(n.normalize("mailto:a@b.de").unwrap(), "a@b.de");
        for bad in [
            "",
            "jane",
            "jane@",
            "@x.de",
            "jane@localhost",
            "ja ne@x.de",
            "a@-x.de",
            "a@x..de",
        ] {
            assert!(n.normalize(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn errors_do_not_repeat_the_value() {
        let err = Normalizer::Email.normalize("secret-person").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn phones_become_e164() {
        let n = phone();
        for raw in [
            "+49 30 1234567",
            "030 1234567",
            "0049-30-1234567",
            "+49 (0)30 123 45 67",
            "(030) 1234567",
            "4930/1234567",
        ] {
            assert_eq!(n.normalize(raw).unwrap(), "+49301234567", "{raw}");
        }
        assert!(n.normalize("12ab34").is_err());
        assert!(n.normalize("123").is_err());
        assert!(n.normalize("+0123456789").is_err());
        let no_cc = Normalizer::Phone { country_code: None };
        assert!(no_cc.normalize("030 1234567").is_err());
        assert_eq!(
            no_cc.normalize("+44 20 7946 0958").unwrap(),
            "+442079460958"
        );
    }

    #[test]
    fn references_are_padded() {
        let n = reference();
        for raw in [
            "CUST-004711",
            "cust-4711",
            "CUST4711",
            "4711",
            "cust 004711",
            " CUST-4711 ",
        ] {
            assert_eq!(n.normalize(raw).unwrap(), "CUST-004711", "{raw}");
        }
        assert!(n.normalize("CUST-47a").is_err());
        assert!(n.normalize("CUST-1234567").is_err());
    }

    #[test]
    fn email_found_in_spellings_but_not_inside_longer_addresses() {
        let n = Normalizer::Email;
        let e = "ann@example.com";
        assert_eq!(
            n.find(e, "Mail from ANN@Example.com today"),
            Some("as written")
        );
        assert_eq!(
            n.find(e, "<a href=\"mailto:ann%40example.com\">"),
            Some("URL-encoded")
        );
        assert_eq!(n.find(e, "ann&#64;example.com"), Some("HTML-escaped"));
        assert_eq!(n.find(e, "Write to ann@example.com."), Some("as written"));
        assert_eq!(n.find(e, "joann@example.com"), None);
        assert_eq!(n.find(e, "ann@example.com.au"), None);
        assert_eq!(n.find(e, "ann@example.community"), None);
    }

    #[test]
    fn phone_found_with_any_separators() {
        let n = phone();
        let p = "+49301234567";
        for text in [
            "Call +49 30 1234567 tomorrow",
            "Tel. 030/123 45 67",
            "tel:+49301234567",
            "Ruf an: 0049 30 1234567!",
            "numbers 030 7654321, 030-1234567",
            "0301234567",
            "call 030 1234567 030 7654321",
        ] {
            assert!(n.find(p, text).is_some(), "{text}");
        }
        for text in [
            "order 301234567890",
            "030 1234568",
            "ID 4930123456799",
            "x0301234567",
        ] {
            assert!(n.find(p, text).is_none(), "{text}");
        }
    }

    #[test]
    fn reference_found_as_typed_by_staff() {
        let n = reference();
        let r = "CUST-004711";
        assert!(n.find(r, "re customer cust-4711, see ticket").is_some());
        assert!(n.find(r, "Kunde CUST004711").is_some());
        assert!(n.find(r, "CUST-0047112").is_none());
        assert!(n.find(r, "XCUST-004711").is_none());
    }

    #[test]
    fn spellings_are_index_friendly() {
        for (n, v) in [
            (Normalizer::Email, "a@b.de"),
            (phone(), "+49301234567"),
            (reference(), "CUST-004711"),
        ] {
            for s in n.spellings(v) {
                assert!(s.text.chars().count() >= 3, "{s:?}");
            }
        }
    }

    #[test]
    fn search_terms_cover_every_spelling() {
        // Each spelling that `find` accepts contains, for some term, a substring of every
        // group: the database filter never drops a true match.
        let covers = |terms: &[SearchTerm], text: &str| {
            let t = text.to_lowercase();
            terms.iter().any(|term| {
                term.0
                    .iter()
                    .all(|g| g.iter().any(|s| t.contains(&s.to_lowercase())))
            })
        };
        let e = "jane.doe+crm@example.com";
        let terms = Normalizer::Email.search_terms(e);
        for text in [
            "JANE.DOE+CRM@example.com",
            "jane.doe+crm&#64;example.com",
            "mailto:jane.doe%2Bcrm%40example.com",
        ] {
            assert!(Normalizer::Email.find(e, text).is_some(), "{text}");
            assert!(covers(&terms, text), "{text}");
        }
        let p = phone();
        let terms = p.search_terms("+49301234567");
        for text in [
            "+49 30 1234567",
            "030/123 45 67",
            "0049301234567",
            "030-123-4567",
            "(030) 123 45-67",
        ] {
            assert!(p.find("+49301234567", text).is_some(), "{text}");
            assert!(covers(&terms, text), "{text}");
        }
        for t in terms.iter().flat_map(|t| t.0.iter().flatten()) {
            assert!(t.chars().count() >= 3, "{t}");
        }
        let r = reference();
        for value in ["CUST-0047110", "CUST-0000007"] {
            let terms = r.search_terms(value);
            for text in [
                value.to_string(),
                value.replace('-', ""),
                format!("cust-{}", value[5..].trim_start_matches('0')),
            ] {
                assert!(r.find(value, &text).is_some(), "{text}");
                assert!(covers(&terms, &text), "{text}");
            }
        }
    }

    #[test]
    fn matches_give_ranges_for_redaction() {
        let e = Normalizer::Email;
        let text =
            "cc: Jane.Doe@Example.com and jane.doe%40example.com, not joanne.doe@example.com";
        let m = e.matches("jane.doe@example.com", text);
        assert_eq!(m.len(), 2);
        assert_eq!(
            replace_ranges(text, &m, "[redacted]"),
            "cc: [redacted] and [redacted], not joanne.doe@example.com"
        );
        let p = phone();
        let text = "Ruf an: +49 (0)30 123 45 67 oder 030 7654321.";
        let m = p.matches("+49301234567", text);
        assert_eq!(
            replace_ranges(text, &m, "[redacted]"),
            "Ruf an: [redacted] oder 030 7654321."
        );
        let text = "call 030 1234567 030 7654321";
        assert_eq!(
            replace_ranges(text, &p.matches("+49301234567", text), "X"),
            "call X 030 7654321"
        );
        let r = reference();
        let text = "Kunde CUST-0047110 / cust-47110!";
        assert_eq!(
            replace_ranges(text, &r.matches("CUST-0047110", text), "#"),
            "Kunde # / #!"
        );
    }

    #[test]
    fn masks_hide_the_value() {
        assert_eq!(
            Normalizer::Email.mask("jane.doe@example.com"),
            "j***@example.com"
        );
        assert_eq!(phone().mask("+49301234567"), "+49******567");
        assert_eq!(reference().mask("CUST-004711"), "***11");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn normalizers() -> impl Strategy<Value = Normalizer> {
        prop_oneof![
            Just(Normalizer::Email),
            Just(Normalizer::Text),
            proptest::option::of("[1-9][0-9]{0,2}")
                .prop_map(|country_code| Normalizer::Phone { country_code }),
            ("[A-Za-z]{0,5}[-_ #/]?", proptest::option::of(1u32..=12))
                .prop_map(|(prefix, digits)| Normalizer::Reference { prefix, digits }),
        ]
    }

    /// Whether the database filter (any term; all groups; any substring) lets `text` through.
    fn covers(terms: &[SearchTerm], text: &str) -> bool {
        let t = text.to_lowercase();
        terms.iter().any(|term| {
            term.0
                .iter()
                .all(|g| g.iter().any(|s| t.contains(&s.to_lowercase())))
        })
    }

    fn check_ranges(text: &str, ms: &[Match]) -> Result<(), TestCaseError> {
        let mut at = 0;
        for m in ms {
            prop_assert!(
                m.start >= at && m.start < m.end && m.end <= text.len(),
                "{ms:?}"
            );
            prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            at = m.end;
        }
        Ok(())
    }

    /// An e-mail address as people type it: any case, padding, `mailto:`.
    fn typed_email() -> impl Strategy<Value = (String, String)> {
        (
            "[a-z0-9]{1,8}([._+-][a-z0-9]{1,8}){0,3}",
            "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,2}\\.[a-z]{2,6}",
            any::<u64>(),
            prop_oneof![Just(""), Just("mailto:"), Just("MAILTO:"), Just("MailTo:")],
            "[ \t]{0,2}",
        )
            .prop_map(|(local, domain, case, scheme, pad)| {
                let normalized = format!("{local}@{domain}");
                let typed: String = normalized
                    .chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if case >> (i % 64) & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                (format!("{pad}{scheme}{typed}{pad}"), normalized)
            })
    }

    /// Cases the properties found (kept as plain tests).
    #[test]
    fn found_by_the_properties() {
        // `MailTo:` was kept (any case but two), and `mailto:mailto:` normalized twice.
        let e = Normalizer::Email;
        assert_eq!(e.normalize("MailTo:a@0.aa"), Ok("a@0.aa".to_string()));
        assert!(e.normalize("mailto:mailto:a@b.de").is_err());
        // Short values were shown whole after the stars.
        assert_eq!(Normalizer::Text.mask("!"), "***");
        assert_eq!(Normalizer::Text.mask("abcd"), "***");
        assert_eq!(Normalizer::Text.mask("abcde"), "***de");
        // A separator after a prefix without one (`AA-1` for prefix `AA`) was refused,
        // although the residual scan finds it.
        let r = Normalizer::Reference {
            prefix: "AA".into(),
            digits: None,
        };
        assert_eq!(r.normalize("AA-1"), Ok("AA1".to_string()));
        assert!(r.find("AA1", "see AA-1").is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn normalizing_never_panics_and_is_idempotent(n in normalizers(), raw in any::<String>()) {
            if let Ok(v) = n.normalize(&raw) {
                prop_assert_eq!(n.normalize(&v), Ok(v.clone()), "normalize({:?}) = {:?}", raw, v);
                // Everything downstream of a normalized value is total.
                let _ = n.spellings(&v);
                let _ = n.search_terms(&v);
                let _ = n.mask(&v);
            }
        }

        #[test]
        fn normalizing_typed_lookalikes_is_idempotent(
            n in normalizers(),
            raw in "(mailto:|MAILTO:|\\+|00|0| |\\(0\\))*[A-Za-z0-9@.:+() /#_-]{0,30}",
        ) {
            if let Ok(v) = n.normalize(&raw) {
                prop_assert_eq!(n.normalize(&v), Ok(v.clone()), "normalize({:?}) = {:?}", raw, v);
            }
        }

        #[test]
        fn errors_never_repeat_the_value(n in normalizers(), raw in "[a-z]{12,20}[^@]{0,5}") {
            if let Err(e) = n.normalize(&raw) {
                prop_assert!(!e.to_string().contains(raw.trim()), "{e}");
            }
        }

        #[test]
        fn masks_never_reveal_the_value(n in normalizers(), raw in any::<String>()) {
            if let Ok(v) = n.normalize(&raw) {
                let m = n.mask(&v);
                // Only a value with a '*' of its own can be "in" a mask by the mask's stars.
                prop_assert!(v.contains('*') || !m.contains(&v), "mask {m:?} reveals {v:?}");
            }
        }

        #[test]
        fn matching_any_text_is_total_and_gives_clean_ranges(
            n in normalizers(),
            raw in "[A-Za-z0-9@.+ -]{1,20}",
            text in any::<String>(),
        ) {
            if let Ok(v) = n.normalize(&raw) {
                let ms = n.matches(&v, &text);
                check_ranges(&text, &ms)?;
                let _ = replace_ranges(&text, &ms, "[redacted]");
            }
        }

        #[test]
        fn emails_are_normalized_found_in_every_spelling_and_covered(
            (typed, normalized) in typed_email(),
            before in "[a-z ]{0,12}",
            after in "[a-z ]{0,12}",
        ) {
            let n = Normalizer::Email;
            prop_assert_eq!(n.normalize(&typed), Ok(normalized.clone()));
            let terms = n.search_terms(&normalized);
            for s in n.spellings(&normalized) {
                let text = format!("{before} {} {after}", s.text.to_uppercase());
                prop_assert!(n.find(&normalized, &text).is_some(), "{s:?} not found in {text:?}");
                prop_assert!(covers(&terms, &text), "{s:?} not covered by {terms:?}");
                // Redacting every match leaves nothing for the verifier's re-scan.
                let redacted = replace_ranges(&text, &n.matches(&normalized, &text), "[redacted]");
                prop_assert!(n.find(&normalized, &redacted).is_none(), "{redacted:?}");
            }
            for t in terms.iter().flat_map(|t| t.0.iter().flatten()) {
                prop_assert!(t.chars().count() >= 3, "{t:?}");
            }
        }

        #[test]
        fn phone_numbers_are_found_however_written_and_covered(
            cc in prop_oneof![Just("49"), Just("44"), Just("1"), Just("33"), Just("353")],
            nsn in "[1-9][0-9]{6,10}",
            head_split in 0usize..4,
            lead in prop_oneof![Just("+{cc}"), Just("00{cc}"), Just("0"), Just("+{cc} (0)")],
            seps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-"), Just("/"), Just(".")], 4),
            mid in prop_oneof![Just(""), Just(" "), Just("-"), Just(".")],
        ) {
            prop_assume!(cc.len() + nsn.len() <= 15);
            let n = Normalizer::Phone { country_code: Some(cc.to_string()) };
            let normalized = format!("+{cc}{nsn}");
            let len = nsn.len();
            // The head of the number in up to two groups, the three digits before the last
            // four, and the last four (possibly split in the middle).
            // Written in parts with one separator (or none) between them: the head of the
            // number in up to two groups, the three digits before the last four, and the
            // last four (possibly split in the middle).
            let head = &nsn[..len - 7];
            let cut = head_split.min(head.len());
            let parts = [
                lead.replace("{cc}", cc),
                head[..cut].to_string(),
                head[cut..].to_string(),
                nsn[len - 7..len - 4].to_string(),
                format!("{}{mid}{}", &nsn[len - 4..len - 2], &nsn[len - 2..]),
            ];
            let mut written = String::new();
            for (i, part) in parts.iter().filter(|p| !p.is_empty()).enumerate() {
                if i > 0 {
                    written.push_str(seps[i - 1]);
                }
                written.push_str(part);
            }
            prop_assume!(n.normalize(&written).is_ok());
            prop_assert_eq!(n.normalize(&written), Ok(normalized.clone()), "{}", written);
            let text = format!("Ruf an: {written} danke");
            prop_assert!(n.find(&normalized, &text).is_some(), "{text:?}");
            prop_assert!(covers(&n.search_terms(&normalized), &text), "{text:?}");
            let redacted = replace_ranges(&text, &n.matches(&normalized, &text), "[redacted]");
            prop_assert!(n.find(&normalized, &redacted).is_none(), "{redacted:?}");
        }

        #[test]
        fn references_are_found_in_every_spelling_and_covered(
            core in "[A-Z]{2,5}",
            sep in prop_oneof![Just(""), Just("-"), Just("_"), Just("#")],
            digits in proptest::option::of(4u32..=9),
            number in 1u64..10_000,
        ) {
            let n = Normalizer::Reference { prefix: format!("{core}{sep}"), digits };
            let normalized = n.normalize(&format!("{}{number}", core.to_lowercase())).unwrap();
            prop_assert_eq!(n.normalize(&normalized), Ok(normalized.clone()));
            let terms = n.search_terms(&normalized);
            for s in n.spellings(&normalized) {
                let text = format!("re: {} thanks", s.text.to_lowercase());
                prop_assert!(n.find(&normalized, &text).is_some(), "{s:?} in {text:?}");
                prop_assert!(covers(&terms, &text), "{s:?} not covered by {terms:?}");
                prop_assert_eq!(n.normalize(&s.text), Ok(normalized.clone()), "{:?}", s);
            }
        }
    }
}
