//! Deterministic demo CRM data: a few hand-written showcase people (the README tour and the
//! tests use them) followed by any number of generated contacts, each with its companies,
//! leads, deals, activities, notes, tickets, invoices, consents and web sessions.
//!
//! The same seed and contact count always produce the same rows.

use super::schema::{self, DemoTable};
use crate::source::{Dialect, SourceConn, SourceError, Sql, Value};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use std::collections::BTreeMap;

/// The fixed "now" of the demo data set, so seeding is reproducible.
pub fn demo_now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

/// SplitMix64: small, fast and stable across versions (unlike library RNGs).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Ida", "Jonas", "Karl",
    "Lena", "Mia", "Noah", "Olga", "Paul", "Queenie", "Rosa", "Sami", "Tom", "Uta", "Vera", "Wim",
    "Xenia", "Yusuf", "Zoe", "Lukas", "Marie", "Leon", "Sofia", "Elias", "Amelie", "Finn", "Lea",
    "Jan", "Nora", "Omar", "Pia", "Raj", "Sara",
];
const LAST: &[&str] = &[
    "Schmidt",
    "Mueller",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmermann",
    "Hartmann",
    "Krueger",
    "Lange",
    "Werner",
    "Lehmann",
    "Koehler",
    "Kaya",
    "Nguyen",
    "Rossi",
    "Garcia",
    "Smith",
    "Novak",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "post.example",
    "web.example",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Berlin", "10115", "30"),
    ("Hamburg", "20095", "40"),
    ("Muenchen", "80331", "89"),
    ("Koeln", "50667", "221"),
    ("Frankfurt", "60311", "69"),
    ("Stuttgart", "70173", "711"),
    ("Leipzig", "04109", "341"),
    ("Dresden", "01067", "351"),
];
const STREETS: &[&str] = &[
    "Hauptstrasse",
    "Bahnhofstrasse",
    "Gartenweg",
    "Lindenallee",
    "Schulstrasse",
    "Bergweg",
    "Am Markt",
    "Rosenweg",
];
const TOPICS: &[&str] = &[
    "the renewal",
    "pricing",
    "the onboarding",
    "a delivery delay",
    "the new contract",
    "training dates",
    "the Q3 order",
    "an invoice question",
];
const STAGES: &[&str] = &["lead", "qualified", "proposal", "won", "lost"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
];
const PAGES: &[&str] = &[
    "/",
    "/pricing",
    "/blog/gdpr-checklist",
    "/contact",
    "/product/tracking",
];
const EMPLOYEES: u64 = 200;

