//! Data-map validation (file, line and key in every error) and the linter against live
//! databases; the `lethe datamap check` command and its exit code.

use crate::support::Crm;
use lethe::policy::lint::{self, CatalogResult};
use lethe::policy::{self, Diagnostic, Severity};
use lethe::source::{self, Catalog, DbUrl};
use std::collections::BTreeMap;

const BASE: &str = r#"
version = 1
[controller]
name = "Test Ltd"
contact = "privacy@test.example"

[sources.crm]
url = "sqlite://unused.db"

[identities.email]
normalizer = "email"

[categories.contact]
label = "Contact"

[purposes.crm]
description = "CRM"
legal_basis = "contract"
"#;

fn load(extra: &str) -> Result<policy::Policy, Vec<Diagnostic>> {
    policy::load_texts(&[("policies/test.toml".to_string(), format!("{BASE}{extra}"))])
        .map_err(|e| e.0)
}

fn errors(extra: &str) -> Vec<Diagnostic> {
    match load(extra) {
        Ok(p) => panic!(
            "expected errors, got a valid map with warnings {:?}",
            p.warnings
        ),
        Err(d) => d
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    }
}

fn line_of(needle: &str, extra: &str) -> u32 {
    let text = format!("{BASE}{extra}");
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle") as u32
        + 1
}

const PEOPLE: &str = r#"
[tables.people]
source = "crm"
primary_key = ["id"]
purposes = ["crm"]
retention = "1 year"
on_erasure = "delete"
identities = [{ kind = "email", column = "email" }]
[tables.people.columns]
email = { category = "contact" }
"#;

#[test]
fn the_demo_map_is_valid() {
    let p = policy::load_dir(&crate::support::policies_dir()).expect("demo policies");
    assert_eq!(p.datamap.tables.len(), 14);
    assert!(p.digest.starts_with("sha256:"));
}

#[test]
fn malformed_toml_names_file_and_line() {
    let extra = "[tables.people\nsource = 1\n";
    let e = errors(extra);
    assert_eq!(e.len(), 1);
    assert_eq!(&*e[0].at.file, "policies/test.toml");
    assert_eq!(e[0].at.line, line_of("[tables.people", extra));
}

#[test]
fn unknown_keys_and_wrong_types_name_the_line() {
    let extra = format!(
        "{PEOPLE}\n[tables.other]\nsource = \"crm\"\nprimary_key = [\"id\"]\nretension = \"x\"\n"
    );
    let e = errors(&extra);
    assert_eq!(e[0].at.line, line_of("retension", &extra), "{e:?}");
    assert!(e[0].message.contains("retension"), "{e:?}");

    let extra = PEOPLE.replace("retention = \"1 year\"", "retention = 12");
    let e = errors(&extra);
    assert_eq!(e[0].at.line, line_of("retention = 12", &extra), "{e:?}");
}

#[test]
fn unknown_references_are_errors_with_suggestions() {
    let extra = format!(
        "{PEOPLE}\n[tables.orders]\nsource = \"crm\"\nprimary_key = [\"id\"]\npurposes = [\"crm\"]\nretention = \"x\"\non_erasure = \"delete\"\nlinks = [{{ from = \"peeple\", on = {{ person_id = \"id\" }} }}]\n"
    );
    let e = errors(&extra);
    let d = e
        .iter()
        .find(|d| d.key.contains("links[0].from"))
        .expect("link error");
    assert!(d.message.contains("did you mean \"people\""), "{d}");
    assert_eq!(d.at.line, line_of("peeple", &extra));

    for (from, to, key) in [
        (
            "category = \"contact\"",
            "category = \"kontakt\"",
            "category",
        ),
        ("kind = \"email\"", "kind = \"mail\"", "kind"),
        ("purposes = [\"crm\"]", "purposes = [\"sales\"]", "purposes"),
        ("source = \"crm\"", "source = \"warehouse\"", "source"),
        (
            "on_erasure = \"delete\"",
            "on_erasure = \"shred\"",
            "on_erasure",
        ),
    ] {
        let extra = PEOPLE.replace(from, to);
        let e = errors(&extra);
        assert!(e.iter().any(|d| d.key.ends_with(key)), "{key}: {e:?}");
    }
}

