//! The tracer on real SQLite, PostgreSQL and (with the `mysql` feature) MariaDB demo CRMs:
//! exact footprints for the showcase people (polymorphic, multi-hop, copied and free-text
//! cases), the same-name stranger, the sole trader, unknown identities, and random subjects
//! against hand-written SQL.

use crate::support::{Crm, TestApp};
use lethe::bench::baseline;
use lethe::trace::{Footprint, Identity, TraceOptions};
use std::collections::{BTreeMap, BTreeSet};

fn id(kind: &str, value: &str) -> Identity {
    Identity {
        kind: kind.into(),
        value: value.into(),
    }
}

fn rows(t: &TestApp, fp: &Footprint) -> BTreeMap<String, BTreeSet<i64>> {
    let map = &t.app.policy.datamap;
    fp.tables
        .iter()
        .map(|(&ti, tr)| {
            let ids = tr
                .rows
                .keys()
                .map(|k| k.0[0].as_int().expect("int pk"))
                .collect();
            (map.tables[ti].name.clone(), ids)
        })
        .collect()
}

fn expect(pairs: &[(&str, &[i64])]) -> BTreeMap<String, BTreeSet<i64>> {
    pairs
        .iter()
        .map(|(t, ids)| (t.to_string(), ids.iter().copied().collect()))
        .collect()
}

fn mentions(fp: &Footprint) -> BTreeSet<(String, i64, String)> {
    fp.mentions
        .iter()
        .map(|m| {
            (
                m.table.clone(),
                m.key.0[0].as_int().expect("int pk"),
                m.identity_kind.clone(),
            )
        })
        .collect()
}

fn jane_rows() -> BTreeMap<String, BTreeSet<i64>> {
    expect(&[
        ("contacts", &[1]),
        ("leads", &[1, 2]),
        ("deals", &[1, 2]),
        // 1: her own call; 2, 3: on her deals (contact -> deal -> activity, polymorphic)
        ("activities", &[1, 2, 3]),
        ("notes", &[1, 2]),
        // 2: no contact id, only "Jane.Doe@Example.COM" typed into the form
        ("tickets", &[1, 2]),
        ("ticket_messages", &[1, 2, 3, 4]),
        // 2: linked only through the customer number copied onto the invoice
        ("invoices", &[1, 2]),
        ("invoice_lines", &[1, 2, 3]),
        ("newsletter_subscriptions", &[1]),
        ("consents", &[1, 2]),
        ("web_sessions", &[1, 2]),
    ])
}

