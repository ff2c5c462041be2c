//! A minimal blocking HTTP/1.1 client for the access benchmark (127.0.0.1 only), so the
//! benchmark needs no client library.

use crate::cli::CliError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

pub struct Client {
    addr: SocketAddr,
    /// `Authorization: Bearer ...` or `Cookie: ...`.
    credentials: String,
}

impl Client {
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Client {
            addr,
            credentials: format!("Authorization: Bearer {token}"),
        }
    }

    /// A client that sends a web session cookie instead of a bearer token.
    pub fn with_cookie(addr: SocketAddr, cookie: &str) -> Self {
        Client {
            addr,
            credentials: format!("Cookie: {cookie}"),
        }
    }

    /// Sends one request on a fresh connection; returns the body or an error naming the
    /// unexpected status.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        expect: u16,
    ) -> Result<Vec<u8>, CliError> {
        let mut s = TcpStream::connect(self.addr)?;
        s.set_nodelay(true)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{}\r\nConnection: close\r\n",
            self.addr, self.credentials
        );
        match body {
            Some(b) => head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => head.push_str("Content-Length: 0\r\n\r\n"),
        }
        s.write_all(head.as_bytes())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("malformed HTTP response")?;
        let headers = String::from_utf8_lossy(&buf[..split]).to_string();
        let status: u16 = headers
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("malformed status line")?;
        let mut body = buf[split + 4..].to_vec();
        if headers
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        if status != expect {
            return Err(format!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok(body)
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = &b[(end + 2).min(b.len())..];
    }
    out
}