#[test]
fn sql_injection_in_identifiers_is_rejected_at_load_time() {
    let extra = PEOPLE.replace(
        "[tables.people.columns]\nemail",
        "[tables.people.columns]\n\"email; DROP TABLE people\"",
    );
    let e = errors(&extra);
    assert!(
        e.iter()
            .any(|d| d.message.contains("not a plain SQL identifier")),
        "{e:?}"
    );
    let extra = PEOPLE.replace("column = \"email\"", "column = \"email\\\" OR 1=1 --\"");
    let e = errors(&extra);
    assert!(
        e.iter()
            .any(|d| d.message.contains("not a plain SQL identifier")),
        "{e:?}"
    );
}

#[test]
fn unreachable_tables_and_bad_strategies_are_errors() {
    let extra = format!(
        "{PEOPLE}\n[tables.lonely]\nsource = \"crm\"\nprimary_key = [\"id\"]\npurposes = [\"crm\"]\nretention = \"x\"\non_erasure = \"delete\"\n"
    );
    let e = errors(&extra);
    assert!(
        e.iter()
            .any(|d| d.key == "tables.lonely" && d.message.contains("not reachable")),
        "{e:?}"
    );
    let extra = PEOPLE.replace(
        "email = { category = \"contact\" }",
        "email = { category = \"contact\", erase = \"generalize\", to = \"decade\" }",
    );
    let e = errors(&extra);
    assert!(e.iter().any(|d| d.key.ends_with("email.to")), "{e:?}");
    let extra = PEOPLE.replace("on_erasure = \"delete\"", "on_erasure = \"keep\"");
    let e = errors(&extra);
    assert!(e.iter().any(|d| d.message.contains("exemption")), "{e:?}");
}

fn lint_against(ddl: &str, extra: &str) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::Sqlite(dir.path().join("x.db"));
    let mut conn = source::connect(&url, true).unwrap();
    conn.batch(ddl).unwrap();
    let cat = Catalog::load(&mut conn).unwrap();
    let p = load(extra).unwrap_or_else(|e| panic!("{e:?}"));
    let cats: BTreeMap<String, CatalogResult<'_>> = BTreeMap::from([("crm".to_string(), Ok(&cat))]);
    lint::lint(&p.datamap, &cats)
}

#[test]
fn linter_finds_schema_problems() {
    let orders = "\n[tables.orders]\nsource = \"crm\"\nprimary_key = [\"id\"]\npurposes = [\"crm\"]\nretention = \"x\"\non_erasure = \"delete\"\nlinks = [{ from = \"people\", on = { person_id = \"id\" } }]\n[tables.orders.columns]\ntotal = { category = \"contact\" }\n";
    let extra = format!("{PEOPLE}{orders}");
    // Missing table.
    let d = lint_against(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT);",
        &extra,
    );
    assert!(
        d.iter()
            .any(|d| d.is_error() && d.message.contains("table \"orders\" does not exist")),
        "{d:?}"
    );
    // Missing column, with a suggestion.
    let d = lint_against(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT); CREATE TABLE orders (id INTEGER PRIMARY KEY, person_id INTEGER, totl REAL);",
        &extra,
    );
    assert!(
        d.iter().any(|d| d.is_error()
            && d.message.contains("column \"total\" does not exist")
            && d.message.contains("totl")),
        "{d:?}"
    );
    // No primary key; link type mismatch; unindexed link and identity; personal-looking columns.
    let d = lint_against(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, phone TEXT); CREATE TABLE orders (id INTEGER, person_id TEXT, total REAL); CREATE TABLE visitors (id INTEGER PRIMARY KEY, ip_address TEXT);",
        &extra,
    );
    let has = |sev: Severity, s: &str| d.iter().any(|x| x.severity == sev && x.message.contains(s));
    assert!(has(Severity::Error, "has no primary key"), "{d:?}");
    assert!(
        has(
            Severity::Error,
            "type mismatch: orders.person_id is text but people.id is integer"
        ),
        "{d:?}"
    );
    assert!(
        has(Severity::Warning, "no index on orders(person_id)"),
        "{d:?}"
    );
    assert!(has(Severity::Warning, "no index on people.email"), "{d:?}");
    assert!(
        has(Severity::Warning, "people.phone looks like phone data"),
        "{d:?}"
    );
    assert!(
        has(Severity::Warning, "table visitors is not in the data map"),
        "{d:?}"
    );
    // Errors name the file and line of the offending map entry.
    let e = d
        .iter()
        .find(|x| x.message.contains("type mismatch"))
        .unwrap();
    assert_eq!(&*e.at.file, "policies/test.toml");
    assert_eq!(e.at.line, line_of("from = \"people\"", &extra));
}