fn ts(t: NaiveDateTime) -> Value {
    Value::Text(t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn date(d: NaiveDate) -> Value {
    Value::Text(d.format("%Y-%m-%d").to_string())
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn int(i: u64) -> Value {
    Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
}

fn opt_int(i: Option<u64>) -> Value {
    i.map_or(Value::Null, int)
}

fn money(cents: u64) -> Value {
    Value::Float(cents as f64 / 100.0)
}

/// Buffers rows per table and writes them as multi-row INSERTs.
struct BulkWriter {
    dialect: Dialect,
    buffers: Vec<Vec<Vec<Value>>>,
    next_id: Vec<u64>,
    counts: BTreeMap<&'static str, u64>,
    rows_per_insert: usize,
}

impl BulkWriter {
    fn new(dialect: Dialect) -> Self {
        let n = schema::TABLES.len();
        BulkWriter {
            dialect,
            buffers: vec![Vec::new(); n],
            next_id: vec![1; n],
            counts: BTreeMap::new(),
            rows_per_insert: 200,
        }
    }

    fn idx(name: &str) -> usize {
        schema::TABLES
            .iter()
            .position(|t| t.name == name)
            .unwrap_or_else(|| unreachable!("demo table {name} is defined in schema::TABLES"))
    }

    /// Allocates the next id of `table` and queues the row (id first).
    fn add(&mut self, table: &'static str, mut values: Vec<Value>) -> u64 {
        let i = Self::idx(table);
        let id = self.next_id[i];
        self.next_id[i] += 1;
        values.insert(0, int(id));
        debug_assert_eq!(values.len(), schema::TABLES[i].columns.len(), "{table}");
        self.buffers[i].push(values);
        *self.counts.entry(table).or_default() += 1;
        id
    }

    fn peek_id(&self, table: &str) -> u64 {
        self.next_id[Self::idx(table)]
    }

    fn flush(&mut self, conn: &mut SourceConn, all: bool) -> Result<(), SourceError> {
        for (i, t) in schema::TABLES.iter().enumerate() {
            while self.buffers[i].len() >= self.rows_per_insert
                || (all && !self.buffers[i].is_empty())
            {
                let take = self.buffers[i].len().min(self.rows_per_insert);
                let rows: Vec<Vec<Value>> = self.buffers[i].drain(..take).collect();
                let sql = insert_sql(self.dialect, t, &rows);
                conn.execute(&sql)?;
            }
        }
        Ok(())
    }
}

fn insert_sql(d: Dialect, t: &DemoTable, rows: &[Vec<Value>]) -> Sql {
    let mut sql = Sql::new(d);
    sql.push("INSERT INTO ").ident(t.name).push(" (");
    for (j, (c, _)) in t.columns.iter().enumerate() {
        if j > 0 {
            sql.push(", ");
        }
        sql.ident(c);
    }
    sql.push(") VALUES ");
    let types: Vec<_> = t.columns.iter().map(|(_, c)| c.bind_type()).collect();
    for (r, row) in rows.iter().enumerate() {
        sql.push(if r == 0 { "(" } else { ", (" });
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            sql.bind_as(v.clone(), types[j].as_ref());
        }
        sql.push(")");
    }
    sql
}

/// What the seeder wrote.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub contacts: u64,
    pub rows: BTreeMap<&'static str, u64>,
    /// Seconds spent inserting rows.
    pub load_secs: f64,
    /// Seconds spent building indexes, text indexes and statistics.
    pub index_secs: f64,
}

impl SeedReport {
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// Creates the schema and seeds `contacts` generated contacts (plus the showcase people).
/// `progress` is called with the number of contacts written so far.
pub fn seed(
    conn: &mut SourceConn,
    contacts: u64,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport, SourceError> {
    let d = conn.dialect();
    if d == Dialect::Sqlite {
        // Rows are flushed per table as buffers fill, so children may arrive before their
        // parents: check foreign keys only once everything is in (below).
        conn.batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -200000; PRAGMA foreign_keys = OFF;")?;
    }
    for stmt in schema::create_ddl(d) {
        conn.batch(&stmt)?;
    }
    let started = std::time::Instant::now();
    let mut w = BulkWriter::new(d);
    conn.transaction(true, |conn| {
        employees(&mut w);
        showcase(&mut w);
        w.flush(conn, true)
    })?;
    let first_generated = w.peek_id("contacts");
    let chunk = 5_000;
    let mut done = 0;
    while done < contacts {
        let end = (done + chunk).min(contacts);
        conn.transaction(true, |conn| {
            for i in done..end {
                generated_contact(&mut w, seed, i, contacts, first_generated);
                if w.buffers.iter().any(|b| b.len() >= w.rows_per_insert) {
                    w.flush(conn, false)?;
                }
            }
            w.flush(conn, true)
        })?;
        done = end;
        progress(done);
    }
    let load_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    #[cfg(feature = "mysql")]
    if d == Dialect::Mysql {
        // Foreign keys added in place (no table copy); checked below. Session setting only.
        conn.batch("SET SESSION foreign_key_checks = 0")?;
    }
    for stmt in schema::post_load_ddl(d) {
        let t = std::time::Instant::now();
        conn.batch(&stmt)?;
        tracing::debug!(secs = t.elapsed().as_secs_f64(), statement = %stmt.chars().take(80).collect::<String>(), "seed index");
    }
    #[cfg(feature = "mysql")]
    if d == Dialect::Mysql {
        conn.batch("SET SESSION foreign_key_checks = 1")?;
        mysql_finish(conn)?;
    }
    if d == Dialect::Sqlite {
        let mut q = Sql::new(d);
        q.push("SELECT count(*) FROM pragma_foreign_key_check");
        let broken = conn.query(&q)?;
        if broken
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_int)
            .unwrap_or(0)
            > 0
        {
            return Err(SourceError::Config(
                "demo data violates a foreign key (generator bug)".into(),
            ));
        }
        // Statistics for the CRM tables only: STAT4 rows for FTS5 shadow tables make FTS5
        // re-prepare its internal statements on every query (about 2x slower scans).
        let analyze: String = schema::TABLES
            .iter()
            .map(|t| format!("ANALYZE {};", t.name))
            .collect();
        conn.batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; {analyze}"
        ))?;
    } else if d == Dialect::Postgres {
        conn.batch("ANALYZE")?;
    }
    Ok(SeedReport {
        contacts: w.counts.get("contacts").copied().unwrap_or(0),
        rows: w.counts,
        load_secs,
        index_secs: started.elapsed().as_secs_f64(),
    })
}

/// MySQL after the bulk load: every foreign key holds (they were added unchecked), the
/// expression index where the server has them (MySQL 8, not MariaDB), fresh statistics.
#[cfg(feature = "mysql")]
fn mysql_finish(conn: &mut SourceConn) -> Result<(), SourceError> {
    let d = conn.dialect();
    for (table, col, parent) in schema::foreign_keys() {
        let mut q = Sql::new(d);
        q.push("SELECT count(*) FROM ")
            .ident(table)
            .push(" c LEFT JOIN ")
            .ident(parent)
            .push(" p ON p.id = c.")
            .ident(col)
            .push(" WHERE c.")
            .ident(col)
            .push(" IS NOT NULL AND p.id IS NULL");
        let broken = conn
            .query(&q)?
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_int)
            .unwrap_or(0);
        if broken > 0 {
            return Err(SourceError::Config(format!(
                "demo data violates the foreign key {table}.{col} -> {parent} (generator bug)"
            )));
        }
    }
    let mut q = Sql::new(d);
    q.push("SELECT VERSION()");
    let version = conn
        .query(&q)?
        .first()
        .and_then(|r| r.first())
        .and_then(Value::to_text)
        .unwrap_or_default();
    if !version.to_ascii_lowercase().contains("mariadb") {
        conn.batch(schema::mysql8_expression_index_ddl())?;
    }
    let tables: Vec<String> = schema::TABLES.iter().map(|t| d.quote(t.name)).collect();
    conn.batch(&format!("ANALYZE TABLE {}", tables.join(", ")))
}

