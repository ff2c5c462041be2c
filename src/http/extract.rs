//! Extractors whose rejections are JSON errors with the right 4xx (never axum's plain-text
//! defaults, never a 5xx for bad input).

use crate::error::ApiError;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `Json<T>` with API errors: 400 malformed JSON, 413 too large, 415 wrong content type,
/// 422 a well-formed body with wrong fields (naming the field).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    let status = rej.status();
    match rej {
        JsonRejection::JsonDataError(e) => {
            // serde_path_to_error style: "field: message"
            let text = e.body_text();
            let detail = text
                .split_once(": ")
                .map_or(text.as_str(), |(_, d)| d)
                .to_string();
            let field = detail.split_once(": ").map(|(f, _)| f.to_string());
            let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", detail);
            err.field = field.filter(|f| !f.contains(' '));
            err
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a body with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body too large: {}", e.body_text()),
            )
        }
        other => {
            let code = if other.status().is_client_error() {
                other.status()
            } else {
                StatusCode::BAD_REQUEST
            };
            ApiError::new(code, "bad_request", other.body_text())
        }
    }
}

/// `Query<T>` with a 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                // "Failed to deserialize query string: limit: invalid digit found in string"
                let text = e.body_text();
                let field = text
                    .split_once(": ")
                    .and_then(|(_, rest)| rest.split_once(": "))
                    .map(|(f, _)| f.to_string())
                    .filter(|f| {
                        !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                let mut err =
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", text);
                err.field = field;
                Err(err)
            }
            Err(e) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_query",
                e.body_text(),
            )),
        }
    }
}

/// `Path<T>` with API errors: a path parameter that cannot be decoded (invalid UTF-8 in
/// its percent-encoding, a value of the wrong type) is a 422 naming the parameter, never
/// axum's plain-text 400 (or its 500 for a route without the parameter, a defect).
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let message = e.body_text();
                let field = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. } => key.clone(),
                    _ => "path".to_string(),
                };
                let mut err =
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_path", message);
                err.field = Some(field);
                Err(err)
            }
            Err(e) => Err(ApiError::internal(e.body_text())),
        }
    }
}

/// A JSON body that may be absent (an empty body, or JSON `null`, gives `T::default()`),
/// for actions whose parameters are all optional.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        e.body_text(),
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body with Content-Type: application/json",
            ));
        }
        if bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        // axum's parser names the field at fault ("note: invalid type: ...").
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(v)| OptionalJson(v))
            .map_err(json_rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header::CONTENT_TYPE;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Note {
        note: Option<String>,
    }

    async fn optional(content_type: Option<&str>, body: &str) -> Result<Note, ApiError> {
        let mut req = Request::builder().method("POST").uri("/x");
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        let req = req.body(Body::from(body.to_string())).expect("request");
        OptionalJson::<Note>::from_request(req, &())
            .await
            .map(|OptionalJson(n)| n)
    }

    #[tokio::test]
    async fn optional_json_names_the_field_and_takes_empty_or_null() {
        let json = Some("application/json");
        assert_eq!(optional(None, "").await.expect("empty").note, None);
        assert_eq!(optional(json, " null ").await.expect("null").note, None);
        let n = optional(json, r#"{"note":"hi"}"#).await.expect("note");
        assert_eq!(n.note.as_deref(), Some("hi"));
        let e = optional(json, r#"{"note":5}"#)
            .await
            .expect_err("wrong type");
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("note")));
        let e = optional(json, r#"{"nope":1}"#)
            .await
            .expect_err("unknown field");
        assert_eq!(e.status.as_u16(), 422);
        assert!(e.message.contains("nope"), "{}", e.message);
        let e = optional(json, r#"{"note":"#).await.expect_err("malformed");
        assert_eq!((e.status.as_u16(), e.code), (400, "malformed_json"));
        let e = optional(Some("text/plain"), "hi")
            .await
            .expect_err("not json");
        assert_eq!(e.status.as_u16(), 415);
    }

    async fn path_of(uri: &str) -> Result<String, ApiError> {
        let app: axum::Router = axum::Router::new().route(
            "/r/{id}",
            axum::routing::get(|p: Result<ApiPath<String>, ApiError>| async move {
                match p {
                    Ok(ApiPath(id)) => id,
                    Err(e) => format!("{}:{}", e.status.as_u16(), e.field.unwrap_or_default()),
                }
            }),
        );
        let resp = tower::ServiceExt::oneshot(
            app,
            Request::builder()
                .uri(uri)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let bytes = axum::body::to_bytes(resp.into_body(), 1024)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_path_parameter_that_is_not_utf8_is_a_422_naming_it() {
        assert_eq!(path_of("/r/abc%20d").await.expect("ok"), "abc d");
        assert_eq!(path_of("/r/%FF%FE").await.expect("ok"), "422:id");
    }

    #[tokio::test]
    async fn a_bad_query_parameter_is_a_422_naming_it() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Q {
            #[allow(dead_code)]
            limit: Option<i64>,
        }
        let (mut parts, ()) = Request::builder()
            .uri("/x?limit=abc")
            .body(())
            .expect("request")
            .into_parts();
        let e = ApiQuery::<Q>::from_request_parts(&mut parts, &())
            .await
            .map(|ApiQuery(q)| q)
            .expect_err("not a number");
        assert_eq!(
            (e.status.as_u16(), e.field.as_deref()),
            (422, Some("limit"))
        );
        let (mut parts, ()) = Request::builder()
            .uri("/x?other=1")
            .body(())
            .expect("request")
            .into_parts();
        let e = ApiQuery::<Q>::from_request_parts(&mut parts, &())
            .await
            .map(|ApiQuery(q)| q)
            .expect_err("unknown parameter");
        assert_eq!((e.status.as_u16(), e.code), (422, "invalid_query"));
    }
}
