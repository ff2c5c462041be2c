//! One delivery attempt: a blocking HTTPS POST of a signed notice.
//!
//! The client is `ureq` 3 (blocking, small, no async runtime: delivery runs on a job
//! worker's thread, like the other blocking work) with rustls on the `ring` crypto provider,
//! so no system TLS library is linked (`cargo tree -i openssl-sys` finds nothing in the
//! default build). Server certificates are validated against the Mozilla root store
//! compiled in by `webpki-roots`, not the platform's store: the same answer on every
//! machine, and no dependence on the container's CA bundle. Each attempt builds its own
//! agent and closes its connection: attempts are minutes apart, so pooling buys nothing.
//!
//! What the client does not do, on purpose:
//! - follow redirects: a `3xx` is a permanent failure naming the `Location`, because the
//!   notice would otherwise go to an address the data map does not name (update the URL in
//!   the map instead);
//! - use a proxy from `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`: notices go straight to the
//!   address in the data map;
//! - put the request body (a notice about a person) into any error: errors carry the
//!   status and at most [`EXCERPT_CHARS`] characters of the *response* body;
//! - send to anything but `https://`, or `http://` to a loopback host (checked again here,
//!   whatever the caller validated).

use super::signature;
use crate::policy::validate::check_webhook_url;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::Duration;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

/// The idempotency key header: the notice id, the same on every attempt.
pub const NOTICE_ID_HEADER: &str = "Lethe-Notice-Id";

/// The header a receiver may answer with to acknowledge a notice (instead of a JSON body
/// with `ack_id`).
pub const ACK_HEADER: &str = "Lethe-Ack";

/// The most characters kept of an acknowledgement id or a response-body excerpt.
pub const EXCERPT_CHARS: usize = 200;

/// The most bytes of a response body that are read (and hashed): acknowledgements are
/// small, and a receiver cannot make lethe read without end.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("lethe/", env!("CARGO_PKG_VERSION"));

/// An acknowledged delivery: the receiver answered 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The 2xx status.
    pub status: u16,
    /// When the response was read.
    pub received_at: DateTime<Utc>,
    /// The receiver's acknowledgement id: the JSON body's string (or number) field `ack_id`,
    /// else the `Lethe-Ack` header; control characters removed, at most [`EXCERPT_CHARS`]
    /// characters; `None` when the receiver sent neither.
    pub ack: Option<String>,
    /// Lowercase hex SHA-256 of the response body (of its first [`MAX_RESPONSE_BYTES`]
    /// bytes), evidence of what the receiver answered.
    pub body_sha256: String,
}

/// Why a delivery attempt did not end in an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// 408, 429 or 5xx: the receiver is there but cannot take the notice now.
    #[error(
        "the receiver answered HTTP {status} (retryable){}",
        excerpt_suffix(body_excerpt)
    )]
    RetryableStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the response body (at most [`EXCERPT_CHARS`] characters).
        body_excerpt: String,
        /// The receiver's `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx status (4xx, and 3xx since redirects are not followed): sending
    /// the same notice again will not help.
    #[error(
        "the receiver answered HTTP {status} (permanent){}{}",
        location_suffix(location),
        excerpt_suffix(body_excerpt)
    )]
    PermanentStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the response body (at most [`EXCERPT_CHARS`] characters).
        body_excerpt: String,
        /// A redirect's `Location` (at most [`EXCERPT_CHARS`] characters).
        location: Option<String>,
    },
    /// No complete answer within the attempt's timeout (retryable).
    #[error("no complete answer within {} ms (retryable)", timeout.as_millis())]
    Timeout {
        /// The attempt's time limit.
        timeout: Duration,
    },
    /// No answer: DNS, connection refused or reset, TLS handshake or certificate failure
    /// (retryable: such trouble is often fixed on the receiver's side).
    #[error("cannot reach the receiver (retryable): {0}")]
    Transport(String),
    /// The URL is not one lethe sends notices to (permanent; fix the data map).
    #[error("invalid webhook URL: {0}")]
    InvalidUrl(String),
    /// The request could not be formed, e.g. a header value with invalid characters
    /// (permanent).
    #[error("the request cannot be sent: {0}")]
    InvalidRequest(String),
}

