//! The command line: clap definitions and dispatch. Each command prints for people by
//! default and JSON with `--json` where a script may read it.

pub mod cert;
pub mod datamap;
pub mod demo;
pub mod exports;
pub mod hold;
pub mod jobs;
pub mod request;
pub mod retention;

use crate::app::{App, AppState, StartError};
use crate::config::{Config, LogFormat};
use crate::request::Role;
use crate::source::DbUrl;
use crate::store::{Store, tokens};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "lethe",
    version,
    about = "GDPR/CCPA retention and data-subject-request engine for CRM databases"
)]
pub struct Cli {
    /// Configuration file (TOML); the environment (LETHE_*) overrides it.
    #[arg(long, global = true, env = "LETHE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log lines on stderr as text or JSON (one object per line); overrides LETHE_LOG_FORMAT.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a seeded demo CRM, engine store, master key and officer token under
    /// ./lethe-data, then serve the API on 127.0.0.1:8080.
    Demo(demo::DemoArgs),
    /// Serve the API.
    Serve,
    /// Apply pending engine-store migrations.
    Migrate,
    /// Validate and lint the data map.
    Datamap {
        #[command(subcommand)]
        command: datamap::DatamapCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage the master key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Create, inspect and run data-subject requests from the command line.
    Request {
        #[command(subcommand)]
        command: request::RequestCommand,
    },
    /// Retention: the dry-run plan with forecast, and runs.
    Retention {
        #[command(subcommand)]
        command: retention::RetentionCommand,
    },
    /// Legal holds.
    Hold {
        #[command(subcommand)]
        command: hold::HoldCommand,
    },
    /// Verify certificates offline.
    Cert {
        #[command(subcommand)]
        command: cert::CertCommand,
    },
    /// Verify the audit log.
    Audit {
        #[command(subcommand)]
        command: cert::AuditCommand,
    },
    /// The background job queue (request execution, retention runs, notices).
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Exports at rest: delete expired ones.
    Exports {
        #[command(subcommand)]
        command: exports::ExportsCommand,
    },
    /// Benchmarks against a demo CRM (figures with their same-run baselines).
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it once (only its SHA-256 is stored).
    Create {
        /// officer | auditor | admin
        #[arg(long)]
        role: String,
        /// A name to recognize the token by.
        #[arg(long, default_value = "api token")]
        label: String,
        /// Days until the token expires (default: never).
        #[arg(long)]
        expires_in_days: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create the master key file (LETHE_MASTER_KEY_FILE, default lethe-data/master.key).
    Init,
    /// Add a new signing key; it signs from now on, old keys stay in the JWKS.
    Rotate,
    /// Print the public keys (JWKS) for auditors.
    Jwks,
}

/// An error for the CLI: a message and an exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError {
            message: e.to_string(),
            code: 1,
        }
    }
}

pub type CliResult = Result<ExitCode, CliError>;

