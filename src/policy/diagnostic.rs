//! Diagnostics for policy files: every problem names the file, the line and the key.

use std::fmt;
use std::sync::Arc;

/// Where a policy item was written: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u32,
}

impl Origin {
    pub fn new(file: &Arc<str>, src: &str, offset: usize) -> Self {
        Origin {
            file: file.clone(),
            line: line_of(src, offset),
        }
    }

    /// An origin for items that do not come from a file (built in defaults, tests).
    pub fn builtin() -> Self {
        Origin {
            file: Arc::from("<built-in>"),
            line: 0,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(src: &str, offset: usize) -> u32 {
    let end = offset.min(src.len());
    let newlines = src.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding of the validator or the linter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub at: Origin,
    /// Dotted key path, e.g. `tables.deals.links[0].from`.
    pub key: String,
    pub message: String,
}

impl Diagnostic {
    pub fn error(at: &Origin, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            at: at.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn warning(at: &Origin, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            at: at.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.key.is_empty() {
            write!(f, "{}: {}: {}", self.at, sev, self.message)
        } else {
            write!(f, "{}: {}: {}: {}", self.at, sev, self.key, self.message)
        }
    }
}

/// A list of diagnostics that contains at least one error.
#[derive(Debug, Clone)]
pub struct PolicyErrors(pub Vec<Diagnostic>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<_> = self.0.iter().filter(|d| d.is_error()).collect();
        write!(f, "{} error(s) in the policy files", errors.len())?;
        for d in errors {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// "did you mean" suggestion: the closest candidate within a small edit distance.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!(" (did you mean \"{c}\"?)"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let src = "a\nb\nc";
        assert_eq!(line_of(src, 0), 1);
        assert_eq!(line_of(src, 2), 2);
        assert_eq!(line_of(src, 4), 3);
        assert_eq!(line_of(src, 100), 3);
    }

    #[test]
    fn suggestions_pick_close_names() {
        assert_eq!(
            suggest("contact", ["contacts", "deals"]),
            " (did you mean \"contacts\"?)"
        );
        assert_eq!(suggest("zzz", ["contacts", "deals"]), "");
    }
}
