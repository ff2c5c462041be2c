//! Typed settings, read once at start-up from an optional TOML file and the environment
//! (the environment wins), then passed around inside [`crate::app::App`]. No globals.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings of one lethe process.
#[derive(Clone)]
pub struct Config {
    /// Working directory for the demo, the default store and the default key file.
    pub data_dir: PathBuf,
    /// Engine store URL (`sqlite://...` or `postgres://...`).
    pub store_url: String,
    pub policy_dir: PathBuf,
    pub listen: SocketAddr,
    /// The master key itself (from `LETHE_MASTER_KEY`); wins over the key file.
    pub master_key: Option<String>,
    pub master_key_file: PathBuf,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    pub source_pool_size: u32,
    /// Source URL overrides by source name (`LETHE_SOURCE_<NAME>_URL`).
    pub source_urls: BTreeMap<String, String>,
    /// The environment as read at start-up (for `env:VAR` source URLs).
    pub env: BTreeMap<String, String>,
    /// Fault injection for crash tests (`LETHE_FAULTS=point=sleep:MS,...`): at each named
    /// point the process announces itself on stderr and sleeps, so a test can kill it there.
    pub faults: BTreeMap<String, u64>,
    /// How long a web UI sign-in lasts (`LETHE_SESSION_TTL_MINUTES`, default 480).
    pub session_ttl: chrono::Duration,
    /// Whether the session cookie carries `Secure` (`LETHE_COOKIE_SECURE`: `true`, `false`
    /// or `auto`, the default: secure unless lethe listens on a loopback address only).
    pub cookie_secure: bool,
    /// Background work: workers, leases, back-off.
    pub jobs: JobSettings,
    /// This replica's name in job and rule leases (`LETHE_NODE_NAME`, default the host
    /// name). Replicas on different machines must have different names.
    pub node_name: String,
}

