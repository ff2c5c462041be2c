//! Rate limits per bearer token and per client address on the JSON API (`/api/v1/*`), and
//! per client address on failed web sign-ins (`POST /sign-in`).
//!
//! The core, [`Limiter`], is pure: a GCRA (the token bucket written as one "theoretical
//! arrival time" per key) with the clock passed in, so it is tested without sleeping. Its
//! memory is bounded: a key whose bucket is full again is forgotten when room is needed,
//! and at most `max_keys` keys are kept (past that the least loaded are forgotten, which
//! only ever lets a client through early). [`middleware`] applies the limits: a limited
//! request gets a 429 with `Retry-After` and the API's JSON error (an HTML page for the
//! sign-in form). Tokens are keyed by their SHA-256, never by the token itself; addresses
//! by the socket's peer (IPv6 by its /64), or by `X-Forwarded-For` only when the peer is a
//! configured trusted proxy. `/health`, `/metrics` and everything outside the API and the
//! sign-in form are never limited.

use crate::config::{HttpLimits, RateSetting};
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused; the next request would be allowed after this long.
    Limited {
        retry_after: Duration,
    },
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }
}

/// A keyed GCRA limiter: `per_minute` requests per key sustained, up to `burst` at once.
#[derive(Debug)]
pub struct Limiter<K> {
    /// Time between two requests at the sustained rate.
    interval: Duration,
    /// How far ahead of `now` the theoretical arrival time may run (`burst - 1` intervals).
    tolerance: Duration,
    max_keys: usize,
    /// Theoretical arrival time per key; a key at or before `now` has its full burst.
    tat: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `None` when the setting turns the limit off (`per_minute` 0).
    pub fn new(setting: RateSetting, max_keys: usize) -> Option<Self> {
        if setting.per_minute == 0 {
            return None;
        }
        let interval = Duration::from_secs(60) / setting.per_minute;
        Some(Limiter {
            interval,
            tolerance: interval * setting.burst.max(1).saturating_sub(1),
            max_keys: max_keys.max(1),
            tat: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one request of `key` at `now`, unless it is over the limit.
    pub fn check(&self, key: &K, now: Instant) -> Decision {
        let mut map = self
            .tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stored = map.get(key).copied();
        let tat = stored.map_or(now, |t| t.max(now));
        let ahead = tat.saturating_duration_since(now);
        if ahead > self.tolerance {
            return Decision::Limited {
                retry_after: ahead - self.tolerance,
            };
        }
        if stored.is_none() && map.len() >= self.max_keys {
            self.make_room(&mut map, now);
        }
        map.insert(key.clone(), tat + self.interval);
        Decision::Allowed
    }

    /// Gives back one request counted for `key` (a sign-in that succeeded).
    pub fn refund(&self, key: &K, now: Instant) {
        let mut map = self
            .tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tat) = map.get(key).copied() {
            match tat.checked_sub(self.interval) {
                Some(t) if t > now => {
                    map.insert(key.clone(), t);
                }
                _ => {
                    map.remove(key);
                }
            }
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every key whose bucket is full again; if that frees less than a tenth of
    /// the room, also the least loaded keys (earliest arrival time) down to 90 %. Each
    /// sweep frees at least a tenth, so the cost per new key stays constant on average.
    fn make_room(&self, map: &mut HashMap<K, Instant>, now: Instant) {
        map.retain(|_, tat| *tat > now);
        let target = self.max_keys - self.max_keys / 10 - 1;
        if map.len() <= target {
            return;
        }
        let mut by_load: Vec<(Instant, K)> = map.iter().map(|(k, t)| (*t, k.clone())).collect();
        let drop = by_load.len() - target;
        by_load.select_nth_unstable_by_key(drop - 1, |(t, _)| *t);
        for (_, k) in by_load.into_iter().take(drop) {
            map.remove(&k);
        }
    }
}

/// An address block (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("\"{text}\" is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("\"{text}\": the prefix must be 0..={max}")),
            },
        };
        Ok(IpNet { addr, prefix })
    }

    /// A comma-separated list (empty entries ignored).
    pub fn parse_list(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(IpNet::parse)
            .collect()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) are their IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The limiter key of a client address: IPv4 as is, IPv6 by its /64 (one subscriber's
/// network; a client cannot escape its limit by changing the interface identifier).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The client's address: the socket's peer, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => client = ip,
            Ok(ip) => return ip,
            // A malformed entry ends the chain we can believe.
            Err(_) => return client,
        }
    }
    client
}