fn excerpt_suffix(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

fn location_suffix(location: &Option<String>) -> String {
    match location {
        Some(l) => format!(" redirecting to {l} (redirects are not followed)"),
        None => String::new(),
    }
}

impl DeliveryError {
    /// Whether a later attempt of the same notice may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DeliveryError::RetryableStatus { .. }
                | DeliveryError::Timeout { .. }
                | DeliveryError::Transport(_)
        )
    }

    /// The HTTP status the receiver answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::RetryableStatus { status, .. }
            | DeliveryError::PermanentStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The receiver's `Retry-After` (seconds form) on a retryable status.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::RetryableStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Whether a status asks for a retry: 408 Request Timeout, 429 Too Many Requests, 5xx.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// POSTs `body` to `url` with the signature header (from [`signature::sign`]) and the
/// notice id, within `timeout` from connecting to the end of the response body. 2xx is
/// an acknowledgement; see [`DeliveryError`] for the rest.
pub fn deliver(
    url: &str,
    body: &[u8],
    signature_header: &str,
    notice_id: &str,
    timeout: Duration,
) -> Result<Delivery, DeliveryError> {
    check_webhook_url(url).map_err(DeliveryError::InvalidUrl)?;
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::WebPki)
        .build();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_global(Some(timeout))
            .max_idle_connections(0)
            .build(),
    );
    let sent = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header(signature::HEADER, signature_header)
        .header(NOTICE_ID_HEADER, notice_id)
        .send(body);
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return Err(transport_error(e, timeout)),
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let ack_header = header(ACK_HEADER);
    let location = header("Location");
    let retry_after = header("Retry-After");

    let mut received = Vec::new();
    let read = response
        .body_mut()
        .as_reader()
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut received);

    if (200..=299).contains(&status) {
        // The ack id may be in the body: a 2xx whose body cannot be read is tried again
        // (the receiver de-duplicates on the notice id).
        if let Err(e) = read {
            return Err(io_error(e, timeout));
        }
        let ack = ack_from_body(&received)
            .or(ack_header)
            .map(|a| excerpt(&a))
            .filter(|a| !a.is_empty());
        return Ok(Delivery {
            status,
            received_at: Utc::now(),
            ack,
            body_sha256: hex::encode(Sha256::digest(&received)),
        });
    }
    // For a refusal the body is only an explanation: whatever was read is enough.
    let body_excerpt = excerpt(&String::from_utf8_lossy(&received));
    if is_retryable_status(status) {
        Err(DeliveryError::RetryableStatus {
            status,
            body_excerpt,
            retry_after: retry_after
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        })
    } else {
        Err(DeliveryError::PermanentStatus {
            status,
            body_excerpt,
            location: location
                .filter(|_| (300..=399).contains(&status))
                .map(|l| excerpt(&l)),
        })
    }
}

