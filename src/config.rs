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
    /// Access exports at rest: where they are kept and for how long.
    pub exports: ExportSettings,
    /// A bearer token that may read `/metrics` only (`LETHE_METRICS_TOKEN`, at least 16
    /// characters); API tokens of any role may read it too. Never printed.
    pub metrics_token: Option<String>,
    /// What one client may send and how often (request head size, URL length, rate limits).
    pub http: HttpLimits,
}

/// Exports at rest (`src/export`).
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Directory of the encrypted export files (`LETHE_EXPORT_DIR`, default `exports` in the
    /// data directory). Replicas sharing a PostgreSQL store must share this directory.
    pub dir: PathBuf,
    /// How long an export is kept before its file is deleted (`LETHE_EXPORT_TTL_DAYS`,
    /// default 30).
    pub ttl: chrono::Duration,
    /// How long a download link works (`LETHE_EXPORT_LINK_TTL_HOURS`, default 24; never
    /// longer than the export is kept).
    pub link_ttl: chrono::Duration,
}

/// Limits against hostile or runaway clients of `lethe serve`.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Largest request head (request line and headers) in bytes (`LETHE_MAX_HEADER_BYTES`,
    /// default 32768, at least 8192); a larger head is answered 431 and the connection closed.
    pub max_header_bytes: usize,
    /// Longest request target, path and query (`LETHE_MAX_URI_BYTES`, default 8192); a
    /// longer one is answered 414.
    pub max_uri_bytes: usize,
    /// How long a client may take to send its request head (`LETHE_HEADER_TIMEOUT_SECS`,
    /// default 30): slow-header connections are closed.
    pub header_timeout: std::time::Duration,
    /// API requests per bearer token (`LETHE_RATE_LIMIT_API_PER_MIN`, default 600, and
    /// `LETHE_RATE_LIMIT_API_BURST`, default a sixth of the rate).
    pub api_per_token: RateSetting,
    /// API requests per client address (`LETHE_RATE_LIMIT_API_IP_PER_MIN`, default 1200,
    /// and `LETHE_RATE_LIMIT_API_IP_BURST`, default a sixth of the rate).
    pub api_per_ip: RateSetting,
    /// Failed sign-ins per client address (`LETHE_RATE_LIMIT_SIGNIN_PER_MIN`, default 10, and
    /// `LETHE_RATE_LIMIT_SIGNIN_BURST`, default half the rate).
    pub sign_in_per_ip: RateSetting,
    /// Clients each limiter remembers at most (`LETHE_RATE_LIMIT_MAX_KEYS`, default 50000).
    pub rate_limit_max_keys: usize,
    /// Proxies whose `X-Forwarded-For` is believed (`LETHE_TRUSTED_PROXIES`: addresses or
    /// CIDR blocks, comma-separated; default none, so the socket's peer is the client).
    pub trusted_proxies: Vec<crate::http::ratelimit::IpNet>,
}

/// A rate limit: `per_minute` sustained (0 turns the limit off), up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSetting {
    pub per_minute: u32,
    pub burst: u32,
}

