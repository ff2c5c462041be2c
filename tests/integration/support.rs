//! Test support: demo CRMs on SQLite, PostgreSQL or (with the `mysql` feature) MariaDB, a
//! `TestApp` builder that wires the real engine (store, policy, sources, keys) and serves
//! the real router on 127.0.0.1.

use lethe::app::{App, AppState};
use lethe::config::Config;
use lethe::crypto::MasterKey;
use lethe::request::Role;
use lethe::source::{self, DbUrl};
use lethe::store::{Store, tokens};
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;

pub const SEED: u64 = lethe::demo::DEFAULT_SEED;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn policies_dir() -> PathBuf {
    repo().join("policies")
}

/// The PostgreSQL server for tests (`LETHE_TEST_PG_URL`). When it is not set the test is
/// skipped, unless `LETHE_TEST_REQUIRE_SERVERS=1` (CI), where that is a failure.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("LETHE_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("LETHE_TEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("LETHE_TEST_PG_URL is not set but LETHE_TEST_REQUIRE_SERVERS=1");
            }
            eprintln!("SKIPPED: set LETHE_TEST_PG_URL to run the PostgreSQL tests");
            None
        }
    }
}

/// Returns early from a test when PostgreSQL is not configured.
#[macro_export]
macro_rules! require_pg {
    () => {
        match $crate::support::PgDb::create() {
            Some(db) => db,
            None => return,
        }
    };
}

/// A fresh PostgreSQL database, dropped at the end of the test.
pub struct PgDb {
    admin: String,
    pub name: String,
    pub url: String,
}