fn check_showcase(t: &TestApp) {
    let opts = TraceOptions::default();
    // Jane Doe by e-mail (any case is normalized by the request layer; here: normalized).
    let fp = t
        .app
        .trace(&[id("email", "jane.doe@example.com")], &opts)
        .expect("trace");
    assert_eq!(rows(t, &fp), jane_rows());
    // Mentions in other people's records: her e-mail in Erika's activity, her customer
    // number typed into a company note.
    assert_eq!(
        mentions(&fp),
        BTreeSet::from([
            ("activities".to_string(), 4, "email".to_string()),
            ("notes".to_string(), 3, "customer_no".to_string()),
        ])
    );
    // Identities discovered from her contact row.
    let kinds: BTreeSet<_> = fp
        .identities
        .iter()
        .map(|i| (i.kind.as_str(), i.value.as_str()))
        .collect();
    assert!(kinds.contains(&("phone", "+49301234567")));
    assert!(kinds.contains(&("customer_no", "CUST-0000001")));

    // The same person found by phone or by customer number.
    for ident in [
        id("phone", "+49301234567"),
        id("customer_no", "CUST-0000001"),
    ] {
        let fp2 = t
            .app
            .trace(std::slice::from_ref(&ident), &opts)
            .expect("trace");
        assert_eq!(rows(t, &fp2), jane_rows(), "by {}", ident.kind);
    }

    // The other Jane Doe: same name, none of the first Jane's rows.
    let fp = t
        .app
        .trace(&[id("email", "jane.doe@otherco.example")], &opts)
        .expect("trace");
    assert_eq!(
        rows(t, &fp),
        expect(&[
            ("contacts", &[2]),
            ("deals", &[3]),
            ("activities", &[5, 6]),
            ("notes", &[5]),
            ("tickets", &[3]),
            ("ticket_messages", &[5]),
            ("newsletter_subscriptions", &[2]),
        ])
    );
    assert!(fp.mentions.is_empty(), "{:?}", fp.mentions);

    // Max Mustermann: his sole-trader company is his own data, and so is its note.
    let fp = t
        .app
        .trace(&[id("email", "max@mustermann-it.example")], &opts)
        .expect("trace");
    assert_eq!(
        rows(t, &fp),
        expect(&[
            ("contacts", &[3]),
            ("companies", &[3]),
            ("leads", &[3]),
            ("deals", &[4]),
            ("activities", &[7]),
            ("notes", &[4]),
            ("invoices", &[3]),
            ("invoice_lines", &[4]),
            ("consents", &[3]),
            ("web_sessions", &[4]),
        ])
    );
    // Paths explain each row: the note was reached contact -> company -> note.
    let notes = t.app.policy.datamap.table_idx("notes").expect("notes");
    let key = fp.tables[&notes].rows.keys().next().expect("note").clone();
    let path = fp.path_text(&t.app.policy.datamap, notes, &key);
    assert!(
        path.contains("companies.id = contacts.company_id")
            && path.contains("parent_type = 'Company'"),
        "{path}"
    );

    // Nobody: an empty footprint, not an error.
    let fp = t
        .app
        .trace(&[id("email", "nobody@nowhere.example")], &opts)
        .expect("trace");
    assert!(fp.is_empty());
    assert_eq!(fp.row_count(), 0);
}

/// Random generated contacts: the tracer finds exactly what hand-written SQL finds.
fn check_against_hand_written_sql(t: &TestApp, samples: u64) {
    let mut conn = t.crm.conn();
    let first = 5; // four showcase contacts come first
    let opts = TraceOptions {
        residual: false,
        use_text_index: true,
    };
    let mut checked = 0;
    for s in 0..samples {
        let i = (s * 7_919 + 3) % t.crm.contacts;
        let email = lethe::demo::seed::generated_email(crate::support::SEED, i, first);
        let expected = baseline::contact_rows(&mut conn, &email).expect("baseline");
        let fp = t.app.trace(&[id("email", &email)], &opts).expect("trace");
        let got = rows(t, &fp);
        let expected: BTreeMap<String, BTreeSet<i64>> = expected
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(got, expected, "contact {i} ({email})");
        checked += 1;
    }
    assert_eq!(checked, samples);
}

