//! Yearly request metrics (Cal. Code Regs. tit. 11, § 7102) and the CSV of request records.
//!
//! Pure functions over [`RequestFacts`], a slim projection of a request row that carries no
//! identity values, so neither the metrics nor the CSV can disclose who asked.
//!
//! Every figure of a year is about the requests *received* in that calendar year (UTC), so the
//! buckets of a kind add up: `received = complied_in_whole_or_part + denied + closed_other +
//! open`. States map to buckets as follows (see [`Bucket::of`]):
//!
//! | state                                   | bucket                     |
//! |-----------------------------------------|----------------------------|
//! | `completed`, `partially_completed`      | complied in whole or part  |
//! | `denied`                                | denied                     |
//! | `withdrawn`, `cancelled`                | closed other               |
//! | every other state (including `failed`)  | open                       |
//!
//! `partially_completed` means "done, with some rows kept under an exemption": the business
//! complied in part, which § 7102(a)(1) counts as complied "in whole or in part". The model
//! records no separate denial reasons (an unverifiable identity is denied with a free-text
//! `state_reason`), so every `denied` request counts as denied. `failed` is not final (it can
//! be re-planned), so it stays open. An unknown state string also counts as open.
//!
//! The days to respond are calendar days (UTC) from the date of receipt to the date of
//! `completed_at`, over the requests that were substantively responded to: complied with or
//! denied. Withdrawn and cancelled requests got no substantive response and are left out.

use super::model::{RequestKind, RequestState};
use crate::store::models::RequestRow;
use chrono::{Datelike, NaiveDateTime};
use serde::Serialize;

/// The columns of a request that metrics and the CSV need: no identities, no notes and no
/// free-text reasons (people type names into those). The store selects exactly these
/// columns, in this order.
#[derive(Debug, Clone, PartialEq, diesel::Queryable)]
pub struct RequestFacts {
    /// The request id.
    pub id: String,
    /// A [`RequestKind`] name.
    pub kind: String,
    /// A [`super::Regime`] name.
    pub regime: String,
    /// A [`RequestState`] name.
    pub state: String,
    /// A [`super::Channel`] name.
    pub channel: String,
    /// When the request was received (UTC).
    pub received_at: NaiveDateTime,
    /// End of the last day to respond.
    pub due_at: NaiveDateTime,
    /// The extended deadline, when it was extended.
    pub extended_due_at: Option<NaiveDateTime>,
    /// When the request was closed (completed, denied, withdrawn or cancelled).
    pub completed_at: Option<NaiveDateTime>,
}

impl From<&RequestRow> for RequestFacts {
    fn from(r: &RequestRow) -> Self {
        RequestFacts {
            id: r.id.clone(),
            kind: r.kind.clone(),
            regime: r.regime.clone(),
            state: r.state.clone(),
            channel: r.channel.clone(),
            received_at: r.received_at,
            due_at: r.due_at,
            extended_due_at: r.extended_due_at,
            completed_at: r.completed_at,
        }
    }
}

impl RequestFacts {
    /// The deadline in force: the extended one if there is one.
    pub fn effective_due_at(&self) -> NaiveDateTime {
        self.extended_due_at.unwrap_or(self.due_at)
    }

    /// The metrics bucket of this request's state.
    pub fn bucket(&self) -> Bucket {
        RequestState::parse(&self.state).map_or(Bucket::Open, Bucket::of)
    }

    /// Calendar days (UTC) from receipt to the substantive response, for requests complied
    /// with or denied that have a `completed_at`; `None` otherwise.
    pub fn days_to_respond(&self) -> Option<i64> {
        match self.bucket() {
            Bucket::Complied | Bucket::Denied => self
                .completed_at
                .map(|c| (c.date() - self.received_at.date()).num_days()),
            Bucket::ClosedOther | Bucket::Open => None,
        }
    }

    /// Whether a closed request was closed by its effective deadline; `None` while open or
    /// when no `completed_at` was recorded.
    pub fn on_time(&self) -> Option<bool> {
        if self.bucket() == Bucket::Open {
            return None;
        }
        self.completed_at.map(|c| c <= self.effective_due_at())
    }
}

