//! Legal deadlines per regime. Pure calendar arithmetic; dates are calendar days in UTC.
//!
//! - GDPR and UK GDPR (Art. 12(3)): one month from receipt, ending on the same day number
//!   of the next month or that month's last day when it has no such day (Regulation
//!   1182/71); extendable once by two further months.
//! - CCPA/CPRA (Cal. Code Regs. tit. 11, 7021): acknowledge within 10 business days,
//!   respond within 45 calendar days of receipt; one further 45 days with notice. Opt-out
//!   of sale/sharing (7026): act within 15 business days.
//! - LGPD (Art. 19): 15 days. PIPEDA (4.9.4 / s. 8(3)-(4)): 30 days plus at most 30.
//! - Virginia CDPA and Colorado Privacy Act: 45 days plus 45.
//!
//! Business days are Monday to Friday; public holidays are not modelled.

use super::model::{Regime, RequestKind};
use chrono::{Datelike, Duration, Months, NaiveDate, Weekday};
use serde::Serialize;

/// How far a deadline may be extended, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "unit", content = "amount", rename_all = "snake_case")]
pub enum Extension {
    Months(u32),
    Days(i64),
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    /// Respond (comply or refuse with reasons) by the end of this day.
    pub respond_by: NaiveDate,
    /// Acknowledge receipt by the end of this day, where the regime requires it.
    pub acknowledge_by: Option<NaiveDate>,
    pub extension: Extension,
}

/// Adds months keeping the day number, clamped to the end of the target month.
pub fn add_months_clamped(d: NaiveDate, months: u32) -> NaiveDate {
    // chrono clamps to the last day of the month.
    d.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// The date `n` business days (Mon-Fri) after `d`.
pub fn add_business_days(d: NaiveDate, n: u32) -> NaiveDate {
    let mut cur = d;
    let mut left = n;
    while left > 0 {
        cur += Duration::days(1);
        if !matches!(cur.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    cur
}

/// The deadlines of a request received on `received`.
pub fn deadlines(regime: Regime, kind: RequestKind, received: NaiveDate) -> Deadlines {
    let days = |n: i64| received + Duration::days(n);
    match regime {
        Regime::Gdpr | Regime::UkGdpr => Deadlines {
            respond_by: add_months_clamped(received, 1),
            acknowledge_by: None,
            extension: Extension::Months(2),
        },
        Regime::Ccpa if kind == RequestKind::OptOut => Deadlines {
            respond_by: add_business_days(received, 15),
            acknowledge_by: None,
            extension: Extension::None,
        },
        Regime::Ccpa => Deadlines {
            respond_by: days(45),
            acknowledge_by: Some(add_business_days(received, 10)),
            extension: Extension::Days(45),
        },
        Regime::Lgpd => Deadlines {
            respond_by: days(15),
            acknowledge_by: None,
            extension: Extension::None,
        },
        Regime::Pipeda => Deadlines {
            respond_by: days(30),
            acknowledge_by: None,
            extension: Extension::Days(30),
        },
        Regime::Vcdpa | Regime::Cpa => Deadlines {
            respond_by: days(45),
            acknowledge_by: None,
            extension: Extension::Days(45),
        },
    }
}

/// The deadline after the one permitted extension, counted from the original deadline.
pub fn extended(original: NaiveDate, ext: Extension) -> Option<NaiveDate> {
    match ext {
        Extension::Months(m) => Some(add_months_clamped(original, m)),
        Extension::Days(d) => Some(original + Duration::days(d)),
        Extension::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestKind::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dated_cases() {
        // (regime, kind, received, respond_by, acknowledge_by)
        let cases: &[(Regime, RequestKind, &str, &str, Option<&str>)] = &[
            // GDPR: same day number next month.
            (Regime::Gdpr, Access, "2026-03-15", "2026-04-15", None),
            // ... clamped to the month's end.
            (Regime::Gdpr, Access, "2026-01-31", "2026-02-28", None),
            (Regime::Gdpr, Erasure, "2028-01-31", "2028-02-29", None), // leap year
            (Regime::Gdpr, Access, "2026-03-31", "2026-04-30", None),
            (Regime::Gdpr, Access, "2026-12-31", "2027-01-31", None), // year boundary
            (Regime::UkGdpr, Access, "2024-02-29", "2024-03-29", None),
            (Regime::Gdpr, Access, "2026-08-31", "2026-09-30", None),
            // CCPA: 45 calendar days; acknowledgement within 10 business days.
            (
                Regime::Ccpa,
                Access,
                "2026-01-01",
                "2026-02-15",
                Some("2026-01-15"),
            ),
            // Received on a Friday: ten business days skip two weekends.
            (
                Regime::Ccpa,
                Erasure,
                "2026-11-20",
                "2027-01-04",
                Some("2026-12-04"),
            ),
            // Received on a Saturday.
            (
                Regime::Ccpa,
                Access,
                "2026-11-21",
                "2027-01-05",
                Some("2026-12-04"),
            ),
            (
                Regime::Ccpa,
                Access,
                "2024-02-01",
                "2024-03-17",
                Some("2024-02-15"),
            ), // leap year
            // CCPA opt-out: 15 business days.
            (Regime::Ccpa, OptOut, "2026-11-23", "2026-12-14", None),
            (Regime::Ccpa, OptOut, "2026-12-25", "2027-01-15", None),
            (Regime::Lgpd, Access, "2026-12-20", "2027-01-04", None),
            (Regime::Pipeda, Access, "2026-02-10", "2026-03-12", None),
            (Regime::Vcdpa, Erasure, "2026-01-20", "2026-03-06", None),
            (Regime::Cpa, Access, "2028-02-10", "2028-03-26", None),
        ];
        for (regime, kind, received, respond, ack) in cases {
            let got = deadlines(*regime, *kind, d(received));
            assert_eq!(got.respond_by, d(respond), "{regime} {kind} {received}");
            assert_eq!(
                got.acknowledge_by,
                ack.map(d),
                "{regime} {kind} {received} ack"
            );
        }
    }

    #[test]
    fn extensions() {
        assert_eq!(
            extended(d("2026-01-31"), Extension::Months(2)),
            Some(d("2026-03-31"))
        );
        assert_eq!(
            extended(d("2026-02-28"), Extension::Months(2)),
            Some(d("2026-04-28"))
        );
        assert_eq!(
            extended(d("2026-02-15"), Extension::Days(45)),
            Some(d("2026-04-01"))
        );
        assert_eq!(extended(d("2026-02-15"), Extension::None), None);
    }

    #[test]
    fn business_days_skip_weekends() {
        // Friday + 1 business day = Monday.
        assert_eq!(add_business_days(d("2026-11-20"), 1), d("2026-11-23"));
        assert_eq!(add_business_days(d("2026-11-22"), 5), d("2026-11-27"));
    }
}