/// The limiter key of a bearer token: its SHA-256 (the token itself is never kept).
pub fn token_key(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into())
}

/// The limiters of one server.
#[derive(Debug)]
pub struct RateLimits {
    api_token: Option<Limiter<[u8; 32]>>,
    api_ip: Option<Limiter<IpAddr>>,
    sign_in: Option<Limiter<IpAddr>>,
    trusted: Vec<IpNet>,
}

impl RateLimits {
    pub fn new(limits: &HttpLimits) -> RateLimits {
        let keys = limits.rate_limit_max_keys;
        RateLimits {
            api_token: Limiter::new(limits.api_per_token, keys),
            api_ip: Limiter::new(limits.api_per_ip, keys),
            sign_in: Limiter::new(limits.sign_in_per_ip, keys),
            trusted: limits.trusted_proxies.clone(),
        }
    }
}

/// What a request is, for the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Api,
    SignIn,
    Other,
}

fn kind(method: &Method, path: &str) -> Kind {
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        Kind::Api
    } else if method == Method::POST && path == "/sign-in" {
        Kind::SignIn
    } else {
        Kind::Other
    }
}

/// Whole seconds to wait, rounded up, at least one.
fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn too_many(kind: Kind, retry_after: Duration) -> Response {
    let secs = retry_secs(retry_after).max(1);
    let message = format!("too many requests; retry after {secs} s");
    let mut resp = if kind == Kind::SignIn {
        super::web::page::PageError::Status(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many sign-in attempts from your address. Wait {secs} seconds and try again."
            ),
        )
        .into_response()
    } else {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).into_response()
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// Applies the limits. The client address comes from the connection (`ConnectInfo`); a
/// request without one (served without connect info) is limited by token only.
pub async fn middleware(
    State(limits): State<Arc<RateLimits>>,
    req: Request,
    next: Next,
) -> Response {
    let kind = kind(req.method(), req.uri().path());
    if kind == Kind::Other {
        return next.run(req).await;
    }
    let now = Instant::now();
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_key(client_ip(c.0.ip(), req.headers(), &limits.trusted)));
    match kind {
        Kind::Api => {
            let ip_limit = limits.api_ip.as_ref().zip(ip);
            if let Some((l, ip)) = &ip_limit
                && let Decision::Limited { retry_after } = l.check(ip, now)
            {
                return too_many(kind, retry_after);
            }
            if let (Some(l), Some(token)) = (&limits.api_token, token_key(req.headers()))
                && let Decision::Limited { retry_after } = l.check(&token, now)
            {
                // A refused request does not count against the address either.
                if let Some((l, ip)) = &ip_limit {
                    l.refund(ip, now);
                }
                return too_many(kind, retry_after);
            }
            next.run(req).await
        }
        Kind::SignIn => {
            let (Some(l), Some(ip)) = (&limits.sign_in, ip) else {
                return next.run(req).await;
            };
            // Every attempt counts while it runs (so parallel guesses are limited too); a
            // successful sign-in (a redirect into the UI) gives its count back.
            if let Decision::Limited { retry_after } = l.check(&ip, now) {
                return too_many(kind, retry_after);
            }
            let resp = next.run(req).await;
            if resp.status().is_redirection() {
                l.refund(&ip, Instant::now());
            }
            resp
        }
        Kind::Other => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(per_minute: u32, burst: u32) -> RateSetting {
        RateSetting { per_minute, burst }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = Limiter::new(setting(60, 3), 100).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(&"a", t0).is_allowed());
        }
        assert_eq!(
            l.check(&"a", t0),
            Decision::Limited {
                retry_after: secs(1)
            }
        );
        // Another key has its own bucket.
        assert!(l.check(&"b", t0).is_allowed());
        // One per second comes back.
        assert!(!l.check(&"a", t0 + Duration::from_millis(999)).is_allowed());
        assert!(l.check(&"a", t0 + secs(1)).is_allowed());
        assert!(!l.check(&"a", t0 + secs(1)).is_allowed());
        // After a quiet spell the whole burst is back, never more.
        let later = t0 + secs(60);
        for _ in 0..3 {
            assert!(l.check(&"a", later).is_allowed());
        }
        assert!(!l.check(&"a", later).is_allowed());
    }

    #[test]
    fn refused_requests_do_not_count() {
        let l = Limiter::new(setting(6, 1), 100).unwrap();
        let t0 = Instant::now();
        assert!(l.check(&1, t0).is_allowed());
        for i in 1..10 {
            let d = l.check(&1, t0 + secs(i));
            assert_eq!(
                d,
                Decision::Limited {
                    retry_after: secs(10 - i)
                },
                "hammering does not push the next slot further out"
            );
        }
        assert!(l.check(&1, t0 + secs(10)).is_allowed());
    }

    #[test]
    fn refund_gives_one_back() {
        let l = Limiter::new(setting(1, 2), 100).unwrap();
        let t0 = Instant::now();
        assert!(l.check(&"ip", t0).is_allowed());
        assert!(l.check(&"ip", t0).is_allowed());
        assert!(!l.check(&"ip", t0).is_allowed());
        l.refund(&"ip", t0);
        assert!(l.check(&"ip", t0).is_allowed());
        l.refund(&"ip", t0);
        l.refund(&"ip", t0);
        assert_eq!(l.len(), 0, "a full bucket is forgotten");
        l.refund(&"never-seen", t0);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn off_means_no_limiter() {
        assert!(Limiter::<u8>::new(RateSetting::OFF, 10).is_none());
    }

    #[test]
    fn memory_is_bounded_and_idle_keys_go_first() {
        let l = Limiter::new(setting(60, 2), 100).unwrap();
        let t0 = Instant::now();
        // A busy client, then a flood of one-off keys.
        assert!(l.check(&u32::MAX, t0).is_allowed());
        assert!(l.check(&u32::MAX, t0).is_allowed());
        for k in 0..10_000u32 {
            assert!(
                l.check(&k, t0 + Duration::from_millis(u64::from(k)))
                    .is_allowed()
            );
            assert!(l.len() <= 100, "at most max_keys keys");
        }
        // Keys whose bucket refilled are forgotten first; a key under load is kept until
        // the keys are all busier.
        let l = Limiter::new(setting(60, 5), 10).unwrap();
        for _ in 0..5 {
            assert!(l.check(&1000u32, t0).is_allowed());
        }
        for k in 0..9u32 {
            assert!(l.check(&k, t0 + secs(2)).is_allowed());
        }
        let t3 = t0 + secs(3);
        assert!(l.check(&99, t3).is_allowed());
        assert!(l.len() <= 10);
        // Key 1000 kept its count: three of five left at t3 (forgotten, it would get five).
        for _ in 0..3 {
            assert!(l.check(&1000, t3).is_allowed());
        }
        assert!(!l.check(&1000, t3).is_allowed(), "still limited");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_secs(secs(2)), 2);
        assert_eq!(retry_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = IpNet::parse_list("10.0.0.0/8, 2001:db8::/32").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.1.1.1"),
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        // Through trusted proxies: the right-most untrusted hop (the spoofable left part is
        // ignored).
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &h, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &[]), ip("10.0.0.2"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("junk, 10.9.9.9"),
        );
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("10.9.9.9"));
    }

    #[test]
    fn cidr_blocks() {
        let n = IpNet::parse("192.168.4.0/22").unwrap();
        assert!(n.contains("192.168.7.255".parse().unwrap()));
        assert!(!n.contains("192.168.8.0".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        assert!(
            IpNet::parse("::/0")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("example.com").is_err());
        assert_eq!(
            IpNet::parse("10.0.0.1").unwrap(),
            IpNet::parse("10.0.0.1/32").unwrap()
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_network() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = client_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            client_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn tokens_are_keyed_by_hash() {
        let mut h = HeaderMap::new();
        assert_eq!(token_key(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer lethe_secret"),
        );
        let k = token_key(&h).unwrap();
        assert_eq!(k, <[u8; 32]>::from(Sha256::digest(b"lethe_secret")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(token_key(&h), None);
    }

    #[test]
    fn only_the_api_and_sign_in_are_limited() {
        assert_eq!(kind(&Method::GET, "/api/v1/requests"), Kind::Api);
        assert_eq!(kind(&Method::POST, "/api/v1"), Kind::Api);
        assert_eq!(kind(&Method::POST, "/sign-in"), Kind::SignIn);
        assert_eq!(kind(&Method::GET, "/sign-in"), Kind::Other);
        for p in [
            "/health",
            "/metrics",
            "/api/openapi.json",
            "/api/v10/x",
            "/dashboard",
        ] {
            assert_eq!(kind(&Method::GET, p), Kind::Other, "{p}");
        }
    }
}