/// Where a request's state is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// `completed` or `partially_completed`.
    Complied,
    /// `denied`.
    Denied,
    /// `withdrawn` or `cancelled`.
    ClosedOther,
    /// Any state that is not final.
    Open,
}

impl Bucket {
    /// The bucket of a workflow state (the mapping is documented on the module).
    pub fn of(state: RequestState) -> Bucket {
        use RequestState as S;
        match state {
            S::Completed | S::PartiallyCompleted => Bucket::Complied,
            S::Denied => Bucket::Denied,
            S::Withdrawn | S::Cancelled => Bucket::ClosedOther,
            S::Received
            | S::Acknowledged
            | S::IdentityPending
            | S::Verified
            | S::Planned
            | S::Approved
            | S::Executing
            | S::Verifying
            | S::Failed => Bucket::Open,
        }
    }
}

/// The figures of one request kind (or of all kinds) for one year.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindMetrics {
    /// A [`RequestKind`] name, or `"total"` for the row over all requests.
    pub kind: String,
    /// Requests received in the year.
    pub received: u64,
    /// Of those, completed or partially completed.
    pub complied_in_whole_or_part: u64,
    /// Of those, denied (for any reason, including an unverifiable identity).
    pub denied: u64,
    /// Of those, withdrawn or cancelled.
    pub closed_other: u64,
    /// Of those, still open.
    pub open: u64,
    /// Median calendar days to a substantive response (complied or denied); `None` when
    /// there was none. The median of an even count is the mean of the two middle values.
    pub median_days_to_respond: Option<f64>,
    /// Mean calendar days to a substantive response; `None` when there was none.
    pub mean_days_to_respond: Option<f64>,
    /// Of those, closed (in any final state) after their effective deadline.
    pub overdue_closures: u64,
}

impl KindMetrics {
    fn compute<'a>(kind: &str, facts: impl Iterator<Item = &'a RequestFacts>) -> KindMetrics {
        let mut m = KindMetrics {
            kind: kind.to_string(),
            received: 0,
            complied_in_whole_or_part: 0,
            denied: 0,
            closed_other: 0,
            open: 0,
            median_days_to_respond: None,
            mean_days_to_respond: None,
            overdue_closures: 0,
        };
        let mut days = Vec::new();
        for f in facts {
            m.received += 1;
            match f.bucket() {
                Bucket::Complied => m.complied_in_whole_or_part += 1,
                Bucket::Denied => m.denied += 1,
                Bucket::ClosedOther => m.closed_other += 1,
                Bucket::Open => m.open += 1,
            }
            if f.on_time() == Some(false) {
                m.overdue_closures += 1;
            }
            if let Some(d) = f.days_to_respond() {
                days.push(d);
            }
        }
        m.median_days_to_respond = median(&mut days);
        m.mean_days_to_respond = mean(&days);
        m
    }
}

/// The § 7102 figures of one calendar year.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct YearMetrics {
    /// The calendar year (UTC) of receipt.
    pub year: i32,
    /// One row per [`RequestKind`], in [`RequestKind::ALL`] order, including kinds with no
    /// requests.
    pub rows: Vec<KindMetrics>,
    /// Over all requests received in the year (kind `"total"`); requests of an unknown kind
    /// are counted here only.
    pub total: KindMetrics,
}

/// The metrics of the requests received in calendar year `year` (UTC).
///
/// Callers that report on one regime only (e.g. CCPA) filter `facts` by `regime` first.
pub fn yearly(facts: &[RequestFacts], year: i32) -> YearMetrics {
    let in_year: Vec<&RequestFacts> = facts
        .iter()
        .filter(|f| f.received_at.year() == year)
        .collect();
    let rows = RequestKind::ALL
        .iter()
        .map(|k| {
            KindMetrics::compute(
                k.as_str(),
                in_year.iter().copied().filter(|f| f.kind == k.as_str()),
            )
        })
        .collect();
    YearMetrics {
        year,
        rows,
        total: KindMetrics::compute("total", in_year.iter().copied()),
    }
}

