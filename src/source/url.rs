//! Connection URLs with explicit scheme dispatch: an unknown scheme is an error, never a
//! SQLite file by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A resolved database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// `sqlite://relative/path.db` or `sqlite:///absolute/path.db`.
    Sqlite(PathBuf),
    /// `postgres://` or `postgresql://` (passed to libpq as written).
    Postgres(String),
    /// `mysql://` or `mariadb://` (a CRM source only, never the engine store). Held with the
    /// `mysql://` scheme that libmysqlclient expects; needs the `mysql` cargo feature.
    #[cfg(feature = "mysql")]
    Mysql(String),
}

impl DbUrl {
    /// Parses a URL; the error says what was wrong without echoing credentials.
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or("");
            if path.is_empty() {
                return Err("sqlite:// URL without a file path".into());
            }
            return Ok(DbUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let rest = url.split_once("://").map_or("", |(_, r)| r);
            if rest.is_empty() {
                return Err("postgres:// URL without a host or database".into());
            }
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        if let Some(rest) = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
        {
            return Self::mysql(rest);
        }
        let scheme = url.split_once("://").map_or("<none>", |(s, _)| s);
        Err(format!(
            "unknown URL scheme \"{scheme}\" (supported: {SUPPORTED})"
        ))
    }

    /// `mysql://` and `mariadb://` URLs (the part after the scheme), normalized to `mysql://`.
    #[cfg(feature = "mysql")]
    fn mysql(rest: &str) -> Result<DbUrl, String> {
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        if host.is_empty() || host.starts_with('/') {
            return Err("mysql:// URL without a host".into());
        }
        let db = host.split_once('/').map_or("", |(_, d)| d);
        if db.split('?').next().unwrap_or("").is_empty() {
            return Err("mysql:// URL without a database (mysql://user@host:3306/crm)".into());
        }
        Ok(DbUrl::Mysql(format!("mysql://{rest}")))
    }

    /// Without the `mysql` feature a MySQL/MariaDB URL is a clear configuration error.
    #[cfg(not(feature = "mysql"))]
    fn mysql(_rest: &str) -> Result<DbUrl, String> {
        Err(
            "MySQL/MariaDB sources need a lethe built with the `mysql` cargo feature \
             (cargo build --release --features mysql, which links libmysqlclient; \
             Debian: apt-get install libmariadb-dev); this build supports sqlite:// and postgres://"
                .into(),
        )
    }

    /// The URL as configuration takes it, credentials included (`sqlite://path`, the
    /// PostgreSQL or MySQL URL as given). Never log it: [`fmt::Display`] redacts.
    pub fn to_config_string(&self) -> String {
        match self {
            DbUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DbUrl::Postgres(u) => u.clone(),
            #[cfg(feature = "mysql")]
            DbUrl::Mysql(u) => u.clone(),
        }
    }

    /// `sqlite`, `postgres` or `mysql`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            DbUrl::Sqlite(_) => "sqlite",
            DbUrl::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            DbUrl::Mysql(_) => "mysql",
        }
    }
}

/// The schemes this build accepts, for error messages.
#[cfg(feature = "mysql")]
const SUPPORTED: &str = "sqlite://, postgres://, postgresql://, mysql://, mariadb://";
#[cfg(not(feature = "mysql"))]
const SUPPORTED: &str = "sqlite://, postgres://, postgresql://";

/// Shows the URL with any password replaced by `***`.
impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            DbUrl::Postgres(u) => f.write_str(&redact_password(u)),
            #[cfg(feature = "mysql")]
            DbUrl::Mysql(u) => f.write_str(&redact_password(u)),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// How a data-map source URL is resolved: `env:VAR` reads the variable from the settings
/// captured at start-up (never from the process environment later), and an override by
/// source name wins over the file.
pub struct SourceUrl;

impl SourceUrl {
    /// Syntax check used by the policy validator (no environment needed).
    pub fn check_syntax(raw: &str) -> Result<(), String> {
        if let Some(var) = raw.strip_prefix("env:") {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "\"env:{var}\" does not name an environment variable"
                ));
            }
            return Ok(());
        }
        DbUrl::parse(raw).map(|_| ())
    }

    pub fn resolve(
        name: &str,
        raw: &str,
        env: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<DbUrl, String> {
        if let Some(url) = overrides.get(name) {
            return DbUrl::parse(url).map_err(|e| format!("override for source {name}: {e}"));
        }
        if let Some(var) = raw.strip_prefix("env:") {
            let url = env
                .get(var)
                .ok_or_else(|| format!("source {name}: environment variable {var} is not set"))?;
            return DbUrl::parse(url).map_err(|e| format!("source {name} ({var}): {e}"));
        }
        DbUrl::parse(raw).map_err(|e| format!("source {name}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_dispatch_explicitly() {
        assert_eq!(
            DbUrl::parse("sqlite://data/crm.db").unwrap(),
            DbUrl::Sqlite("data/crm.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite:///tmp/crm.db").unwrap(),
            DbUrl::Sqlite("/tmp/crm.db".into())
        );
        assert!(matches!(
            DbUrl::parse("postgresql://u@localhost/x").unwrap(),
            DbUrl::Postgres(_)
        ));
        for bad in ["crm.db", "sqlite://", "mongodb://x", "file:crm.db", ""] {
            assert!(DbUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mysql_urls_need_the_feature() {
        for u in [
            "mysql://root@127.0.0.1:3306/crm",
            "mariadb://root@127.0.0.1/crm",
        ] {
            let r = DbUrl::parse(u);
            if cfg!(feature = "mysql") {
                assert!(r.is_ok(), "{u}: {r:?}");
            } else {
                let e = r.unwrap_err();
                assert!(e.contains("`mysql` cargo feature"), "{e}");
            }
        }
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_urls_normalize_and_redact() {
        let u = DbUrl::parse("mariadb://lethe:s3cret@db:3306/crm").unwrap();
        assert_eq!(u, DbUrl::Mysql("mysql://lethe:s3cret@db:3306/crm".into()));
        assert_eq!(u.to_string(), "mysql://lethe:***@db:3306/crm");
        assert_eq!(u.backend_name(), "mysql");
        for bad in [
            "mysql://",
            "mysql://root@db",
            "mysql://root@db/",
            "mariadb:///crm",
        ] {
            assert!(DbUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        let u = DbUrl::parse("postgres://lethe:s3cret@db:5432/crm").unwrap();
        assert_eq!(u.to_string(), "postgres://lethe:***@db:5432/crm");
    }

    #[test]
    fn env_and_overrides() {
        let env = BTreeMap::from([("CRM".to_string(), "sqlite://a.db".to_string())]);
        let none = BTreeMap::new();
        assert_eq!(
            SourceUrl::resolve("crm", "env:CRM", &env, &none).unwrap(),
            DbUrl::Sqlite("a.db".into())
        );
        assert!(SourceUrl::resolve("crm", "env:MISSING", &env, &none).is_err());
        let ov = BTreeMap::from([("crm".to_string(), "sqlite://b.db".to_string())]);
        assert_eq!(
            SourceUrl::resolve("crm", "env:MISSING", &env, &ov).unwrap(),
            DbUrl::Sqlite("b.db".into())
        );
        assert!(SourceUrl::check_syntax("env:BAD-NAME").is_err());
    }
}