#[test]
fn linter_checks_strategies_against_column_types() {
    let extra = PEOPLE.replace("on_erasure = \"delete\"", "on_erasure = \"anonymize\"").replace(
        "email = { category = \"contact\" }",
        "email = { category = \"contact\", erase = \"null\" }\nborn = { category = \"contact\", erase = \"mask\" }\ncode = { category = \"contact\", erase = \"constant\", value = \"x\" }",
    );
    let d = lint_against(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT NOT NULL, born DATE, code TEXT UNIQUE); CREATE INDEX p_e ON people(email);",
        &extra,
    );
    let errs: Vec<&str> = d
        .iter()
        .filter(|x| x.is_error())
        .map(|x| x.message.as_str())
        .collect();
    assert!(errs.iter().any(|m| m.contains("NOT NULL")), "{errs:?}");
    assert!(
        errs.iter().any(|m| m.contains("mask only applies to text")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|m| m.contains("is unique")), "{errs:?}");
}

#[test]
fn demo_map_lints_clean_against_the_demo_crm() {
    let crm = Crm::sqlite(50);
    let p = policy::load_dir(&crate::support::policies_dir()).unwrap();
    let mut conn = crm.conn();
    let cat = Catalog::load(&mut conn).unwrap();
    let cats: BTreeMap<String, CatalogResult<'_>> = BTreeMap::from([("crm".to_string(), Ok(&cat))]);
    let d = lint::lint(&p.datamap, &cats);
    assert!(d.iter().all(|x| !x.is_error()), "{d:?}");
    // The text indexes are found, so no residual-scan index warnings.
    assert!(
        !d.iter().any(|x| x.message.contains("no text index")),
        "{d:?}"
    );
}

#[test]
fn check_command_exits_non_zero_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policies");
    std::fs::create_dir(&pol).unwrap();
    std::fs::write(
        pol.join("map.toml"),
        format!(
            "{BASE}{}",
            PEOPLE.replace("kind = \"email\"", "kind = \"mail\"")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["datamap", "check", "--offline"])
        .env("LETHE_POLICY_DIR", &pol)
        .env("LETHE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("map.toml:") && stdout.contains("unknown identity kind \"mail\""),
        "{stdout}"
    );

    // Against a live database: a missing table is an error, exit 1.
    std::fs::write(pol.join("map.toml"), format!("{BASE}{PEOPLE}")).unwrap();
    let db = dir.path().join("crm.db");
    source::connect(&DbUrl::Sqlite(db.clone()), true)
        .unwrap()
        .batch("CREATE TABLE x (id INTEGER PRIMARY KEY)")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["datamap", "check"])
        .env("LETHE_POLICY_DIR", &pol)
        .env("LETHE_DATA_DIR", dir.path())
        .env("LETHE_SOURCE_CRM_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("table \"people\" does not exist"));
}