/// Sets up logging to stderr (text or JSON).
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn run(cli: Cli) -> ExitCode {
    let mut config = match Config::load(cli.config.as_deref(), Config::process_env()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(f) = cli.log_format {
        config.log_format = f.into();
    }
    init_logging(&config);
    let result = match cli.command {
        Command::Demo(args) => demo::run(config, args),
        Command::Serve => serve(config),
        Command::Migrate => migrate(&config),
        Command::Datamap { command } => datamap::run(&config, command),
        Command::Token { command } => token(&config, command),
        Command::Keys { command } => keys(&config, command),
        Command::Request { command } => request::run(config, command),
        Command::Hold { command } => hold::run(config, command),
        Command::Retention { command } => retention::run_cmd(config, command),
        Command::Cert { command } => cert::cert(&config, command),
        Command::Audit { command } => cert::audit(&config, command),
        Command::Jobs { command } => jobs::run(config, command),
        Command::Exports { command } => exports::run(config, command),
        Command::Bench { command } => crate::bench::run(config, command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

pub(crate) fn open_store(config: &Config) -> Result<Store, CliError> {
    let url = DbUrl::parse(&config.store_url).map_err(|e| format!("LETHE_STORE_URL: {e}"))?;
    Ok(Store::open(&url)?)
}

fn migrate(config: &Config) -> CliResult {
    let store = open_store(config)?;
    let applied = store.migrate()?;
    if applied.is_empty() {
        println!("engine store {} is up to date", store.url());
    } else {
        for m in &applied {
            println!("applied {m}");
        }
        println!(
            "engine store {} migrated ({} migration(s))",
            store.url(),
            applied.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn token(config: &Config, command: TokenCommand) -> CliResult {
    let store = open_store(config)?;
    match command {
        TokenCommand::Create {
            role,
            label,
            expires_in_days,
            json,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                format!("--role: unknown role \"{role}\"; expected officer, auditor or admin")
            })?;
            if let Some(d) = expires_in_days
                && d <= 0
            {
                return Err("--expires-in-days must be positive".into());
            }
            let expires = expires_in_days.map(|d| crate::store::now() + chrono::Duration::days(d));
            let (row, token) = store.write(|c| tokens::create(c, role, &label, expires))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": row.id, "role": row.role, "label": row.label, "token": token})
                );
            } else {
                println!("{token}");
                eprintln!(
                    "created {} token {} ({}); it is shown only this once",
                    row.role, row.id, row.label
                );
            }
        }
        TokenCommand::List { json } => {
            let rows = store.read(tokens::list)?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|r| serde_json::json!({"id": r.id, "role": r.role, "label": r.label, "created_at": r.created_at.to_string(), "expires_at": r.expires_at.map(|t| t.to_string()), "revoked": r.revoked_at.is_some()}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                for r in rows {
                    let status = if r.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!("{}  {:8} {:8} {}", r.id, r.role, status, r.label);
                }
            }
        }
        TokenCommand::Revoke { id } => {
            store
                .write(|c| tokens::revoke(c, &id))
                .map_err(|e| match e {
                    crate::store::StoreError::NotFound => format!("no active token {id}"),
                    other => other.to_string(),
                })?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn keys(config: &Config, command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::Init => {
            if config.master_key.is_some() {
                return Err("LETHE_MASTER_KEY is set; the key file is not used".into());
            }
            let path = &config.master_key_file;
            if path.exists() {
                return Err(format!(
                    "{} already exists; refusing to overwrite a master key",
                    path.display()
                )
                .into());
            }
            crate::crypto::MasterKey::generate().write_new_file(path)?;
            println!(
                "created master key {} (mode 600); back it up: without it sealed data and signing keys cannot be read",
                path.display()
            );
        }
        KeysCommand::Rotate => return cert::rotate(config),
        KeysCommand::Jwks => return cert::export_jwks(config),
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the app for commands that need it.
pub fn open_app(config: Config) -> Result<AppState, CliError> {
    App::open(config).map(Arc::new).map_err(start_error)
}

pub fn start_error(e: StartError) -> CliError {
    CliError {
        message: e.to_string(),
        code: 1,
    }
}

fn serve(config: Config) -> CliResult {
    let app = open_app(config)?;
    serve_app(app)
}

/// Serves the router until SIGINT/SIGTERM, then drains in-flight requests.
pub fn serve_app(app: AppState) -> CliResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let addr = app.config.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, policy = %app.policy.digest, store = app.store.backend_name(), "lethe serving");
        // Background jobs (request execution, retention runs, notices), shared with every
        // other process on the same store; then the retention scheduler, which queues a job
        // per rule occurrence.
        let workers = crate::jobs::worker::spawn(app.clone());
        tokio::spawn(crate::retention::schedule::scheduler(app.clone(), workers.clone()));
        let drain_bound = app
            .config
            .jobs
            .lease
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(60));
        // On SIGTERM/SIGINT the listener closes at once (no new connections) and the
        // requests in flight are answered.
        crate::http::server::serve(listener, app, shutdown_signal()).await?;
        // Claim no new jobs, and let the jobs in progress end (their outcome recorded), for
        // at most one lease: a job still running then is resumed by another process once
        // its lease expires.
        workers.stop();
        let busy = workers.busy();
        if busy > 0 {
            tracing::info!(jobs = busy, bound_secs = drain_bound.as_secs(), "draining: waiting for the jobs in progress");
        }
        match workers.drain(drain_bound).await {
            0 => tracing::info!(jobs = busy, "drained: no request or job in progress; lethe stopped"),
            left => tracing::warn!(jobs = left, "drain bound reached: {left} job(s) still running are left to their leases; lethe stopped"),
        }
        Ok(ExitCode::SUCCESS)
    });
    // Do not wait for blocking work beyond the drain (a job left to its lease).
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