/// The distinct calendar years (UTC) in which requests were received, newest first.
pub fn years(facts: &[RequestFacts]) -> Vec<i32> {
    let mut ys: Vec<i32> = facts.iter().map(|f| f.received_at.year()).collect();
    ys.sort_unstable_by(|a, b| b.cmp(a));
    ys.dedup();
    ys
}

/// Median; sorts `values`. The median of an even count is the mean of the two middle values.
fn median(values: &mut [i64]) -> Option<f64> {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    Some(if n % 2 == 1 {
        values[mid] as f64
    } else {
        (values[mid - 1] as f64 + values[mid] as f64) / 2.0
    })
}

fn mean(values: &[i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64)
}

/// The CSV header of [`csv`].
pub const CSV_HEADER: [&str; 11] = [
    "id",
    "kind",
    "regime",
    "state",
    "channel",
    "received_at",
    "due_at",
    "extended_due_at",
    "completed_at",
    "days_to_respond",
    "on_time",
];

/// The request records as RFC 4180 CSV (CRLF line ends, quoting where needed), one row per
/// fact in the given order, under [`CSV_HEADER`].
///
/// Times are RFC 3339 UTC (`Z`); `days_to_respond` is as in [`RequestFacts::days_to_respond`]
/// and `on_time` is `true`/`false` for closed requests (empty while open). Text cells that a
/// spreadsheet would take for a formula (starting with `=`, `+`, `-`, `@`, tab or CR) get a
/// leading `'`. There are no identity values and no free-text reasons: [`RequestFacts`]
/// has neither, and auditors may download this file.
pub fn csv(facts: &[RequestFacts]) -> String {
    // Writing into a Vec cannot fail and every cell is a String, hence valid UTF-8.
    write_csv(facts)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

fn write_csv(facts: &[RequestFacts]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    let time = |t: &Option<NaiveDateTime>| t.as_ref().map(crate::audit::format_time);
    for f in facts {
        w.write_record([
            defuse(&f.id),
            defuse(&f.kind),
            defuse(&f.regime),
            defuse(&f.state),
            defuse(&f.channel),
            crate::audit::format_time(&f.received_at),
            crate::audit::format_time(&f.due_at),
            time(&f.extended_due_at).unwrap_or_default(),
            time(&f.completed_at).unwrap_or_default(),
            f.days_to_respond()
                .map(|d| d.to_string())
                .unwrap_or_default(),
            f.on_time().map(|b| b.to_string()).unwrap_or_default(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Guards against CSV/formula injection: a cell starting with `=`, `+`, `-`, `@`, tab or CR
/// gets a leading `'` so spreadsheets show it as text.
pub fn defuse(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").expect("test time")
    }

    /// A request received at `received`, due 30 days later at 23:59:59.
    fn fact(id: &str, kind: &str, state: &str, received: &str, done: Option<&str>) -> RequestFacts {
        let received_at = t(received);
        RequestFacts {
            id: id.to_string(),
            kind: kind.to_string(),
            regime: "gdpr".to_string(),
            state: state.to_string(),
            channel: "email".to_string(),
            received_at,
            due_at: (received_at.date() + chrono::Duration::days(30))
                .and_hms_opt(23, 59, 59)
                .expect("valid"),
            extended_due_at: None,
            completed_at: done.map(t),
        }
    }

    #[test]
    fn medians() {
        let cases: &[(&[i64], Option<f64>)] = &[
            (&[], None),
            (&[7], Some(7.0)),
            (&[9, 1, 5], Some(5.0)),
            (&[10, 2], Some(6.0)),
            (&[4, 1, 3, 2], Some(2.5)),
            (&[0, 0, 45, 45, 45], Some(45.0)),
        ];
        for (values, want) in cases {
            let mut v = values.to_vec();
            assert_eq!(median(&mut v), *want, "median of {values:?}");
        }
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1, 2, 6]), Some(3.0));
    }

    #[test]
    fn median_and_mean_over_responded_requests() {
        let facts = vec![
            // 3 days, complied.
            fact(
                "a",
                "access",
                "completed",
                "2026-03-01T10:00",
                Some("2026-03-04T09:00"),
            ),
            // 10 days, denied.
            fact(
                "b",
                "access",
                "denied",
                "2026-03-01T10:00",
                Some("2026-03-11T08:00"),
            ),
            // 1 calendar day although only two minutes passed.
            fact(
                "c",
                "access",
                "partially_completed",
                "2026-03-01T23:59",
                Some("2026-03-02T00:01"),
            ),
            // 20 days, but withdrawn: no substantive response.
            fact(
                "d",
                "access",
                "withdrawn",
                "2026-03-01T10:00",
                Some("2026-03-21T10:00"),
            ),
            // Open: no response yet.
            fact("e", "access", "executing", "2026-03-01T10:00", None),
        ];
        let m = yearly(&facts, 2026);
        let access = &m.rows[0];
        assert_eq!(access.kind, "access");
        // Days 1, 3, 10.
        assert_eq!(access.median_days_to_respond, Some(3.0));
        assert_eq!(access.mean_days_to_respond, Some(14.0 / 3.0));
        let empty = yearly(&facts[3..], 2026);
        assert_eq!(empty.rows[0].median_days_to_respond, None);
        assert_eq!(empty.rows[0].mean_days_to_respond, None);
        let even = yearly(&facts[..2], 2026);
        assert_eq!(even.total.median_days_to_respond, Some(6.5));
    }

    #[test]
    fn year_boundaries() {
        let facts = vec![
            fact("old", "erasure", "received", "2025-12-31T23:59", None),
            fact("new", "erasure", "received", "2026-01-01T00:00", None),
            fact("newer", "access", "received", "2026-06-01T00:00", None),
            fact("older", "access", "received", "2023-06-01T00:00", None),
        ];
        assert_eq!(yearly(&facts, 2025).total.received, 1);
        assert_eq!(yearly(&facts, 2026).total.received, 2);
        assert_eq!(yearly(&facts, 2024).total.received, 0);
        assert_eq!(years(&facts), vec![2026, 2025, 2023]);
        assert_eq!(years(&[]), Vec::<i32>::new());
    }

    #[test]
    fn counts_per_kind_and_bucket() {
        let r = "2026-02-01T09:00";
        let done = Some("2026-02-10T09:00");
        let facts = vec![
            fact("1", "access", "completed", r, done),
            fact("2", "access", "denied", r, done),
            fact("3", "erasure", "partially_completed", r, done),
            fact("4", "erasure", "completed", r, done),
            fact("5", "erasure", "cancelled", r, done),
            fact("6", "erasure", "withdrawn", r, done),
            fact("7", "erasure", "failed", r, None),
            fact("8", "opt_out", "identity_pending", r, None),
            fact("9", "opt_out", "denied", r, done),
            fact("10", "mystery", "completed", r, done),
        ];
        let m = yearly(&facts, 2026);
        assert_eq!(m.year, 2026);
        let kinds: Vec<&str> = m.rows.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "access",
                "portability",
                "erasure",
                "rectification",
                "opt_out"
            ]
        );
        // (received, complied, denied, closed_other, open)
        let want = [
            (2, 1, 1, 0, 0),
            (0, 0, 0, 0, 0),
            (5, 2, 0, 2, 1),
            (0, 0, 0, 0, 0),
            (2, 0, 1, 0, 1),
        ];
        for (row, w) in m.rows.iter().zip(want) {
            let got = (
                row.received,
                row.complied_in_whole_or_part,
                row.denied,
                row.closed_other,
                row.open,
            );
            assert_eq!(got, w, "{}", row.kind);
            assert_eq!(
                row.received,
                row.complied_in_whole_or_part + row.denied + row.closed_other + row.open
            );
        }
        assert_eq!(m.rows[1].median_days_to_respond, None);
        // The unknown kind counts in the total only.
        let t = &m.total;
        assert_eq!(t.kind, "total");
        assert_eq!(
            (
                t.received,
                t.complied_in_whole_or_part,
                t.denied,
                t.closed_other,
                t.open
            ),
            (10, 4, 2, 2, 2)
        );
        // An unknown state is open.
        let odd = fact("x", "access", "limbo", r, done);
        assert_eq!(odd.bucket(), Bucket::Open);
        assert_eq!(yearly(&[odd], 2026).rows[0].open, 1);
    }

    #[test]
    fn every_state_has_a_bucket_consistent_with_is_final() {
        for &s in RequestState::ALL {
            assert_eq!(Bucket::of(s) == Bucket::Open, s.is_open(), "{s}");
        }
    }

    #[test]
    fn overdue_closures_use_the_effective_deadline() {
        let r = "2026-04-01T09:00";
        // Due 2026-05-01T23:59:59.
        let on_time = fact("a", "access", "completed", r, Some("2026-05-01T23:59"));
        let late = fact("b", "access", "denied", r, Some("2026-05-02T00:00"));
        let mut extended = fact("c", "access", "completed", r, Some("2026-06-15T12:00"));
        extended.extended_due_at = Some(t("2026-07-01T23:59"));
        let mut late_extended = extended.clone();
        late_extended.completed_at = Some(t("2026-07-02T00:00"));
        let late_withdrawn = fact("e", "access", "withdrawn", r, Some("2026-05-20T00:00"));
        let open_overdue = fact("f", "access", "executing", r, None);
        assert_eq!(on_time.on_time(), Some(true));
        assert_eq!(late.on_time(), Some(false));
        assert_eq!(extended.on_time(), Some(true));
        assert_eq!(late_extended.on_time(), Some(false));
        assert_eq!(open_overdue.on_time(), None);
        let m = yearly(
            &[
                on_time,
                late,
                extended,
                late_extended,
                late_withdrawn,
                open_overdue,
            ],
            2026,
        );
        assert_eq!(m.rows[0].overdue_closures, 3);
        assert_eq!(m.total.overdue_closures, 3);
    }

    #[test]
    fn csv_header_and_rows() {
        let a = fact(
            "r1",
            "erasure",
            "denied",
            "2026-01-05T08:30",
            Some("2026-01-07T10:00"),
        );
        let mut b = fact(
            "r2",
            "access",
            "withdrawn",
            "2026-01-06T00:00",
            Some("2026-01-06T01:00"),
        );
        b.extended_due_at = Some(t("2026-03-06T23:59"));
        let c = fact("r3", "access", "verified", "2026-01-06T00:00", None);
        let out = csv(&[a, b, c]);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "id,kind,regime,state,channel,received_at,due_at,extended_due_at,completed_at,days_to_respond,on_time"
        );
        assert_eq!(
            lines[1],
            "r1,erasure,gdpr,denied,email,2026-01-05T08:30:00.000000Z,2026-02-04T23:59:59.000000Z,,2026-01-07T10:00:00.000000Z,2,true"
        );
        assert_eq!(
            lines[2],
            "r2,access,gdpr,withdrawn,email,2026-01-06T00:00:00.000000Z,2026-02-05T23:59:59.000000Z,2026-03-06T23:59:00.000000Z,2026-01-06T01:00:00.000000Z,,true"
        );
        assert_eq!(
            lines[3],
            "r3,access,gdpr,verified,email,2026-01-06T00:00:00.000000Z,2026-02-05T23:59:59.000000Z,,,,"
        );
        assert_eq!(lines[4], "");
        assert!(
            !out.contains("jane@") && !out.contains("HYPERLINK"),
            "free text left out"
        );
        let mut rd = csv::Reader::from_reader(out.as_bytes());
        let recs: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("csv");
        assert_eq!(recs.len(), 3);
        assert_eq!(csv(&[]), format!("{}\r\n", CSV_HEADER.join(",")));
    }

    #[test]
    fn defuse_cells() {
        for (s, want) in [
            ("=1", "'=1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("fine", "fine"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(defuse(s), want);
        }
    }
}
