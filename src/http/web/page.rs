//! The page frame shared by every template, rendering, and the one place where a web error
//! becomes an HTML page with its status code (the API's JSON errors stay in `crate::error`).

use crate::error::ApiError;
use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

/// What the layout template needs: title, the active section, who is signed in.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// Navigation section to mark as current (`dashboard`, `requests`, ...).
    pub section: &'static str,
    pub signed_in: bool,
    pub who: String,
    pub role: &'static str,
    pub officer: bool,
    /// For the sign-out form.
    pub csrf: String,
    pub expires_at: String,
}

impl Layout {
    /// The frame for pages shown before sign-in.
    pub fn anonymous(title: &str) -> Layout {
        Layout {
            title: title.to_string(),
            section: "",
            signed_in: false,
            who: String::new(),
            role: "",
            officer: false,
            csrf: String::new(),
            expires_at: String::new(),
        }
    }
}

/// Renders a template as a 200 page, or a 500 page if the template fails.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError::Internal(format!("template: {e}")).into_response(),
    }
}

/// Renders with a status other than 200 (a form shown again with its errors).
pub fn render_status(status: StatusCode, t: &impl Template) -> Response {
    let mut r = render(t);
    if r.status() == StatusCode::OK {
        *r.status_mut() = status;
    }
    r
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// No (live) session: go to the sign-in page, then come back to `next`.
    SignIn {
        next: String,
    },
    /// Signed in, but the role may not do this.
    Forbidden(String),
    /// A form without the session's CSRF token.
    Csrf(&'static str),
    NotFound(String),
    /// A 4xx or 503 with a message for people.
    Status(StatusCode, String),
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    heading: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::SignIn { next } => {
                let target = format!(
                    "/sign-in?next={}",
                    serde_urlencoded::to_string([("n", next.as_str())])
                        .map(|s| s.trim_start_matches("n=").to_string())
                        .unwrap_or_default()
                );
                return Redirect::to(&target).into_response();
            }
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            PageError::Csrf(m) => (
                StatusCode::FORBIDDEN,
                "Form check failed",
                format!(
                    "{m} For your protection lethe only accepts forms it served to your \
                     session. Go back, reload the page and submit it again."
                ),
            ),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            PageError::Status(s, m) => (s, s.canonical_reason().unwrap_or("Request refused"), m),
            PageError::Internal(m) => {
                tracing::error!(message = %m, "page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "lethe could not show this page. The error was logged; try again, and tell \
                     your administrator if it persists."
                        .to_string(),
                )
            }
        };
        let page = ErrorPage {
            layout: Layout::anonymous(heading),
            status: status.as_u16(),
            heading,
            message: &message,
        };
        let mut r = match page.render() {
            Ok(html) => Html(html).into_response(),
            Err(_) => message.into_response(),
        };
        *r.status_mut() = status;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("30"),
            );
        }
        r
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        if e.status == StatusCode::NOT_FOUND {
            PageError::NotFound(e.message)
        } else if e.status.is_server_error() && e.status != StatusCode::SERVICE_UNAVAILABLE {
            PageError::Internal(e.message)
        } else {
            PageError::Status(e.status, e.message)
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::request::RequestError> for PageError {
    fn from(e: crate::request::RequestError) -> Self {
        ApiError::from(e).into()
    }
}

/// A form field that may be left empty.
pub fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// "rows_remaining_outside_exemptions" -> "Rows remaining outside exemptions".
pub fn humanize(key: &str) -> String {
    let s = key.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Runs blocking work (store, sources) on the blocking pool; errors become pages.
pub async fn blocking<T, E>(
    app: &crate::app::AppState,
    f: impl FnOnce(&crate::app::App) -> Result<T, E> + Send + 'static,
) -> Result<T, PageError>
where
    T: Send + 'static,
    E: Into<PageError> + Send + 'static,
{
    match crate::http::on_blocking_pool(app, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(PageError::Internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizes_keys() {
        assert_eq!(humanize("rows_remaining"), "Rows remaining");
        assert_eq!(humanize(""), "");
    }

    #[test]
    fn api_errors_keep_their_class() {
        let p: PageError = ApiError::not_found("x").into();
        assert!(matches!(p, PageError::NotFound(_)));
        let p: PageError = ApiError::invalid("f", "bad").into();
        assert!(matches!(p, PageError::Status(s, _) if s == StatusCode::UNPROCESSABLE_ENTITY));
        let p: PageError = ApiError::internal("boom").into();
        assert!(matches!(p, PageError::Internal(_)));
    }
}
