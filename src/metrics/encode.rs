//! The Prometheus text exposition format (version 0.0.4), written by hand: one `# HELP` and
//! one `# TYPE` line per metric family, then its series. Pure: no I/O, no clock.
//!
//! Output is stable: families are sorted by name and the series of a family by their label
//! values, so two scrapes of the same state are byte-identical. Label values are escaped
//! (`\\`, `\"`, `\n`), HELP text too (`\\`, `\n`). Histograms are written with cumulative
//! `_bucket` series ending in `le="+Inf"`, then `_sum` and `_count`.

use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family's values mean to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (resets with the process or never).
    Counter,
    /// Any current value.
    Gauge,
    /// Observations in buckets, with their sum and count.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Observations counted in buckets with upper bounds `bounds` (ascending; the implicit last
/// bucket is `+Inf`).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds of the finite buckets, ascending.
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more entry than `bounds` (`+Inf`).
    pub counts: Vec<u64>,
    /// The sum of all observations.
    pub sum: f64,
}

impl Histogram {
    /// An empty histogram with these bucket bounds.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Counts one observation (negative and NaN observations count as 0).
    pub fn observe(&mut self, value: f64) {
        let v = if value.is_nan() || value < 0.0 {
            0.0
        } else {
            value
        };
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
    }

    /// How many observations there are.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// One series' value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter's or gauge's number.
    Number(f64),
    /// A histogram.
    Histogram(Histogram),
}

/// One series: label values (in the order of the family's label names) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<String>,
    pub value: Value,
}

/// A metric family: a name, its help text and kind, label names and series.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub label_names: &'static [&'static str],
    pub series: Vec<Series>,
}

impl Family {
    /// An empty family.
    pub fn new(
        name: &'static str,
        help: &'static str,
        kind: Kind,
        label_names: &'static [&'static str],
    ) -> Family {
        Family {
            name,
            help,
            kind,
            label_names,
            series: Vec::new(),
        }
    }

    /// Adds a counter or gauge series.
    pub fn number(&mut self, labels: &[&str], value: f64) {
        self.series.push(Series {
            labels: labels.iter().map(|s| (*s).to_string()).collect(),
            value: Value::Number(value),
        });
    }

    /// Adds a histogram series.
    pub fn histogram(&mut self, labels: Vec<String>, h: Histogram) {
        self.series.push(Series {
            labels,
            value: Value::Histogram(h),
        });
    }
}

