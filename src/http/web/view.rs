//! Small display types shared by the pages: a request as one table line, dates and
//! deadlines in words.

use crate::request::RequestState;
use crate::store::models::RequestRow;
use chrono::NaiveDateTime;

/// A date for people: `2026-11-24`.
pub fn date(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// A time for people: `2026-11-24 13:05 UTC`.
pub fn time(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An RFC 3339 time from the API views, shown like [`time`].
pub fn time_text(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| time(&t.naive_utc()))
        .unwrap_or_else(|_| s.to_string())
}

/// "due today", "in 3 days", "2 days overdue".
pub fn days_left_text(days: i64) -> String {
    match days {
        0 => "due today".into(),
        1 => "due tomorrow".into(),
        d if d > 1 => format!("in {d} days"),
        -1 => "1 day overdue".into(),
        d => format!("{} days overdue", -d),
    }
}

/// A request as one line of a table.
#[derive(Debug, Clone)]
pub struct RequestLine {
    pub id: String,
    pub short_id: String,
    pub kind: String,
    pub regime: String,
    pub state: String,
    pub identity: String,
    pub received: String,
    pub due: String,
    pub due_text: String,
    pub open: bool,
    pub overdue: bool,
    pub due_soon: bool,
    pub extended: bool,
}

impl RequestLine {
    pub fn new(r: &RequestRow, now: NaiveDateTime) -> RequestLine {
        let effective = r.extended_due_at.unwrap_or(r.due_at);
        let open = RequestState::parse(&r.state).is_some_and(RequestState::is_open);
        let days = (effective.date() - now.date()).num_days();
        RequestLine {
            id: r.id.clone(),
            short_id: r.id.chars().take(13).collect(),
            kind: r.kind.replace('_', " "),
            regime: r.regime.to_uppercase().replace('_', " "),
            state: r.state.clone(),
            identity: r.identity_summary.clone(),
            received: date(&r.received_at),
            due: date(&effective),
            due_text: if open {
                days_left_text(days)
            } else {
                "closed".into()
            },
            open,
            overdue: open && now > effective,
            due_soon: open && now <= effective && days <= 7,
            extended: r.extended_due_at.is_some(),
        }
    }

    /// The state in words.
    pub fn state_label(&self) -> String {
        self.state.replace('_', " ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_in_words() {
        assert_eq!(days_left_text(0), "due today");
        assert_eq!(days_left_text(5), "in 5 days");
        assert_eq!(days_left_text(-1), "1 day overdue");
        assert_eq!(days_left_text(-4), "4 days overdue");
    }
}
