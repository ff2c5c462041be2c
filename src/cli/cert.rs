//! `lethe cert verify`, `lethe audit verify` and `lethe keys rotate|jwks`: the auditor's
//! offline tools.

use super::{CliError, CliResult, open_store};
use crate::cert::jws::{self, Jwks};
use crate::cert::keys;
use crate::config::Config;
use clap::Subcommand;
use std::io::{Read, Write};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Verify a certificate (JWS JSON) offline. Exits 0 when valid, 1 when not.
    Verify {
        /// The certificate file (`-` for standard input).
        file: String,
        /// The JWKS to verify against: a file, or an http:// URL such as
        /// http://127.0.0.1:8080/.well-known/jwks.json. Default: this store's keys.
        #[arg(long)]
        jwks: Option<String>,
        /// Print the verified payload.
        #[arg(long)]
        show: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the hash chain and check the signed checkpoints; names the first bad entry.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

/// Fetches a plain-HTTP URL (the JWKS of a running lethe); https is left to curl.
fn fetch(url: &str) -> Result<String, CliError> {
    let rest = url.strip_prefix("http://").ok_or(
        "only http:// URLs are fetched here; download https URLs with curl and pass the file",
    )?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s =
        std::net::TcpStream::connect(host).map_err(|e| format!("cannot connect to {host}: {e}"))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{url}: {}", head.lines().next().unwrap_or("")).into());
    }
    Ok(body.to_string())
}

fn read_input(file: &str) -> Result<String, CliError> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        Ok(std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?)
    }
}

pub fn cert(config: &Config, command: CertCommand) -> CliResult {
    let CertCommand::Verify {
        file,
        jwks: source,
        show,
    } = command;
    let text = read_input(&file)?;
    let set: Jwks = match &source {
        Some(s) if s.starts_with("http://") || s.starts_with("https://") => {
            serde_json::from_str(&fetch(s)?).map_err(|e| format!("{s}: not a JWKS: {e}"))?
        }
        Some(path) => serde_json::from_str(
            &std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?,
        )
        .map_err(|e| format!("{path}: not a JWKS: {e}"))?,
        None => open_store(config)?.read(keys::jwks)?,
    };
    match jws::verify(&text, &set) {
        Ok(v) => {
            println!(
                "valid: {} certificate {} issued {} by key {}",
                v.payload["kind"].as_str().unwrap_or("?"),
                v.payload["certificate_id"].as_str().unwrap_or("?"),
                v.payload["issued_at"].as_str().unwrap_or("?"),
                v.kid
            );
            if show {
                println!("{}", serde_json::to_string_pretty(&v.payload)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("INVALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

pub fn audit(config: &Config, command: AuditCommand) -> CliResult {
    let AuditCommand::Verify { json } = command;
    let store = open_store(config)?;
    let r = store.read(|c| {
        let set = keys::jwks(c)?;
        crate::audit::verify_full(c, &set)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if r.is_valid() {
        println!(
            "audit log valid: {} entries, head {} {}; {} signed checkpoint(s), last at {}",
            r.chain.entries,
            r.chain.head_seq,
            r.chain.head_hash,
            r.checkpoints,
            r.last_checkpoint_seq
                .map_or("-".to_string(), |s| s.to_string())
        );
    } else {
        if let Some((seq, why)) = &r.chain.first_bad {
            println!("audit log INVALID at entry {seq}: {why}");
        }
        if let Some((seq, why)) = &r.bad_checkpoint {
            println!("checkpoint at entry {seq} INVALID: {why}");
        }
    }
    Ok(if r.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn rotate(config: &Config) -> CliResult {
    let store = open_store(config)?;
    let key = crate::app::load_master_key(config).map_err(super::start_error)?;
    let kid = store.write(|c| keys::add(c, &key, "cli", "rotation"))?;
    println!("added signing key {kid}; it signs from now on, and older keys stay in the JWKS");
    Ok(ExitCode::SUCCESS)
}

pub fn export_jwks(config: &Config) -> CliResult {
    let store = open_store(config)?;
    let set = store.read(keys::jwks)?;
    println!("{}", serde_json::to_string_pretty(&set)?);
    Ok(ExitCode::SUCCESS)
}