/// Whether `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A label value escaped for the exposition: backslash, double quote and line feed.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text escaped: backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal.
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn label_set(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label_value(v)))
        .collect();
    if let Some((n, v)) = extra {
        parts.push(format!("{n}=\"{}\"", escape_label_value(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Encodes families in the text format, sorted by name, each family's series sorted by
/// label values. A family with an invalid name, or a series whose label count does not
/// match the family's label names, is left out (and is a defect the tests catch).
pub fn encode(families: &[Family]) -> String {
    let mut sorted: Vec<&Family> = families
        .iter()
        .filter(|f| valid_metric_name(f.name) && f.label_names.iter().all(|l| valid_label_name(l)))
        .collect();
    sorted.sort_by(|a, b| a.name.cmp(b.name));
    let mut out = String::new();
    for f in sorted {
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        let mut series: Vec<&Series> = f
            .series
            .iter()
            .filter(|s| s.labels.len() == f.label_names.len())
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        for s in series {
            match &s.value {
                Value::Number(v) => {
                    let _ = writeln!(
                        out,
                        "{}{} {}",
                        f.name,
                        label_set(f.label_names, &s.labels, None),
                        format_number(*v)
                    );
                }
                Value::Histogram(h) => {
                    let mut cumulative = 0u64;
                    for (i, c) in h.counts.iter().enumerate() {
                        cumulative += c;
                        let le = h
                            .bounds
                            .get(i)
                            .map_or_else(|| "+Inf".to_string(), |b| format_number(*b));
                        let _ = writeln!(
                            out,
                            "{}_bucket{} {cumulative}",
                            f.name,
                            label_set(f.label_names, &s.labels, Some(("le", &le)))
                        );
                    }
                    let labels = label_set(f.label_names, &s.labels, None);
                    let _ = writeln!(out, "{}_sum{labels} {}", f.name, format_number(h.sum));
                    let _ = writeln!(out, "{}_count{labels} {}", f.name, h.count());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.1, 1.0, 2.5];

    #[test]
    fn counters_and_gauges_have_help_type_and_sorted_series() {
        let mut g = Family::new(
            "lethe_requests",
            "Requests by state.",
            Kind::Gauge,
            &["state"],
        );
        g.number(&["verified"], 2.0);
        g.number(&["completed"], 5.0);
        let mut c = Family::new("a_total", "First.", Kind::Counter, &[]);
        c.number(&[], 1.5);
        let text = encode(&[g, c]);
        assert_eq!(
            text,
            "# HELP a_total First.\n# TYPE a_total counter\na_total 1.5\n\
             # HELP lethe_requests Requests by state.\n# TYPE lethe_requests gauge\n\
             lethe_requests{state=\"completed\"} 5\nlethe_requests{state=\"verified\"} 2\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        let mut f = Family::new("m", "line one\nback\\slash", Kind::Gauge, &["l"]);
        f.number(&["q\"uote\\\n"], 1.0);
        let text = encode(&[f]);
        assert!(
            text.contains("# HELP m line one\\nback\\\\slash\n"),
            "{text}"
        );
        assert!(text.contains("m{l=\"q\\\"uote\\\\\\n\"} 1\n"), "{text}");
        // Every line is one line: no raw line feed survived inside a value.
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let mut h = Histogram::new(BOUNDS);
        for v in [0.05, 0.1, 0.7, 3.0, 100.0, -1.0, f64::NAN] {
            h.observe(v);
        }
        assert_eq!(h.counts, vec![4, 1, 0, 2]);
        assert_eq!(h.count(), 7);
        let mut f = Family::new("d_seconds", "Durations.", Kind::Histogram, &["route"]);
        f.histogram(vec!["/x/{id}".into()], h);
        let text = encode(&[f]);
        let expected = "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
            d_seconds_bucket{route=\"/x/{id}\",le=\"0.1\"} 4\n\
            d_seconds_bucket{route=\"/x/{id}\",le=\"1\"} 5\n\
            d_seconds_bucket{route=\"/x/{id}\",le=\"2.5\"} 5\n\
            d_seconds_bucket{route=\"/x/{id}\",le=\"+Inf\"} 7\n\
            d_seconds_sum{route=\"/x/{id}\"} 103.85\n\
            d_seconds_count{route=\"/x/{id}\"} 7\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn numbers_are_formatted_like_prometheus() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(0.005), "0.005");
        assert_eq!(format_number(1_700_000_000.25), "1700000000.25");
        assert_eq!(format_number(f64::INFINITY), "+Inf");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_number(f64::NAN), "NaN");
    }

    #[test]
    fn names_are_checked_and_bad_families_or_series_are_left_out() {
        assert!(valid_metric_name("lethe_jobs:rate5m"));
        assert!(
            !valid_metric_name("9lives") && !valid_metric_name("a-b") && !valid_metric_name("")
        );
        assert!(valid_label_name("status_class"));
        assert!(!valid_label_name("__name__") && !valid_label_name("a:b"));
        let bad = Family::new("bad-name", "x", Kind::Gauge, &[]);
        let mut wrong_arity = Family::new("ok", "x", Kind::Gauge, &["a", "b"]);
        wrong_arity.number(&["only one"], 1.0);
        wrong_arity.number(&["one", "two"], 2.0);
        let text = encode(&[bad, wrong_arity]);
        assert!(!text.contains("bad-name"));
        assert_eq!(
            text,
            "# HELP ok x\n# TYPE ok gauge\nok{a=\"one\",b=\"two\"} 2\n"
        );
    }

    #[test]
    fn output_is_stable_whatever_the_input_order() {
        let family = |order: &[&str]| {
            let mut f = Family::new("s", "x", Kind::Gauge, &["k"]);
            for k in order {
                f.number(&[k], 1.0);
            }
            f
        };
        let a = encode(&[
            family(&["b", "a", "c"]),
            Family::new("r", "y", Kind::Counter, &[]),
        ]);
        let b = encode(&[
            Family::new("r", "y", Kind::Counter, &[]),
            family(&["c", "b", "a"]),
        ]);
        assert_eq!(a, b);
    }
}