/// The residual scan finds the same mentions with and without the text indexes.
fn check_residual_with_and_without_index(t: &TestApp) {
    let ids = [id("email", "jane.doe@example.com")];
    let with = t
        .app
        .trace(
            &ids,
            &TraceOptions {
                residual: true,
                use_text_index: true,
            },
        )
        .expect("trace");
    let without = t
        .app
        .trace(
            &ids,
            &TraceOptions {
                residual: true,
                use_text_index: false,
            },
        )
        .expect("trace");
    assert_eq!(mentions(&with), mentions(&without));
    assert!(!with.mentions.is_empty());
    // Generated e-mails mention other generated contacts ("cc: ..."): find one and check
    // the scan reports it for the mentioned person.
    let mut conn = t.crm.conn();
    let mut q = conn.sql();
    q.push(
        "SELECT id, body FROM activities WHERE body LIKE '%cc: %' AND id > 7 ORDER BY id LIMIT 1",
    );
    let found = conn.query(&q).expect("query");
    let row = found.first().expect("the demo data has cc mentions");
    let body = row[1].as_text().expect("text");
    let cc = body
        .rsplit("cc: ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .expect("cc")
        .to_string();
    let fp = t
        .app
        .trace(&[id("email", &cc)], &TraceOptions::default())
        .expect("trace");
    let act = row[0].as_int().expect("id");
    assert!(
        mentions(&fp).contains(&("activities".to_string(), act, "email".to_string())),
        "mention of {cc} in activity {act} not found: {:?}",
        fp.mentions
    );
}

#[test]
fn showcase_footprints_sqlite() {
    let t = TestApp::builder().crm(Crm::sqlite(300)).build();
    check_showcase(&t);
}

#[test]
fn random_subjects_match_hand_written_sql_sqlite() {
    let t = TestApp::builder().crm(Crm::sqlite(2_000)).build();
    check_against_hand_written_sql(&t, 60);
}

#[test]
fn residual_scan_sqlite() {
    let t = TestApp::builder().crm(Crm::sqlite(2_000)).build();
    check_residual_with_and_without_index(&t);
}

#[test]
fn showcase_footprints_postgres() {
    let db = crate::require_pg!();
    let t = TestApp::builder().crm(Crm::postgres(db, 300)).build();
    check_showcase(&t);
}

#[test]
fn random_subjects_match_hand_written_sql_postgres() {
    let db = crate::require_pg!();
    let t = TestApp::builder().crm(Crm::postgres(db, 1_000)).build();
    check_against_hand_written_sql(&t, 40);
}

#[test]
fn residual_scan_postgres() {
    let db = crate::require_pg!();
    let t = TestApp::builder().crm(Crm::postgres(db, 1_000)).build();
    check_residual_with_and_without_index(&t);
}

#[cfg(feature = "mysql")]
#[test]
fn showcase_footprints_mariadb() {
    let db = crate::require_mysql!();
    let t = TestApp::builder().crm(Crm::mariadb(db, 300)).build();
    check_showcase(&t);
}

#[cfg(feature = "mysql")]
#[test]
fn random_subjects_match_hand_written_sql_mariadb() {
    let db = crate::require_mysql!();
    let t = TestApp::builder().crm(Crm::mariadb(db, 1_000)).build();
    check_against_hand_written_sql(&t, 40);
}

#[cfg(feature = "mysql")]
#[test]
fn residual_scan_mariadb() {
    let db = crate::require_mysql!();
    let t = TestApp::builder().crm(Crm::mariadb(db, 1_000)).build();
    check_residual_with_and_without_index(&t);
}

/// MariaDB specifics: the catalog of the demo schema (types, keys, foreign keys, no text
/// index), how every column type lethe meets is read back, and the demo data map linting
/// without errors against it.
#[cfg(feature = "mysql")]
#[test]
fn catalog_values_and_lint_mariadb() {
    use lethe::source::{Catalog, TypeKind, Value};
    let db = crate::require_mysql!();
    let crm = Crm::mariadb(db, 20);
    let mut conn = crm.conn();
    let cat = Catalog::load(&mut conn).expect("catalog");
    let contacts = cat.table("contacts").expect("contacts");
    assert_eq!(contacts.primary_key, vec!["id".to_string()]);
    let kind = |t: &str, c: &str| cat.column_type(t, c).expect("column").kind;
    assert_eq!(kind("contacts", "do_not_sell"), TypeKind::Bool);
    assert_eq!(kind("contacts", "last_activity_at"), TypeKind::Timestamp);
    assert_eq!(kind("contacts", "birth_date"), TypeKind::Date);
    assert_eq!(kind("contacts", "email"), TypeKind::Text);
    assert_eq!(kind("activities", "body"), TypeKind::Text);
    assert_eq!(kind("invoices", "total"), TypeKind::Decimal);
    assert!(contacts.has_index_on(&["email"]));
    assert!(contacts.column("customer_no").expect("customer_no").unique);
    assert!(
        contacts
            .foreign_keys
            .iter()
            .any(|fk| fk.columns == ["company_id"] && fk.ref_table == "companies"),
        "{:?}",
        contacts.foreign_keys
    );
    assert!(cat.tables.values().all(|t| t.text_indexes.is_empty()));

    // The demo data map lints without errors, and without residual-scan index warnings.
    let pol = lethe::policy::load_dir(&crate::support::policies_dir()).expect("policy");
    let catalogs = BTreeMap::from([("crm".to_string(), Ok(&cat))]);
    let diags = lethe::policy::lint::lint(&pol.datamap, &catalogs);
    assert!(
        diags
            .iter()
            .all(|d| d.severity != lethe::policy::Severity::Error && !d.key.ends_with(".scan")),
        "{diags:?}"
    );

    conn.batch(
        "CREATE TABLE kinds (id BIGINT PRIMARY KEY, flag BOOLEAN, small TINYINT, \
         big BIGINT UNSIGNED, price DECIMAL(12,2), ratio DOUBLE, f FLOAT, day DATE, \
         at DATETIME(6), at0 DATETIME, ts TIMESTAMP NULL, t TIME, doc JSON, \
         mood ENUM('happy','sad'), tags SET('a','b'), bin VARBINARY(4), data BLOB, \
         name VARCHAR(20) COLLATE utf8mb4_bin, body LONGTEXT) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .expect("create");
    conn.batch(
        "INSERT INTO kinds VALUES (1, TRUE, -5, 18446744073709551615, 12.50, 0.25, 1.5, \
         '2024-02-29', '2024-02-29 13:45:00.120000', '2024-02-29 13:45:00', \
         '2024-02-29 13:45:00', '-26:01:02', '{\"a\": 1}', 'sad', 'a,b', 0x00ff, 'xyz', \
         'Ann', 'Grüße'), \
         (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
         NULL, NULL, NULL, NULL, NULL)",
    )
    .expect("insert");
    let cat = Catalog::load(&mut conn).expect("catalog");
    let cols: Vec<String> = cat
        .table("kinds")
        .expect("kinds")
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(kind_of(&cat, "flag"), TypeKind::Bool);
    assert_eq!(kind_of(&cat, "mood"), TypeKind::Text);
    assert_eq!(kind_of(&cat, "bin"), TypeKind::Bytes);
    let d = conn.dialect();
    let mut q = conn.sql();
    q.push("SELECT ");
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push(&d.select_column(c, cat.column_type("kinds", c)));
    }
    q.push(" FROM kinds ORDER BY id");
    let rows = conn.query(&q).expect("select");
    let text = |s: &str| Value::Text(s.into());
    assert_eq!(
        rows[0],
        vec![
            Value::Int(1),
            Value::Int(1),
            Value::Int(-5),
            text("18446744073709551615"),
            text("12.50"),
            Value::Float(0.25),
            Value::Float(1.5),
            text("2024-02-29"),
            text("2024-02-29 13:45:00.12"),
            text("2024-02-29 13:45:00"),
            text("2024-02-29 13:45:00"),
            text("-26:01:02"),
            text("{\"a\": 1}"),
            text("sad"),
            text("a,b"),
            Value::Bytes(vec![0, 255]),
            Value::Bytes(b"xyz".to_vec()),
            text("Ann"),
            text("Grüße"),
        ]
    );
    assert!(rows[1][1..].iter().all(Value::is_null), "{:?}", rows[1]);
}

#[cfg(feature = "mysql")]
fn kind_of(cat: &lethe::source::Catalog, col: &str) -> lethe::source::TypeKind {
    cat.column_type("kinds", col).expect("column").kind
}

#[test]
fn demo_seed_is_deterministic() {
    let a = Crm::sqlite(150);
    let b = Crm::sqlite(150);
    for table in ["contacts", "activities", "invoices", "web_sessions"] {
        let dump = |crm: &Crm| {
            let mut c = crm.conn();
            let mut q = c.sql();
            q.push("SELECT * FROM ").ident(table).push(" ORDER BY id");
            c.query(&q).expect("dump")
        };
        assert_eq!(dump(&a), dump(&b), "{table}");
    }
}