fn with_db(url: &str, db: &str) -> String {
    // Replace the path component (database name) of a postgres URL.
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| i + scheme_end);
    let mut out = format!("{}/{}", &base[..path_start], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl PgDb {
    pub fn create() -> Option<PgDb> {
        let admin = pg_admin_url()?;
        let name = format!("lethe_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = source::connect(&DbUrl::parse(&admin).expect("pg url"), false)
            .expect("connect to LETHE_TEST_PG_URL");
        conn.batch(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let url = with_db(&admin, &name);
        Some(PgDb { admin, name, url })
    }

    pub fn db_url(&self) -> DbUrl {
        DbUrl::parse(&self.url).expect("pg url")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(url) = DbUrl::parse(&self.admin)
            && let Ok(mut conn) = source::connect(&url, false)
        {
            let _ = conn.batch(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The MySQL/MariaDB server for tests (`LETHE_TEST_MYSQL_URL`, e.g.
/// `mysql://root@127.0.0.1:3306/test`). When it is not set the test is skipped, unless
/// `LETHE_TEST_REQUIRE_SERVERS=1` (CI), where that is a failure.
#[cfg(feature = "mysql")]
pub fn mysql_admin_url() -> Option<String> {
    match std::env::var("LETHE_TEST_MYSQL_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("LETHE_TEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("LETHE_TEST_MYSQL_URL is not set but LETHE_TEST_REQUIRE_SERVERS=1");
            }
            eprintln!("SKIPPED: set LETHE_TEST_MYSQL_URL to run the MariaDB tests");
            None
        }
    }
}

/// Returns early from a test when MySQL/MariaDB is not configured.
#[cfg(feature = "mysql")]
#[macro_export]
macro_rules! require_mysql {
    () => {
        match $crate::support::MyDb::create() {
            Some(db) => db,
            None => return,
        }
    };
}

/// A fresh MySQL/MariaDB database (`lethe_t_<random>`), dropped at the end of the test.
#[cfg(feature = "mysql")]
pub struct MyDb {
    admin: String,
    pub name: String,
    pub url: String,
}

#[cfg(feature = "mysql")]
impl MyDb {
    pub fn create() -> Option<MyDb> {
        let admin = mysql_admin_url()?;
        let name = format!("lethe_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = source::connect(&DbUrl::parse(&admin).expect("mysql url"), false)
            .expect("connect to LETHE_TEST_MYSQL_URL");
        conn.batch(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .expect("create database");
        let url = with_db(&admin, &name);
        Some(MyDb { admin, name, url })
    }

    pub fn db_url(&self) -> DbUrl {
        DbUrl::parse(&self.url).expect("mysql url")
    }
}

#[cfg(feature = "mysql")]
impl Drop for MyDb {
    fn drop(&mut self) {
        if let Ok(url) = DbUrl::parse(&self.admin)
            && let Ok(mut conn) = source::connect(&url, false)
        {
            let _ = conn.batch(&format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

/// A seeded demo CRM.
pub struct Crm {
    pub url: DbUrl,
    pub contacts: u64,
    _dir: Option<TempDir>,
    _pg: Option<PgDb>,
    #[cfg(feature = "mysql")]
    _my: Option<MyDb>,
}

impl Crm {
    pub fn sqlite(contacts: u64) -> Crm {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = DbUrl::Sqlite(dir.path().join("crm.sqlite3"));
        let mut conn = source::connect(&url, true).expect("create sqlite crm");
        lethe::demo::seed(&mut conn, contacts, SEED, |_| {}).expect("seed");
        Crm {
            url,
            contacts,
            _dir: Some(dir),
            _pg: None,
            #[cfg(feature = "mysql")]
            _my: None,
        }
    }

    pub fn postgres(db: PgDb, contacts: u64) -> Crm {
        let url = db.db_url();
        let mut conn = source::connect(&url, false).expect("connect pg crm");
        lethe::demo::seed(&mut conn, contacts, SEED, |_| {}).expect("seed");
        Crm {
            url,
            contacts,
            _dir: None,
            _pg: Some(db),
            #[cfg(feature = "mysql")]
            _my: None,
        }
    }

    /// The demo CRM seeded into a fresh MariaDB/MySQL database.
    #[cfg(feature = "mysql")]
    pub fn mariadb(db: MyDb, contacts: u64) -> Crm {
        let url = db.db_url();
        let mut conn = source::connect(&url, false).expect("connect mysql crm");
        lethe::demo::seed(&mut conn, contacts, SEED, |_| {}).expect("seed");
        Crm {
            url,
            contacts,
            _dir: None,
            _pg: None,
            _my: Some(db),
        }
    }

    pub fn url_string(&self) -> String {
        self.url.to_config_string()
    }

    pub fn conn(&self) -> source::SourceConn {
        source::connect(&self.url, false).expect("connect crm")
    }
}

/// The engine wired to a CRM, with tokens for each role.
pub struct TestApp {
    pub app: AppState,
    pub officer: String,
    pub auditor: String,
    pub admin: String,
    pub crm: Crm,
    _dir: TempDir,
    _store_db: Option<PgDb>,
}

/// A change to the configuration before the app opens.
type ConfigTweak = Box<dyn FnOnce(&mut Config)>;

pub struct TestAppBuilder {
    crm: Option<Crm>,
    store_pg: Option<PgDb>,
    policy_dir: PathBuf,
    faults: Vec<(String, u64)>,
    tweaks: Vec<ConfigTweak>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            crm: None,
            store_pg: None,
            policy_dir: policies_dir(),
            faults: Vec::new(),
            tweaks: Vec::new(),
        }
    }

    /// Serves the real router on a free port of 127.0.0.1; returns the base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // The real server: request-head limits and the peer address for the rate limits.
        let app = self.app.clone();
        tokio::spawn(async move {
            lethe::http::server::serve(listener, app, std::future::pending())
                .await
                .expect("serve");
        });
        format!("http://{addr}")
    }
}

impl TestAppBuilder {
    pub fn crm(mut self, crm: Crm) -> Self {
        self.crm = Some(crm);
        self
    }

    /// Uses the demo data map with these retention rules instead of the demo's.
    pub fn retention(mut self, rules_toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        std::fs::copy(
            policies_dir().join("datamap.toml"),
            dir.join("datamap.toml"),
        )
        .expect("copy data map");
        std::fs::write(dir.join("retention.toml"), rules_toml).expect("write rules");
        self.policy_dir = dir;
        self
    }

    /// Sleeps at a fault-injection point (see `Config::faults`).
    pub fn fault(mut self, point: &str, ms: u64) -> Self {
        self.faults.push((point.to_string(), ms));
        self
    }

    /// Uses the policies (data map and retention rules) in this directory.
    pub fn policies(mut self, dir: PathBuf) -> Self {
        self.policy_dir = dir;
        self
    }

    /// Changes the configuration before the app opens (settings, environment, sources).
    pub fn configure(mut self, f: impl FnOnce(&mut Config) + 'static) -> Self {
        self.tweaks.push(Box::new(f));
        self
    }

    pub fn store_on_postgres(mut self, db: PgDb) -> Self {
        self.store_pg = Some(db);
        self
    }

    pub fn build(self) -> TestApp {
        let crm = self.crm.unwrap_or_else(|| Crm::sqlite(200));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_data_dir(dir.path(), &self.policy_dir);
        config.source_urls.insert("crm".into(), crm.url_string());
        config.master_key = Some(MasterKey::generate().to_base64());
        config.faults = self.faults.into_iter().collect();
        // Tests drive the API and the sign-in form far faster than people do; the rate
        // limits are tested on their own (`hostile`), with `configure`.
        config.http.api_per_token = lethe::config::RateSetting::OFF;
        config.http.api_per_ip = lethe::config::RateSetting::OFF;
        config.http.sign_in_per_ip = lethe::config::RateSetting::OFF;
        if let Some(db) = &self.store_pg {
            config.store_url = db.url.clone();
        }
        for f in self.tweaks {
            f(&mut config);
        }
        let store =
            Store::open(&DbUrl::parse(&config.store_url).expect("store url")).expect("open store");
        store.migrate().expect("migrate");
        let token = |role: Role| {
            store
                .write(|c| tokens::create(c, role, "test", None))
                .expect("token")
                .1
        };
        let officer = token(Role::Officer);
        let auditor = token(Role::Auditor);
        let admin = token(Role::Admin);
        let app = Arc::new(App::open(config).expect("open app"));
        TestApp {
            app,
            officer,
            auditor,
            admin,
            crm,
            _dir: dir,
            _store_db: self.store_pg,
        }
    }
}

/// An HTTP client that never uses a proxy (tests only talk to 127.0.0.1).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}