/// `ack_id` of a JSON object body: a string, or a number written as text.
fn ack_from_body(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get("ack_id")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// At most [`EXCERPT_CHARS`] characters, control characters (line breaks included) as
/// spaces, trimmed.
fn excerpt(s: &str) -> String {
    s.chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Classifies a ureq error. The message never repeats the URL (it may carry a token).
fn transport_error(e: ureq::Error, timeout: Duration) -> DeliveryError {
    match e {
        ureq::Error::Timeout(_) => DeliveryError::Timeout { timeout },
        ureq::Error::Io(io) => io_error(io, timeout),
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
            DeliveryError::InvalidUrl("the URL cannot be parsed".into())
        }
        ureq::Error::Http(h) => DeliveryError::InvalidRequest(h.to_string()),
        ureq::Error::HostNotFound => DeliveryError::Transport("host not found".into()),
        ureq::Error::ConnectionFailed => DeliveryError::Transport("connection failed".into()),
        other => DeliveryError::Transport(other.to_string()),
    }
}

/// Classifies an I/O error (reading the body wraps ureq's own errors in `io::Error`).
fn io_error(e: std::io::Error, timeout: Duration) -> DeliveryError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return DeliveryError::Timeout { timeout };
    }
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
        if matches!(inner, ureq::Error::Timeout(_)) {
            return DeliveryError::Timeout { timeout };
        }
        return DeliveryError::Transport(inner.to_string());
    }
    DeliveryError::Transport(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::signature::{DEFAULT_TOLERANCE_SECS, verify};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::thread::JoinHandle;
    use std::time::Instant;

    const SECRET: &[u8] = b"whsec_receiver_test";
    const BODY: &[u8] =
        br#"{"type":"lethe.notice","version":1,"id":"ntc-test","marker":"REQUEST-BODY-MARKER"}"#;
    const WAIT: Duration = Duration::from_secs(10);

    /// What the test receiver got.
    #[derive(Debug)]
    struct Received {
        request_line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// The receiver's answer.
    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    }

    fn read_request(stream: &mut TcpStream) -> std::io::Result<Received> {
        stream.set_read_timeout(Some(WAIT))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(Received {
            request_line,
            headers,
            body,
        })
    }

    /// A one-request HTTP receiver on 127.0.0.1: answers with `answer(&request)` and hands
    /// the request back through the join handle.
    fn receiver(
        answer: impl FnOnce(&Received) -> Reply + Send + 'static,
    ) -> (String, JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/hooks/lethe",
            listener.local_addr().expect("address")
        );
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let received = read_request(&mut stream).expect("read the request");
            let reply = answer(&received);
            let mut out = format!(
                "HTTP/1.1 {} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
                reply.status,
                reply.body.len()
            );
            for (name, value) in &reply.headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&reply.body);
            stream.write_all(out.as_bytes()).expect("write the reply");
            received
        });
        (url, handle)
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn now_secs() -> i64 {
        Utc::now().timestamp()
    }

    fn send(url: &str) -> Result<Delivery, DeliveryError> {
        let header = signature::sign(SECRET, now_secs(), BODY);
        deliver(url, BODY, &header, "ntc-test", WAIT)
    }

    #[test]
    fn acknowledged_by_a_receiver_that_verifies_the_signature() {
        let ack_body = r#"{"ack_id":"rcpt-4711","status":"queued"}"#;
        let (url, server) = receiver(move |r| {
            let header = r.header("Lethe-Signature").unwrap_or_default();
            match verify(header, SECRET, &r.body, now_secs(), DEFAULT_TOLERANCE_SECS) {
                Ok(()) => reply(200, ack_body),
                Err(e) => reply(401, &e.to_string()),
            }
        });
        let before = Utc::now();
        let d = send(&url).expect("acknowledged");
        let r = server.join().expect("receiver thread");
        assert_eq!(d.status, 200);
        assert_eq!(d.ack.as_deref(), Some("rcpt-4711"));
        assert_eq!(d.body_sha256, hex::encode(Sha256::digest(ack_body)));
        assert!(d.received_at >= before);

        assert_eq!(r.request_line, "POST /hooks/lethe HTTP/1.1");
        assert_eq!(r.body, BODY);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("Lethe-Notice-Id"), Some("ntc-test"));
        assert_eq!(r.header("User-Agent"), Some(USER_AGENT));
        assert!(USER_AGENT.starts_with("lethe/"));
    }

    #[test]
    fn ack_from_header_and_truncated() {
        let long = "a".repeat(250);
        let header_value = long.clone();
        let (url, server) = receiver(move |_| Reply {
            status: 202,
            headers: vec![("Lethe-Ack", header_value)],
            body: String::new(),
        });
        let d = send(&url).expect("acknowledged");
        server.join().expect("receiver thread");
        assert_eq!(d.status, 202);
        assert_eq!(d.ack.map(|a| a.len()), Some(EXCERPT_CHARS));
        assert_eq!(d.body_sha256, hex::encode(Sha256::digest(b"")));
    }

    #[test]
    fn no_ack_is_still_an_acknowledged_delivery() {
        let (url, server) = receiver(|_| reply(200, "thanks"));
        let d = send(&url).expect("acknowledged");
        server.join().expect("receiver thread");
        assert_eq!(d.ack, None);
        assert_eq!(d.body_sha256, hex::encode(Sha256::digest(b"thanks")));
    }

    #[test]
    fn server_errors_are_retryable_with_a_short_excerpt() {
        let long_body = format!("upstream down\n{}", "x".repeat(500));
        let (url, server) = receiver(move |_| reply(500, &long_body));
        let e = send(&url).expect_err("refused");
        server.join().expect("receiver thread");
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.status(), Some(500));
        let DeliveryError::RetryableStatus { body_excerpt, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(body_excerpt.chars().count(), EXCERPT_CHARS);
        assert!(
            body_excerpt.starts_with("upstream down x"),
            "{body_excerpt}"
        );
        assert!(!e.to_string().contains("REQUEST-BODY-MARKER"));
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let (url, server) = receiver(|_| Reply {
            status: 429,
            headers: vec![("Retry-After", "120".into())],
            body: String::new(),
        });
        let e = send(&url).expect_err("refused");
        server.join().expect("receiver thread");
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    }

    #[test]
    fn client_errors_are_permanent() {
        let (url, server) = receiver(|_| reply(400, r#"{"error":"unknown subject"}"#));
        let e = send(&url).expect_err("refused");
        server.join().expect("receiver thread");
        assert!(!e.is_retryable());
        assert_eq!(e.status(), Some(400));
        assert_eq!(
            e.to_string(),
            r#"the receiver answered HTTP 400 (permanent): {"error":"unknown subject"}"#
        );
        assert!(is_retryable_status(408));
        assert!(!is_retryable_status(404));
    }

    #[test]
    fn redirects_are_not_followed_and_fail_permanently() {
        let elsewhere = TcpListener::bind("127.0.0.1:0").expect("bind");
        let location = format!("http://{}/moved", elsewhere.local_addr().expect("address"));
        let loc = location.clone();
        let (url, server) = receiver(move |_| Reply {
            status: 301,
            headers: vec![("Location", loc)],
            body: String::new(),
        });
        let e = send(&url).expect_err("not followed");
        server.join().expect("receiver thread");
        assert!(!e.is_retryable(), "{e}");
        assert_eq!(e.status(), Some(301));
        assert!(e.to_string().contains(&location), "{e}");
        elsewhere.set_nonblocking(true).expect("nonblocking");
        assert!(
            elsewhere.accept().is_err(),
            "the redirect target was contacted"
        );
    }

    #[test]
    fn a_silent_receiver_times_out() {
        // Bound but never accepting: the kernel completes the handshake, nobody answers.
        let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", silent.local_addr().expect("address"));
        let header = signature::sign(SECRET, now_secs(), BODY);
        let started = Instant::now();
        let e = deliver(&url, BODY, &header, "ntc-test", Duration::from_millis(300))
            .expect_err("times out");
        assert_eq!(
            e,
            DeliveryError::Timeout {
                timeout: Duration::from_millis(300)
            }
        );
        assert!(e.is_retryable());
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(silent);
    }

    #[test]
    fn a_refused_connection_is_retryable() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("address").port()
        };
        let e = send(&format!("http://127.0.0.1:{port}/")).expect_err("refused");
        assert!(matches!(e, DeliveryError::Transport(_)), "{e:?}");
        assert!(e.is_retryable());
    }

    #[test]
    fn urls_outside_the_policy_are_refused_before_any_traffic() {
        for url in [
            "ftp://127.0.0.1/",
            "http://hooks.example/",
            "https://user:pw@hooks.example/",
            "not a url",
        ] {
            let e = send(url).expect_err("refused");
            assert!(matches!(e, DeliveryError::InvalidUrl(_)), "{url}: {e:?}");
            assert!(!e.is_retryable());
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }

    #[test]
    fn excerpts_drop_control_characters() {
        assert_eq!(excerpt("a\r\nb\u{7}c  "), "a  b c");
        assert_eq!(excerpt(&"é".repeat(300)).chars().count(), EXCERPT_CHARS);
        assert_eq!(ack_from_body(br#"{"ack_id": 42}"#), Some("42".into()));
        assert_eq!(ack_from_body(br#"{"ack_id": null}"#), None);
        assert_eq!(ack_from_body(b"[]"), None);
    }
}