impl RateSetting {
    pub const OFF: RateSetting = RateSetting {
        per_minute: 0,
        burst: 0,
    };
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
        let exports = ExportSettings {
            dir: var("LETHE_EXPORT_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("exports")),
            ttl: chrono::Duration::days(
                i64::try_from(num("LETHE_EXPORT_TTL_DAYS", 30, 1..=3650)?).unwrap_or(30),
            ),
            link_ttl: chrono::Duration::hours(
                i64::try_from(num("LETHE_EXPORT_LINK_TTL_HOURS", 24, 1..=8760)?).unwrap_or(24),
            ),
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
        let rate =
            |name: &str, default: u64, burst_divisor: u64| -> Result<RateSetting, ConfigError> {
                let per_minute = num(&format!("{name}_PER_MIN"), default, 0..=1_000_000)?;
                let burst_name = format!("{name}_BURST");
                let burst = num(
                    &burst_name,
                    (per_minute / burst_divisor).max(1),
                    1..=1_000_000,
                )?;
                Ok(RateSetting {
                    per_minute: u32::try_from(per_minute).unwrap_or(u32::MAX),
                    burst: u32::try_from(burst).unwrap_or(u32::MAX),
                })
            };
        let trusted_proxies = match var("LETHE_TRUSTED_PROXIES") {
            Some(v) => crate::http::ratelimit::IpNet::parse_list(&v)
                .map_err(|e| ConfigError(format!("LETHE_TRUSTED_PROXIES: {e}")))?,
            None => Vec::new(),
        };
        let http = HttpLimits {
            max_header_bytes: usize::try_from(num(
                "LETHE_MAX_HEADER_BYTES",
                32_768,
                8192..=1_048_576,
            )?)
            .unwrap_or(32_768),
            max_uri_bytes: usize::try_from(num("LETHE_MAX_URI_BYTES", 8192, 256..=65_534)?)
                .unwrap_or(8192),
            header_timeout: std::time::Duration::from_secs(num(
                "LETHE_HEADER_TIMEOUT_SECS",
                30,
                1..=3600,
            )?),
            api_per_token: rate("LETHE_RATE_LIMIT_API", 600, 6)?,
            api_per_ip: rate("LETHE_RATE_LIMIT_API_IP", 1200, 6)?,
            sign_in_per_ip: rate("LETHE_RATE_LIMIT_SIGNIN", 10, 2)?,
            rate_limit_max_keys: usize::try_from(num(
                "LETHE_RATE_LIMIT_MAX_KEYS",
                50_000,
                100..=10_000_000,
            )?)
            .unwrap_or(50_000),
            trusted_proxies,
        };
        let metrics_token = var("LETHE_METRICS_TOKEN");
        if let Some(t) = &metrics_token
            && (t.trim().len() < 16 || t.len() > 256 || t.chars().any(char::is_whitespace))
        {
            return Err(ConfigError(
                "LETHE_METRICS_TOKEN: must be 16 to 256 characters without spaces".into(),
            ));
        }
        Ok(Config {
            exports,
            metrics_token,
            http,
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
    fn http_limits_are_read_and_checked() {
        let c = Config::load(None, BTreeMap::new()).unwrap();
        assert_eq!(c.http.max_header_bytes, 32_768);
        assert_eq!(
            c.http.api_per_token,
            RateSetting {
                per_minute: 600,
                burst: 100
            }
        );
        assert_eq!(c.http.api_per_ip.per_minute, 1200);
        assert_eq!(
            c.http.sign_in_per_ip,
            RateSetting {
                per_minute: 10,
                burst: 5
            }
        );
        assert!(c.http.trusted_proxies.is_empty());
        let c = Config::load(
            None,
            env(&[
                ("LETHE_RATE_LIMIT_API_PER_MIN", "0"),
                ("LETHE_RATE_LIMIT_SIGNIN_PER_MIN", "30"),
                ("LETHE_RATE_LIMIT_SIGNIN_BURST", "3"),
                ("LETHE_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.api_per_token.per_minute, 0, "0 turns it off");
        assert_eq!(
            c.http.sign_in_per_ip,
            RateSetting {
                per_minute: 30,
                burst: 3
            }
        );
        assert_eq!(c.http.trusted_proxies.len(), 2);
        for (k, v) in [
            ("LETHE_MAX_HEADER_BYTES", "100"),
            ("LETHE_RATE_LIMIT_API_BURST", "0"),
            ("LETHE_RATE_LIMIT_SIGNIN_PER_MIN", "many"),
            ("LETHE_TRUSTED_PROXIES", "10.0.0.0/33"),
        ] {
            let e = Config::load(None, env(&[(k, v)])).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
    }

    #[test]
    fn metrics_token_is_checked() {
        let c = Config::load(None, BTreeMap::new()).unwrap();
        assert!(c.metrics_token.is_none());
        let c = Config::load(
            None,
            env(&[("LETHE_METRICS_TOKEN", "a-long-enough-scrape-token")]),
        )
        .unwrap();
        assert_eq!(
            c.metrics_token.as_deref(),
            Some("a-long-enough-scrape-token")
        );
        assert!(!format!("{c:?}").contains("scrape-token"), "never printed");
        for bad in ["short", "sixteen chars ok?"] {
            let e = Config::load(None, env(&[("LETHE_METRICS_TOKEN", bad)])).unwrap_err();
            assert!(e.to_string().contains("LETHE_METRICS_TOKEN"), "{e}");
        }
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