fn employees(w: &mut BulkWriter) {
    let mut rng = Rng::new(7);
    let departments = ["Sales", "Support", "Finance", "Marketing"];
    for e in 0..EMPLOYEES {
        let first = *rng.pick(FIRST);
        let last = *rng.pick(LAST);
        let hired = NaiveDate::from_ymd_opt(2012, 1, 1).unwrap_or_default()
            + Duration::days(rng.below(3000) as i64);
        w.add(
            "employees",
            vec![
                text(first),
                text(last),
                text(format!(
                    "{}.{}{}@northwind.example",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    e
                )),
                text(departments[(e % 4) as usize]),
                date(hired),
            ],
        );
    }
}

fn at(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|x| x.and_hms_opt(h, 15, 0))
        .unwrap_or_default()
}

/// The showcase people, always the first rows of their tables. The README tour and the
/// integration tests refer to them:
/// - contact 1, Jane Doe <jane.doe@example.com>, +49 30 1234567, CUST-0000001: rows in
///   twelve tables including a polymorphic deal activity, a ticket with only a mixed-case
///   copy of her e-mail, her phone typed into a ticket message, and mentions of her e-mail
///   and customer number in other people's records;
/// - contact 2, another Jane Doe <jane.doe@otherco.example>: same name, different person;
/// - contact 3, Max Mustermann, whose company (a sole trader) is his own personal data;
/// - contact 4, Erika Musterfrau, Jane's colleague, whose activity mentions Jane.
fn showcase(w: &mut BulkWriter) {
    // Companies 1-3.
    let acme = w.add(
        "companies",
        vec![
            text("Acme Logistics GmbH"),
            text("DE811111111"),
            text("https://acme-logistics.example"),
            text("Industriestrasse 5"),
            text("Berlin"),
            text("10115"),
            text("DE"),
            Value::Bool(false),
            ts(at(2018, 3, 1, 9)),
        ],
    );
    let otherco = w.add(
        "companies",
        vec![
            text("Otherco AG"),
            text("DE822222222"),
            text("https://otherco.example"),
            text("Hafenweg 1"),
            text("Hamburg"),
            text("20095"),
            text("DE"),
            Value::Bool(false),
            ts(at(2019, 5, 2, 9)),
        ],
    );
    let max_co = w.add(
        "companies",
        vec![
            text("Max Mustermann IT-Beratung"),
            text("DE833333333"),
            Value::Null,
            text("Musterweg 3"),
            text("Muenchen"),
            text("80331"),
            text("DE"),
            Value::Bool(true),
            ts(at(2020, 1, 15, 9)),
        ],
    );

    let contact = |w: &mut BulkWriter,
                   no: u64,
                   first: &str,
                   last: &str,
                   email: &str,
                   phone: &str,
                   city: (&str, &str),
                   company: u64,
                   created: NaiveDateTime| {
        w.add(
            "contacts",
            vec![
                text(format!("CUST-{no:07}")),
                text(first),
                text(last),
                text(email),
                text(phone),
                date(NaiveDate::from_ymd_opt(1985, 4, 12).unwrap_or_default()),
                text("Lindenallee 12"),
                text(city.0),
                text(city.1),
                text("DE"),
                int(company),
                int(1 + no % EMPLOYEES),
                Value::Bool(false),
                ts(created),
                ts(at(2026, 9, 30, 14)),
            ],
        )
    };
    let jane = contact(
        w,
        1,
        "Jane",
        "Doe",
        "jane.doe@example.com",
        "+49301234567",
        ("Berlin", "10115"),
        acme,
        at(2019, 2, 1, 10),
    );
    let jane2 = contact(
        w,
        2,
        "Jane",
        "Doe",
        "jane.doe@otherco.example",
        "+49407654321",
        ("Hamburg", "20095"),
        otherco,
        at(2020, 6, 1, 10),
    );
    let max = contact(
        w,
        3,
        "Max",
        "Mustermann",
        "max@mustermann-it.example",
        "+49895550123",
        ("Muenchen", "80331"),
        max_co,
        at(2020, 1, 15, 11),
    );
    let erika = contact(
        w,
        4,
        "Erika",
        "Musterfrau",
        "erika.musterfrau@acme-logistics.example",
        "+49309876543",
        ("Berlin", "10115"),
        acme,
        at(2019, 3, 1, 10),
    );

    // Leads: one converted into Jane, one older web lead with only her e-mail.
    w.add(
        "leads",
        vec![
            text("jane.doe@example.com"),
            text("Jane"),
            text("Doe"),
            Value::Null,
            text("Acme Logistics GmbH"),
            text("webinar"),
            text("converted"),
            int(jane),
            int(5),
            ts(at(2018, 11, 20, 16)),
        ],
    );
    w.add(
        "leads",
        vec![
            text("jane.doe@example.com"),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            text("web form"),
            text("open"),
            Value::Null,
            int(6),
            ts(at(2017, 6, 2, 8)),
        ],
    );
    w.add(
        "leads",
        vec![
            text("max@mustermann-it.example"),
            text("Max"),
            text("Mustermann"),
            text("+49 89 5550123"),
            text("Max Mustermann IT-Beratung"),
            text("referral"),
            text("converted"),
            int(max),
            int(7),
            ts(at(2019, 12, 1, 9)),
        ],
    );

    // Deals.
    let d1 = w.add(
        "deals",
        vec![
            int(jane),
            int(acme),
            text("Fleet tracking rollout"),
            money(4_500_000),
            text("won"),
            int(5),
            ts(at(2019, 3, 1, 10)),
            ts(at(2019, 5, 1, 10)),
        ],
    );
    let d2 = w.add(
        "deals",
        vec![
            int(jane),
            int(acme),
            text("Warehouse scanners"),
            money(1_250_000),
            text("proposal"),
            int(5),
            ts(at(2026, 8, 1, 10)),
            Value::Null,
        ],
    );
    let d3 = w.add(
        "deals",
        vec![
            int(jane2),
            int(otherco),
            text("Port logistics pilot"),
            money(900_000),
            text("qualified"),
            int(8),
            ts(at(2021, 1, 10, 10)),
            Value::Null,
        ],
    );
    let d4 = w.add(
        "deals",
        vec![
            int(max),
            int(max_co),
            text("IT security audit"),
            money(350_000),
            text("won"),
            int(9),
            ts(at(2020, 2, 1, 10)),
            ts(at(2020, 3, 1, 10)),
        ],
    );

    // Activities (polymorphic parent: Contact or Deal).
    let act = |w: &mut BulkWriter,
               ptype: &str,
               pid: u64,
               kind: &str,
               subject: &str,
               body: &str,
               when: NaiveDateTime| {
        w.add(
            "activities",
            vec![
                text(ptype),
                int(pid),
                text(kind),
                text(subject),
                text(body),
                int(5),
                ts(when),
            ],
        );
    };
    act(
        w,
        "Contact",
        jane,
        "call",
        "Renewal call",
        "Called Jane on 030 1234567 about the renewal; she asked for a quote.",
        at(2026, 9, 30, 14),
    );
    act(
        w,
        "Deal",
        d1,
        "meeting",
        "Kick-off",
        "Kick-off meeting for the fleet tracking rollout with Jane and two drivers.",
        at(2019, 3, 5, 10),
    );
    act(
        w,
        "Deal",
        d2,
        "email",
        "Scanner quote",
        "From: jane.doe@example.com\nPlease send the scanner quote to me and to purchasing.",
        at(2026, 8, 2, 9),
    );
    act(
        w,
        "Contact",
        erika,
        "email",
        "Forwarded request",
        "Erika forwarded a question; cc: Jane.Doe@example.com and purchasing@acme-logistics.example.",
        at(2026, 9, 1, 11),
    );
    act(
        w,
        "Contact",
        jane2,
        "call",
        "Intro call",
        "Intro call with Jane Doe from Otherco about the port pilot.",
        at(2021, 1, 5, 15),
    );
    act(
        w,
        "Deal",
        d3,
        "meeting",
        "Pilot review",
        "Reviewed the pilot results with Jane (Otherco).",
        at(2021, 3, 5, 15),
    );
    act(
        w,
        "Deal",
        d4,
        "call",
        "Audit scope",
        "Agreed the audit scope with Max; reach him at +49 89 555 0123.",
        at(2020, 2, 3, 15),
    );

    // Notes (polymorphic parent: Contact, Deal or Company).
    let note = |w: &mut BulkWriter, ptype: &str, pid: u64, body: &str, when: NaiveDateTime| {
        w.add(
            "notes",
            vec![text(ptype), int(pid), text(body), int(6), ts(when)],
        );
    };
    note(
        w,
        "Contact",
        jane,
        "Prefers calls in the morning.",
        at(2019, 2, 2, 9),
    );
    note(
        w,
        "Deal",
        d1,
        "Discount of 5% approved by finance.",
        at(2019, 4, 2, 9),
    );
    note(
        w,
        "Company",
        acme,
        "Main contact for Acme is customer CUST-0000001 (J. Doe), escalate to Erika.",
        at(2019, 3, 2, 9),
    );
    note(
        w,
        "Company",
        max_co,
        "Sole trader; invoices go to his home address.",
        at(2020, 1, 16, 9),
    );
    note(
        w,
        "Contact",
        jane2,
        "Met at the Hamburg trade fair.",
        at(2020, 6, 2, 9),
    );

    // Tickets: one linked, one with only a mixed-case copy of Jane's e-mail.
    let t1 = w.add(
        "tickets",
        vec![
            int(jane),
            text("jane.doe@example.com"),
            text("Jane Doe"),
            text("Parcel not delivered"),
            text("closed"),
            text("high"),
            ts(at(2025, 1, 10, 8)),
        ],
    );
    let t2 = w.add(
        "tickets",
        vec![
            Value::Null,
            text("Jane.Doe@Example.COM"),
            text("Jane Doe"),
            text("Please call me back"),
            text("open"),
            text("normal"),
            ts(at(2026, 10, 1, 8)),
        ],
    );
    let t3 = w.add(
        "tickets",
        vec![
            int(jane2),
            text("jane.doe@otherco.example"),
            text("Jane Doe"),
            text("Login problem"),
            text("closed"),
            text("low"),
            ts(at(2022, 4, 1, 8)),
        ],
    );
    let msg = |w: &mut BulkWriter,
               t: u64,
               author: &str,
               emp: Option<u64>,
               body: &str,
               when: NaiveDateTime| {
        w.add(
            "ticket_messages",
            vec![int(t), text(author), opt_int(emp), text(body), ts(when)],
        );
    };
    msg(
        w,
        t1,
        "customer",
        None,
        "My parcel did not arrive, tracking shows nothing.",
        at(2025, 1, 10, 8),
    );
    msg(
        w,
        t1,
        "agent",
        Some(10),
        "Sorry Jane, we re-sent the parcel today.",
        at(2025, 1, 10, 12),
    );
    msg(
        w,
        t2,
        "customer",
        None,
        "Please call me back at +49 (0)30 123 45 67 about my account.",
        at(2026, 10, 1, 8),
    );
    msg(
        w,
        t2,
        "agent",
        Some(11),
        "We will call you tomorrow morning.",
        at(2026, 10, 1, 9),
    );
    msg(
        w,
        t3,
        "customer",
        None,
        "I cannot log in with jane.doe@otherco.example.",
        at(2022, 4, 1, 8),
    );

    // Invoices (statutory records): one linked by contact, one only by the copied customer number.
    let inv = |w: &mut BulkWriter,
               no: &str,
               contact: Option<u64>,
               company: Option<u64>,
               cust: &str,
               name: &str,
               email: Option<&str>,
               city: &str,
               issued: NaiveDate,
               total: u64| {
        w.add(
            "invoices",
            vec![
                text(no),
                opt_int(contact),
                opt_int(company),
                text(cust),
                text(name),
                email.map_or(Value::Null, text),
                text("Lindenallee 12"),
                text(city),
                text("10115"),
                date(issued),
                money(total),
                text("EUR"),
            ],
        )
    };
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    let i1 = inv(
        w,
        "INV-2019-0001",
        Some(jane),
        Some(acme),
        "CUST-0000001",
        "Jane Doe",
        Some("jane.doe@example.com"),
        "Berlin",
        day(2019, 5, 2),
        4_500_000,
    );
    let i2 = inv(
        w,
        "INV-2016-0007",
        None,
        None,
        "CUST-0000001",
        "J. Doe",
        None,
        "Berlin",
        day(2016, 12, 30),
        19_900,
    );
    let i3 = inv(
        w,
        "INV-2020-0042",
        Some(max),
        Some(max_co),
        "CUST-0000003",
        "Max Mustermann IT-Beratung",
        Some("max@mustermann-it.example"),
        "Muenchen",
        day(2020, 3, 2),
        350_000,
    );
    for (i, desc, q, price) in [
        (i1, "Tracking unit", 30, 120_000),
        (i1, "Installation", 1, 900_000),
        (i2, "Starter kit", 1, 19_900),
        (i3, "Security audit (days)", 5, 70_000),
    ] {
        w.add(
            "invoice_lines",
            vec![int(i), text(desc), int(q), money(price), money(q * price)],
        );
    }

    // Newsletter (only an e-mail copy), consents, web sessions.
    w.add(
        "newsletter_subscriptions",
        vec![
            text("jane.doe@example.com"),
            text("product-news"),
            text("Yes, send me product news (v3)."),
            text("203.0.113.10"),
            ts(at(2019, 2, 3, 20)),
            ts(at(2019, 2, 3, 20)),
            Value::Null,
        ],
    );
    w.add(
        "newsletter_subscriptions",
        vec![
            text("jane.doe@otherco.example"),
            text("product-news"),
            text("Yes, send me product news (v3)."),
            text("198.51.100.7"),
            ts(at(2020, 6, 3, 20)),
            Value::Null,
            Value::Null,
        ],
    );
    w.add(
        "consents",
        vec![
            int(jane),
            text("marketing_email"),
            text("granted"),
            text("web"),
            text("203.0.113.10"),
            ts(at(2019, 2, 3, 20)),
        ],
    );
    w.add(
        "consents",
        vec![
            int(jane),
            text("profiling"),
            text("withdrawn"),
            text("email"),
            Value::Null,
            ts(at(2024, 7, 1, 9)),
        ],
    );
    w.add(
        "consents",
        vec![
            int(max),
            text("marketing_email"),
            text("granted"),
            text("web"),
            text("198.51.100.20"),
            ts(at(2020, 1, 20, 9)),
        ],
    );
    w.add(
        "web_sessions",
        vec![
            int(jane),
            text("v-7f3a9c"),
            text("203.0.113.10"),
            text(AGENTS[0]),
            text("/pricing"),
            ts(at(2026, 9, 29, 20)),
        ],
    );
    w.add(
        "web_sessions",
        vec![
            int(jane),
            text("v-7f3a9c"),
            text("203.0.113.10"),
            text(AGENTS[3]),
            text("/contact"),
            ts(at(2026, 9, 30, 7)),
        ],
    );
    w.add(
        "web_sessions",
        vec![
            Value::Null,
            text("v-00aa11"),
            text("198.51.100.99"),
            text(AGENTS[2]),
            text("/"),
            ts(at(2026, 9, 30, 8)),
        ],
    );
    w.add(
        "web_sessions",
        vec![
            int(max),
            text("v-m4x"),
            text("198.51.100.20"),
            text(AGENTS[1]),
            text("/product/tracking"),
            ts(at(2020, 1, 20, 9)),
        ],
    );
}