/// How `lethe serve` runs background jobs (request execution, retention runs, notices).
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Jobs this process runs at once (`LETHE_WORKERS`, default 2; 0 serves without
    /// running background jobs).
    pub workers: usize,
    /// How long a claim lasts without renewal (`LETHE_JOB_LEASE_SECS`, default 60). A job
    /// whose worker died is claimed again by another process once this has passed.
    pub lease: chrono::Duration,
    /// How often an idle worker looks for due jobs (`LETHE_JOB_POLL_MS`, default 1000).
    pub poll: std::time::Duration,
    /// First retry delay after a retryable failure (`LETHE_RETRY_BASE_MS`, default 5000);
    /// doubles per attempt up to `retry_max`.
    pub retry_base: std::time::Duration,
    /// Longest retry delay (`LETHE_RETRY_MAX_SECS`, default 900).
    pub retry_max: std::time::Duration,
    /// First wait before a notice is sent again after a failed attempt
    /// (`LETHE_NOTICE_RETRY_BASE_MS`, default 120000); doubles per attempt, with jitter.
    pub notice_retry_base: std::time::Duration,
    /// Longest wait between notice attempts (`LETHE_NOTICE_RETRY_MAX_SECS`, default 21600).
    pub notice_retry_max: std::time::Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field(
                "store_url",
                &crate::source::url::redact_password(&self.store_url),
            )
            .field("policy_dir", &self.policy_dir)
            .field("listen", &self.listen)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("master_key_file", &self.master_key_file)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

/// The optional configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    store_url: Option<String>,
    policy_dir: Option<PathBuf>,
    listen: Option<String>,
    master_key_file: Option<PathBuf>,
    log_format: Option<String>,
    log: Option<String>,
    max_body_bytes: Option<usize>,
    source_pool_size: Option<u32>,
    session_ttl_minutes: Option<i64>,
    cookie_secure: Option<String>,
    #[serde(default)]
    sources: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads the file named by `file` (or `LETHE_CONFIG`), then the environment.
    pub fn load(file: Option<&Path>, env: BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let path = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("LETHE_CONFIG").map(PathBuf::from));
        let fc: ConfigFile = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
                toml::from_str(&text).map_err(|e| {
                    let line =
                        crate::policy::diagnostic::line_of(&text, e.span().map_or(0, |s| s.start));
                    ConfigError(format!("{}:{line}: {}", p.display(), e.message()))
                })?
            }
            None => ConfigFile::default(),
        };
        let var = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();

        let data_dir = var("LETHE_DATA_DIR")
            .map(PathBuf::from)
            .or(fc.data_dir)
            .unwrap_or_else(|| PathBuf::from("lethe-data"));
        let store_url = var("LETHE_STORE_URL")
            .or(fc.store_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("lethe.sqlite3").display()));
        let parsed = crate::source::DbUrl::parse(&store_url)
            .map_err(|e| ConfigError(format!("LETHE_STORE_URL: {e}")))?;
        if crate::store::Store::check_backend(&parsed).is_err() {
            return Err(ConfigError(
                "LETHE_STORE_URL: the engine store runs on SQLite or PostgreSQL; MySQL/MariaDB is supported for CRM sources only".into(),
            ));
        }
        let policy_dir = var("LETHE_POLICY_DIR")
            .map(PathBuf::from)
            .or(fc.policy_dir)
            .unwrap_or_else(|| PathBuf::from("policies"));
        let listen_text = var("LETHE_LISTEN")
            .or(fc.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "LETHE_LISTEN: \"{listen_text}\" is not a socket address like 127.0.0.1:8080"
            ))
        })?;
        let master_key_file = var("LETHE_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .or(fc.master_key_file)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let log_format = match var("LETHE_LOG_FORMAT").or(fc.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError(format!(
                    "LETHE_LOG_FORMAT: \"{other}\" is not text or json"
                )));
            }
        };
        let log_filter = var("LETHE_LOG").or(fc.log).unwrap_or_else(|| "info".into());
        let max_body_bytes = match var("LETHE_MAX_BODY_BYTES") {
            Some(v) => v.parse().map_err(|_| {
                ConfigError(format!("LETHE_MAX_BODY_BYTES: \"{v}\" is not a number"))
            })?,
            None => fc.max_body_bytes.unwrap_or(64 * 1024),
        };
        let source_pool_size = match var("LETHE_SOURCE_POOL_SIZE") {
            Some(v) => v.parse().map_err(|_| {
                ConfigError(format!("LETHE_SOURCE_POOL_SIZE: \"{v}\" is not a number"))
            })?,
            None => fc.source_pool_size.unwrap_or(8),
        };
        let session_ttl_minutes = match var("LETHE_SESSION_TTL_MINUTES") {
            Some(v) => v.parse().map_err(|_| {
                ConfigError(format!(
                    "LETHE_SESSION_TTL_MINUTES: \"{v}\" is not a number of minutes"
                ))
            })?,
            None => fc.session_ttl_minutes.unwrap_or(480),
        };
        if !(5..=7 * 24 * 60).contains(&session_ttl_minutes) {
            return Err(ConfigError(format!(
                "LETHE_SESSION_TTL_MINUTES: {session_ttl_minutes} is outside 5..=10080 (one week)"
            )));
        }
        let cookie_secure = match var("LETHE_COOKIE_SECURE").or(fc.cookie_secure).as_deref() {
            None | Some("auto") => !listen.ip().is_loopback(),
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(ConfigError(format!(
                    "LETHE_COOKIE_SECURE: \"{other}\" is not true, false or auto"
                )));
            }
        };
        let mut source_urls = fc.sources;
        for (k, v) in &env {
            if let Some(name) = k
                .strip_prefix("LETHE_SOURCE_")
                .and_then(|r| r.strip_suffix("_URL"))
                && !v.is_empty()
            {
                source_urls.insert(name.to_ascii_lowercase(), v.clone());
            }
        }
        let mut faults = BTreeMap::new();
        if let Some(spec) = var("LETHE_FAULTS") {
            for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let parsed = part.split_once("=sleep:").and_then(|(point, ms)| {
                    ms.parse::<u64>().ok().map(|ms| (point.to_string(), ms))
                });
                match parsed {
                    Some((point, ms)) => {
                        faults.insert(point, ms);
                    }
                    None => {
                        return Err(ConfigError(format!(
                            "LETHE_FAULTS: \"{part}\" is not point=sleep:MILLISECONDS"
                        )));
                    }
                }
            }
        }
        let num = |name: &str,
                   default: u64,
                   range: std::ops::RangeInclusive<u64>|
         -> Result<u64, ConfigError> {
            let v = match var(name) {
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| ConfigError(format!("{name}: \"{v}\" is not a whole number")))?,
                None => default,
            };
            if !range.contains(&v) {
                return Err(ConfigError(format!(
                    "{name}: {v} is outside {}..={}",
                    range.start(),
                    range.end()
                )));
            }
            Ok(v)
        };
        let jobs = JobSettings {
            workers: usize::try_from(num("LETHE_WORKERS", 2, 0..=64)?).unwrap_or(2),
            lease: chrono::Duration::seconds(
                i64::try_from(num("LETHE_JOB_LEASE_SECS", 60, 1..=3600)?).unwrap_or(60),
            ),
            poll: std::time::Duration::from_millis(num("LETHE_JOB_POLL_MS", 1000, 10..=60_000)?),
            retry_base: std::time::Duration::from_millis(num(
                "LETHE_RETRY_BASE_MS",
                5000,
                10..=3_600_000,
            )?),
            retry_max: std::time::Duration::from_secs(num(
                "LETHE_RETRY_MAX_SECS",
                900,
                1..=86_400,
            )?),
            notice_retry_base: std::time::Duration::from_millis(num(
                "LETHE_NOTICE_RETRY_BASE_MS",
                120_000,
                10..=86_400_000,
            )?),
            notice_retry_max: std::time::Duration::from_secs(num(
                "LETHE_NOTICE_RETRY_MAX_SECS",
                21_600,
                1..=7 * 86_400,
            )?),
        };
        let node_name = var("LETHE_NODE_NAME")
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
            })
            .unwrap_or_else(|| "localhost".into());
        if node_name.contains(':') {
            return Err(ConfigError(format!(
                "LETHE_NODE_NAME: \"{node_name}\" must not contain ':'"
            )));
        }
        Ok(Config {
            node_name,
            data_dir,
            store_url,
            policy_dir,
            listen,
            master_key: var("LETHE_MASTER_KEY"),
            master_key_file,
            log_format,
            log_filter,
            max_body_bytes,
            source_pool_size,
            source_urls,
            env,
            faults,
            session_ttl: chrono::Duration::minutes(session_ttl_minutes),
            cookie_secure,
            jobs,
        })
    }

    /// The process environment as a map (read once, at start-up).
    pub fn process_env() -> BTreeMap<String, String> {
        std::env::vars().collect()
    }

    /// Defaults rooted at `data_dir` (tests and the demo).
    pub fn for_data_dir(data_dir: &Path, policy_dir: &Path) -> Config {
        let env = BTreeMap::from([
            ("LETHE_DATA_DIR".to_string(), data_dir.display().to_string()),
            (
                "LETHE_POLICY_DIR".to_string(),
                policy_dir.display().to_string(),
            ),
        ]);
        match Config::load(None, env) {
            Ok(c) => c,
            Err(e) => unreachable!("defaults are valid: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, BTreeMap::new()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store_url, "sqlite://lethe-data/lethe.sqlite3");
        assert_eq!(c.master_key_file, PathBuf::from("lethe-data/master.key"));
    }

    #[test]
    fn environment_is_typed_and_checked() {
        let c = Config::load(
            None,
            env(&[
                ("LETHE_LISTEN", "0.0.0.0:9000"),
                ("LETHE_SOURCE_CRM_URL", "sqlite://x.db"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(
            c.source_urls.get("crm").map(String::as_str),
            Some("sqlite://x.db")
        );
        let e = Config::load(None, env(&[("LETHE_LISTEN", "nonsense")])).unwrap_err();
        assert!(e.to_string().contains("LETHE_LISTEN"));
        let e = Config::load(None, env(&[("LETHE_STORE_URL", "mongodb://x")])).unwrap_err();
        assert!(e.to_string().contains("unknown URL scheme"));
    }

    #[test]
    fn the_engine_store_is_never_mysql() {
        let e = Config::load(
            None,
            env(&[("LETHE_STORE_URL", "mysql://root@127.0.0.1:3306/lethe")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("LETHE_STORE_URL") && e.contains("MySQL/MariaDB"),
            "{e}"
        );
    }

    #[test]
    fn job_settings_are_checked() {
        let c = Config::load(None, BTreeMap::new()).unwrap();
        assert_eq!(c.jobs.workers, 2);
        assert_eq!(c.jobs.lease, chrono::Duration::seconds(60));
        let e = Config::load(None, env(&[("LETHE_JOB_LEASE_SECS", "0")])).unwrap_err();
        assert!(e.to_string().contains("LETHE_JOB_LEASE_SECS"), "{e}");
        let e = Config::load(None, env(&[("LETHE_WORKERS", "many")])).unwrap_err();
        assert!(e.to_string().contains("LETHE_WORKERS"), "{e}");
        let e = Config::load(None, env(&[("LETHE_NODE_NAME", "a:b")])).unwrap_err();
        assert!(e.to_string().contains("LETHE_NODE_NAME"), "{e}");
    }

    #[test]
    fn web_session_settings() {
        let c = Config::load(None, BTreeMap::new()).unwrap();
        assert!(!c.cookie_secure, "loopback: auto means not Secure");
        assert_eq!(c.session_ttl, chrono::Duration::minutes(480));
        let c = Config::load(None, env(&[("LETHE_LISTEN", "0.0.0.0:8080")])).unwrap();
        assert!(c.cookie_secure, "other addresses: auto means Secure");
        let c = Config::load(
            None,
            env(&[
                ("LETHE_COOKIE_SECURE", "true"),
                ("LETHE_SESSION_TTL_MINUTES", "30"),
            ]),
        )
        .unwrap();
        assert!(c.cookie_secure);
        assert_eq!(c.session_ttl, chrono::Duration::minutes(30));
        let e = Config::load(None, env(&[("LETHE_COOKIE_SECURE", "yes")])).unwrap_err();
        assert!(e.to_string().contains("LETHE_COOKIE_SECURE"));
        let e = Config::load(None, env(&[("LETHE_SESSION_TTL_MINUTES", "1")])).unwrap_err();
        assert!(e.to_string().contains("LETHE_SESSION_TTL_MINUTES"));
    }

    #[test]
    fn file_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lethe.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:1\"\nlistn = 3\n").unwrap();
        let e = Config::load(Some(&p), BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("lethe.toml:2"), "{e}");
    }
}
