//! Size limits on what a client sends, answered like every other error: the API's JSON body
//! (`/api/...`, `/health`, anything not a web page) or the web UI's HTML error page.
//!
//! The request head is bounded by the server itself ([`super::server`]: 431); here the
//! request target gets a 414 past `max_uri_bytes`, and the 413s that axum's body
//! extractors produce as plain text (a body over `max_body_bytes`, `DefaultBodyLimit`)
//! are given the same error bodies as the rest of the service.

use super::web::page::PageError;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest body of the certificate verification routes (API and web upload): a
/// certificate of up to 1 MiB with the form around it, whatever `max_body_bytes` says.
pub const CERT_VERIFY_BODY_BYTES: usize = (1 << 20) + (64 << 10);

/// Whether the error for this request is an HTML page (a browser on a web page) rather
/// than the API's JSON.
pub fn wants_html(path: &str, headers: &HeaderMap) -> bool {
    let machine = path == "/api"
        || path.starts_with("/api/")
        || path == "/health"
        || path == "/metrics"
        || path.starts_with("/.well-known/");
    if machine {
        return false;
    }
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/x-www-form-urlencoded") || v.starts_with("multipart/")
        });
    accepts_html || form
}

/// An error response in the form the client expects.
pub fn error_response(
    html: bool,
    status: StatusCode,
    code: &'static str,
    message: String,
) -> Response {
    if html {
        PageError::Status(status, message).into_response()
    } else {
        ApiError::new(status, code, message).into_response()
    }
}

fn is_structured(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json") || v.starts_with("text/html"))
}

/// Refuses over-long request targets (414) and gives plain-text 413s the service's error
/// bodies.
pub async fn middleware(State(max_uri_bytes): State<usize>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let html = wants_html(&path, req.headers());
    let target_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > max_uri_bytes {
        return error_response(
            html,
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is longer than {max_uri_bytes} bytes"),
        );
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_structured(&resp) {
        let detail = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        let message = if detail.is_empty() {
            "request body too large".to_string()
        } else {
            format!("request body too large: {detail}")
        };
        return error_response(
            html,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            message,
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn html_only_for_web_pages() {
        let mut browser = HeaderMap::new();
        browser.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
        assert!(wants_html("/requests", &browser));
        assert!(!wants_html("/api/v1/requests", &browser));
        assert!(!wants_html("/health", &browser));
        assert!(!wants_html("/requests", &HeaderMap::new()));
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        assert!(wants_html("/verify", &form));
        assert!(!wants_html("/api/v1/certificates/verify", &form));
    }
}