/// Formats a phone number the way people type it.
fn spell_phone(rng: &mut Rng, area: &str, subscriber: &str) -> String {
    match rng.below(5) {
        0 => format!("+49 {area} {subscriber}"),
        1 => format!("0{area} {subscriber}"),
        2 => format!("0{area}-{subscriber}"),
        3 => format!("+49{area}{subscriber}"),
        _ => format!("(0{area}) {} {}", &subscriber[..3], &subscriber[3..]),
    }
}

/// The identity of generated contact `i`: (rng positioned after it, first, last, city, email).
fn generated_identity(
    seed: u64,
    i: u64,
    first_id: u64,
) -> (
    Rng,
    &'static str,
    &'static str,
    (&'static str, &'static str, &'static str),
    String,
) {
    let mut rng = Rng::new(seed ^ (i.wrapping_mul(0x2545_F491_4F6C_DD1D)));
    let first = *rng.pick(FIRST);
    let last = *rng.pick(LAST);
    let city = *rng.pick(CITIES);
    let domain = *rng.pick(DOMAINS);
    let id = first_id + i;
    let email = format!(
        "{}.{}.{}@{}",
        first.to_lowercase(),
        last.to_lowercase(),
        id,
        domain
    );
    (rng, first, last, city, email)
}

/// The e-mail address of generated contact `i` (what the demo's mentions refer to).
pub fn generated_email(seed: u64, i: u64, first_id: u64) -> String {
    generated_identity(seed, i, first_id).4
}

/// Contact `i` of the generated population (0-based) and all its rows.
fn generated_contact(w: &mut BulkWriter, seed: u64, i: u64, total: u64, first_id: u64) {
    let id = w.peek_id("contacts");
    debug_assert_eq!(id, first_id + i);
    let (mut rng, first, last, (city, postcode, area), email) =
        generated_identity(seed, i, first_id);
    let subscriber = format!("{}", 2_000_000 + i);
    let phone = format!("+49{area}{subscriber}");
    let customer_no = format!("CUST-{id:07}");
    let now = demo_now();
    let created = now - Duration::minutes(rng.below(10 * 365 * 24 * 60) as i64 + 60);
    let span = (now - created).num_minutes().max(1) as u64;
    let last_activity = created + Duration::minutes(rng.below(span) as i64);
    let owner = 1 + rng.below(EMPLOYEES);

    // Every fourth contact starts a company; one in ten of those is a sole trader.
    let company = if i % 4 == 0 {
        let sole = (i / 4) % 10 == 0;
        let name = if sole {
            format!(
                "{first} {last} {}",
                rng.pick(&["Consulting", "Design", "IT-Service", "Handwerk"])
            )
        } else {
            format!("{} {}", last, rng.pick(&["GmbH", "AG", "KG", "& Co."]))
        };
        Some((
            w.add(
                "companies",
                vec![
                    text(name),
                    text(format!("DE9{:08}", i)),
                    if sole {
                        Value::Null
                    } else {
                        text(format!("https://{}.example", last.to_lowercase()))
                    },
                    text(format!("{} {}", rng.pick(STREETS), 1 + rng.below(120))),
                    text(city),
                    text(postcode),
                    text("DE"),
                    Value::Bool(sole),
                    ts(created),
                ],
            ),
            sole,
        ))
    } else {
        None
    };
    // Contacts after a non-sole-trader company starter work there too (80%).
    let company_id = match company {
        Some((c, _)) => Some(c),
        None => {
            let starter = i - i % 4;
            let starter_sole = (starter / 4) % 10 == 0;
            (!starter_sole && rng.chance(80)).then(|| {
                // The starter's company was created before this contact.
                w.peek_id("companies") - 1
            })
        }
    };

    w.add(
        "contacts",
        vec![
            text(customer_no.clone()),
            text(first),
            text(last),
            text(email.clone()),
            if rng.chance(90) {
                text(phone.clone())
            } else {
                Value::Null
            },
            if rng.chance(60) {
                date(
                    NaiveDate::from_ymd_opt(
                        1950 + rng.below(55) as i32,
                        1 + rng.below(12) as u32,
                        1 + rng.below(28) as u32,
                    )
                    .unwrap_or_default(),
                )
            } else {
                Value::Null
            },
            text(format!("{} {}", rng.pick(STREETS), 1 + rng.below(120))),
            text(city),
            text(postcode),
            text("DE"),
            opt_int(company_id),
            int(owner),
            Value::Bool(rng.chance(5)),
            ts(created),
            ts(last_activity),
        ],
    );

    // Someone else this contact's e-mails may mention (another generated contact).
    let other = i.wrapping_mul(7919).wrapping_add(13) % total.max(1);

    if rng.chance(30) {
        let converted = rng.chance(50);
        w.add(
            "leads",
            vec![
                text(email.clone()),
                if converted { text(first) } else { Value::Null },
                if converted { text(last) } else { Value::Null },
                Value::Null,
                Value::Null,
                text(*rng.pick(&["web form", "webinar", "trade fair", "referral"])),
                text(if converted { "converted" } else { "open" }),
                if converted { int(id) } else { Value::Null },
                int(owner),
                ts(created - Duration::days(rng.below(200) as i64 + 1)),
            ],
        );
    }

    let mut deal_ids = Vec::new();
    for _ in 0..rng.below(2) + u64::from(rng.chance(10)) {
        let d_created = created + Duration::minutes(rng.below(span) as i64);
        let stage = *rng.pick(STAGES);
        deal_ids.push(w.add(
            "deals",
            vec![
                int(id),
                opt_int(company_id),
                text(format!(
                    "{} for {}",
                    rng.pick(&["Tracking units", "Support plan", "Consulting", "Licences"]),
                    last
                )),
                money(10_000 + rng.below(5_000_000)),
                text(stage),
                int(owner),
                ts(d_created),
                if matches!(stage, "won" | "lost") {
                    ts(d_created + Duration::days(30))
                } else {
                    Value::Null
                },
            ],
        ));
    }

    let activity_count = 1 + rng.below(3);
    for _ in 0..activity_count {
        let (ptype, pid) = match deal_ids.as_slice() {
            [] => ("Contact", id),
            ds if rng.chance(50) => ("Deal", *rng.pick(ds)),
            _ => ("Contact", id),
        };
        let topic = *rng.pick(TOPICS);
        let (kind, subject, body) = match rng.below(3) {
            0 => (
                "call",
                format!("Call about {topic}"),
                format!(
                    "Called {first} on {} about {topic}.",
                    spell_phone(&mut rng, area, &subscriber)
                ),
            ),
            1 => (
                "meeting",
                format!("Meeting: {topic}"),
                format!("Met {first} {last} to discuss {topic}; next steps agreed."),
            ),
            _ => {
                let cc = if rng.chance(5) && other != i {
                    format!(" cc: {}", generated_email(seed, other, first_id))
                } else {
                    String::new()
                };
                (
                    "email",
                    format!("Re: {topic}"),
                    format!("From: {email}\nHello, a question about {topic}.{cc}"),
                )
            }
        };
        let when = created + Duration::minutes(rng.below(span) as i64);
        w.add(
            "activities",
            vec![
                text(ptype),
                int(pid),
                text(kind),
                text(subject),
                text(body),
                int(owner),
                ts(when),
            ],
        );
    }

    if rng.chance(60) {
        let body = if rng.chance(30) {
            let spelled = match rng.below(3) {
                0 => customer_no.clone(),
                1 => customer_no.replace('-', ""),
                _ => format!("cust-{}", id),
            };
            format!("Customer {spelled} asked for paper invoices.")
        } else {
            format!(
                "{} prefers {}.",
                first,
                rng.pick(&["e-mail", "phone calls", "short meetings", "German"])
            )
        };
        w.add(
            "notes",
            vec![
                text("Contact"),
                int(id),
                text(body),
                int(owner),
                ts(created + Duration::days(1)),
            ],
        );
    }
    if let Some(&d) = deal_ids.first()
        && rng.chance(40)
    {
        w.add(
            "notes",
            vec![
                text("Deal"),
                int(d),
                text("Budget confirmed by the customer."),
                int(owner),
                ts(created + Duration::days(2)),
            ],
        );
    }
    if let Some((c, sole)) = company
        && rng.chance(50)
    {
        let body = if sole {
            format!("Sole trader, owner {first} {last}.")
        } else {
            "Framework agreement in place.".to_string()
        };
        w.add(
            "notes",
            vec![text("Company"), int(c), text(body), int(owner), ts(created)],
        );
    }

    if rng.chance(40) {
        let linked = rng.chance(70);
        let requester = if linked {
            email.clone()
        } else {
            // Typed by the customer into a web form: mixed case.
            let mut e = email.clone();
            if let Some(c) = e.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            e
        };
        let t_created = created + Duration::minutes(rng.below(span) as i64);
        let t = w.add(
            "tickets",
            vec![
                if linked { int(id) } else { Value::Null },
                text(requester),
                text(format!("{first} {last}")),
                text(format!("Question about {}", rng.pick(TOPICS))),
                text(*rng.pick(&["open", "pending", "closed"])),
                text(*rng.pick(&["low", "normal", "high"])),
                ts(t_created),
            ],
        );
        let phone_text = spell_phone(&mut rng, area, &subscriber);
        w.add(
            "ticket_messages",
            vec![
                int(t),
                text("customer"),
                Value::Null,
                text(if rng.chance(30) {
                    format!("Please call me back on {phone_text}.")
                } else {
                    "Hello, I have a question about my order.".to_string()
                }),
                ts(t_created),
            ],
        );
        if rng.chance(70) {
            w.add(
                "ticket_messages",
                vec![
                    int(t),
                    text("agent"),
                    opt_int(Some(1 + rng.below(EMPLOYEES))),
                    text(format!("Dear {first}, thank you for your message.")),
                    ts(t_created + Duration::hours(3)),
                ],
            );
        }
    }

    if !deal_ids.is_empty() && rng.chance(70) {
        let issued = (created + Duration::minutes(rng.below(span) as i64)).date();
        let lines = 1 + rng.below(3);
        let prices: Vec<(u64, u64)> = (0..lines)
            .map(|_| (1 + rng.below(10), 1_000 + rng.below(100_000)))
            .collect();
        let total: u64 = prices.iter().map(|(q, p)| q * p).sum();
        let invoice = w.add(
            "invoices",
            vec![
                text(format!(
                    "INV-{}-{:07}",
                    issued.format("%Y"),
                    w.peek_id("invoices")
                )),
                int(id),
                opt_int(company_id),
                text(customer_no.clone()),
                text(format!("{first} {last}")),
                text(email.clone()),
                text(format!("{} {}", rng.pick(STREETS), 1 + rng.below(120))),
                text(city),
                text(postcode),
                date(issued),
                money(total),
                text("EUR"),
            ],
        );
        for (q, p) in prices {
            w.add(
                "invoice_lines",
                vec![
                    int(invoice),
                    text(*rng.pick(&["Tracking unit", "Support hours", "Licence", "Installation"])),
                    int(q),
                    money(p),
                    money(q * p),
                ],
            );
        }
    }

    if rng.chance(35) {
        let sub = created + Duration::days(rng.below(100) as i64);
        w.add(
            "newsletter_subscriptions",
            vec![
                text(email.clone()),
                text(*rng.pick(&["product-news", "events"])),
                text("Yes, send me product news (v3)."),
                text(format!("203.0.113.{}", rng.below(254) + 1)),
                ts(sub),
                if rng.chance(80) {
                    ts(sub + Duration::minutes(5))
                } else {
                    Value::Null
                },
                if rng.chance(15) {
                    ts(sub + Duration::days(90))
                } else {
                    Value::Null
                },
            ],
        );
    }
    if rng.chance(50) {
        w.add(
            "consents",
            vec![
                int(id),
                text(*rng.pick(&["marketing_email", "profiling", "phone_marketing"])),
                text(*rng.pick(&["granted", "withdrawn"])),
                text(*rng.pick(&["web", "email", "phone"])),
                text(format!("198.51.100.{}", rng.below(254) + 1)),
                ts(created + Duration::days(3)),
            ],
        );
    }
    let sessions = rng.below(3);
    for s in 0..sessions + 1 {
        // The last session of each contact is anonymous (not logged in).
        let logged_in = s < sessions;
        w.add(
            "web_sessions",
            vec![
                if logged_in { int(id) } else { Value::Null },
                text(format!("v-{:x}", rng.next_u64() & 0xff_ffff)),
                text(format!("198.51.100.{}", rng.below(254) + 1)),
                text(*rng.pick(AGENTS)),
                text(*rng.pick(PAGES)),
                ts(created + Duration::minutes(rng.below(span) as i64)),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_stable() {
        let mut r = Rng::new(42);
        let a: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut r = Rng::new(42);
        let b: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn generated_rows_match_the_schema() {
        let mut w = BulkWriter::new(Dialect::Sqlite);
        employees(&mut w);
        showcase(&mut w);
        let first = w.peek_id("contacts");
        for i in 0..200 {
            generated_contact(&mut w, 1, i, 200, first);
        }
        for (i, t) in schema::TABLES.iter().enumerate() {
            for row in &w.buffers[i] {
                assert_eq!(row.len(), t.columns.len(), "{}", t.name);
            }
        }
        let total: u64 = w.counts.values().sum();
        let per_contact = total as f64 / 200.0;
        assert!(
            (8.0..14.0).contains(&per_contact),
            "{per_contact} rows per contact"
        );
    }
}
