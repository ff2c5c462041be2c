//! The API contract: an OpenAPI 3.1 document generated from the code (utoipa), served
//! unauthenticated at `GET /api/openapi.json`.
//!
//! The operations come from the `#[utoipa::path]` annotations on the handlers in
//! [`super::api`]; the request and response bodies from `ToSchema` derives on the types the
//! handlers (de)serialize. [`Conventions`] then adds what every operation shares rather
//! than repeating it on each handler: the bearer security scheme on `/api/v1`, the errors of
//! the authentication and rate-limit layers (401, 429), the engine store being unavailable
//! (503), a defect (500), the errors of the JSON, query and path extractors (400, 413,
//! 414, 415, 422), and `/metrics`, whose handler lives with the metrics code. Every error
//! has the body of [`crate::error::ErrorBody`]. It also names operations `<tag>.<handler>`
//! and links each `POST` that creates something (201 with an `id`) to the operations on
//! it, so a client can follow a request through its workflow.
//!
//! The document is built once; each `GET` fills in what the loaded policy decides
//! ([`with_policy`]: identity kinds and the shape of their values, retention rule names).
//!
//! JSON built by hand elsewhere (the erasure plan of `erase::run`, the retention plan and
//! dry-run outcome of `retention`, the JWKS of `cert`) is described by the schema-only
//! types at the end of this file; schemathesis (`scripts/schemathesis.sh`, in CI) checks
//! the live responses against them.

use super::api;
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::policy::{Normalizer, Policy};
use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, PathItem, RefOr, Required, Type,
};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lethe",
        description = "GDPR/CCPA data-subject requests, legal holds, retention and signed \
            certificates over one CRM data map. Every `/api/v1` operation takes \
            `Authorization: Bearer <token>` (see the `bearer` security scheme for the roles); \
            every error is `{\"error\": {\"status\", \"code\", \"message\", \"field\"?, \
            \"allowed_actions\"?}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        openapi_json,
        api::health::health,
        api::certificates::jwks,
        api::requests::list,
        api::requests::create,
        api::requests::due,
        api::requests::show,
        api::requests::acknowledge,
        api::requests::request_identity,
        api::requests::verify,
        api::requests::run,
        api::requests::plan,
        api::requests::show_plan,
        api::requests::approve,
        api::requests::execute,
        api::requests::deny,
        api::requests::withdraw,
        api::requests::cancel,
        api::requests::extend,
        api::requests::export,
        api::exports::create_link,
        api::exports::download,
        api::holds::list,
        api::holds::create,
        api::holds::show,
        api::holds::release,
        api::certificates::list,
        api::certificates::verify,
        api::certificates::show,
        api::certificates::raw,
        api::retention::list_rules,
        api::retention::show_plan,
        api::retention::list_runs,
        api::retention::start_run,
        api::retention::show_run,
        api::audit::list,
        api::audit::verify,
    ),
    components(schemas(
        ErrorBody,
        ColumnValue,
        crate::request::RequestKind,
        crate::request::Regime,
        crate::request::RequestState,
        api::requests::DueFilter,
        api::requests::ExportFormat,
    )),
    modifiers(&Conventions),
    tags(
        (name = "requests", description = "Data-subject requests and their workflow"),
        (name = "holds", description = "Legal holds on a person, a table or rows"),
        (name = "certificates", description = "Signed certificates and the public keys"),
        (name = "retention", description = "Retention rules, plans and runs"),
        (name = "exports", description = "Export downloads through expiring links"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "service", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// The document as served, built once.
static DOCUMENT: LazyLock<Result<serde_json::Value, String>> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).map_err(|e| e.to_string())?;
    camel_case_links(&mut doc);
    Ok(doc)
});

/// The OpenAPI document of the service, as JSON.
pub fn document() -> Result<serde_json::Value, String> {
    DOCUMENT.clone()
}

/// utoipa 5 writes a Link object's fields in snake case (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef`, `requestBody`.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut())
        .filter_map(|resp| resp.get_mut("links").and_then(|l| l.as_object_mut()))
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.to_string(), v);
            }
        }
    }
}

/// This document (OpenAPI 3.1, JSON), with this deployment's data map filled in: the
/// identity kinds a request or hold may carry and the retention rules' names.
///
/// No authentication.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
pub async fn openapi_json(State(app): State<AppState>) -> axum::response::Response {
    match document() {
        Ok(mut doc) => {
            with_policy(&mut doc, &app.policy);
            Json(doc).into_response()
        }
        Err(e) => ApiError::internal(format!("OpenAPI document: {e}")).into_response(),
    }
}

/// Fills the document with what the policy decides: identity kinds (each with the shape
/// its normalizer accepts) and retention rule names.
pub fn with_policy(doc: &mut serde_json::Value, policy: &Policy) {
    use serde_json::{Value, json};
    let kinds = &policy.datamap.identity_kinds;
    let names: Vec<&String> = kinds.keys().collect();
    let schemas = &mut doc["components"]["schemas"];
    if let Some(kind) = schemas["IdentityInput"]["properties"].get_mut("kind") {
        kind["enum"] = json!(names);
    }
    let properties: serde_json::Map<String, Value> = kinds
        .iter()
        .map(|(name, k)| (name.clone(), identity_value_schema(&k.label, &k.normalizer)))
        .collect();
    if let Some(variants) = schemas["IdentitiesInput"]["oneOf"].as_array_mut() {
        for v in variants.iter_mut().filter(|v| v["type"] == "object") {
            *v = json!({
                "type": "object",
                "description": "One value per identity kind",
                "properties": properties,
                "minProperties": 1,
                "additionalProperties": false,
            });
        }
    }
    let rules: Vec<&str> = policy
        .retention
        .rules
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    if !rules.is_empty() {
        if let Some(rule) = schemas["StartRun"]["properties"].get_mut("rule") {
            rule["enum"] = json!(rules);
        }
        let params = doc["paths"]["/api/v1/retention/runs"]["get"]["parameters"].as_array_mut();
        for p in params.into_iter().flatten().filter(|p| p["name"] == "rule") {
            p["schema"]["enum"] = json!(rules);
        }
    }
}

/// The shape of an identity value its normalizer accepts (a guide: the normalizer decides).
fn identity_value_schema(label: &str, normalizer: &Normalizer) -> serde_json::Value {
    use serde_json::json;
    match normalizer {
        Normalizer::Email => json!({"type": "string", "format": "email", "description": label}),
        Normalizer::Phone { .. } => json!({
            "type": "string",
            "pattern": "^\\+?[0-9][0-9 ]{5,16}$",
            "description": format!("{label}: E.164 (+<digits>) or national (leading 0)"),
        }),
        Normalizer::Reference { prefix, digits } => {
            let prefix: String = prefix
                .chars()
                .map(|c| {
                    if "\\^$.|?*+()[]{}/".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            let width = digits.map_or_else(|| "+".to_string(), |d| format!("{{1,{d}}}"));
            json!({
                "type": "string",
                "pattern": format!("^{prefix}[0-9]{width}$"),
                "description": label,
            })
        }
        Normalizer::Text => json!({"type": "string", "minLength": 1, "description": label}),
    }
}

/// Schema of one column value in a request body (a primary-key value, a rectified value):
/// a string, number, boolean or null, never an array or object.
pub struct ColumnValue;

impl utoipa::PartialSchema for ColumnValue {
    fn schema() -> RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::SchemaType;
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Boolean,
                Type::Null,
            ]))
            .description(Some("A column value: a string, number, boolean or null"))
            .into()
    }
}

impl ToSchema for ColumnValue {}

/// 403 for an auditor's token on an operation that changes something.
#[derive(IntoResponses)]
pub enum OfficerOnly {
    /// The token's role may not do this (auditors are read-only; officer or admin needed).
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// 404 for an unknown request id.
#[derive(IntoResponses)]
pub enum RequestNotFound {
    /// No request has this id.
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// 409 for a workflow action the request's state does not allow.
#[derive(IntoResponses)]
pub enum ActionRefused {
    /// The action is not allowed in the request's current state (`illegal_transition`, with
    /// `allowed_actions`), the request changed concurrently (`conflict`), or the workflow
    /// refused it (e.g. `no_plan`, `plan_stale`).
    #[response(status = 409)]
    Refused(ErrorBody),
}

/// Adds what every operation shares (see the module documentation).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`lethe token create --role officer|auditor|admin`), \
                         sent as `Authorization: Bearer <token>`. Roles: `auditor` reads \
                         everything and changes nothing (identity values and exports are \
                         withheld); `officer` also creates and acts on requests, holds and \
                         retention runs; `admin` is an officer who may also manage tokens \
                         and keys. Each operation's description names the role it needs.",
                    ))
                    .build(),
            ),
        );
        doc.paths.paths.insert("/metrics".into(), metrics_path());
        unique_operation_ids(doc);
        add_links(doc);
        for (path, item) in doc.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            let shared = Shared {
                bearer: api || path == "/metrics",
                rate_limited: api,
                uses_store: path != "/api/openapi.json",
            };
            for op in operations_mut(item) {
                add_common_responses(op, shared);
            }
        }
    }
}

/// Operation ids as `<tag>.<handler>` (`requests.list`, `holds.list`): the handlers'
/// names alone repeat across areas, and an OpenAPI operation id is unique.
fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_else(|| "service".into());
            if let Some(id) = op.operation_id.as_mut()
                && !id.contains('.')
            {
                *id = format!("{tag}.{id}");
            }
        }
    }
}

/// OpenAPI links from each `POST <collection>` that answers 201 with an `id` to every
/// operation on `<collection>/{id}...`, so clients (and schemathesis's stateful phase)
/// can follow a created request or hold through its workflow.
fn add_links(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    let mut targets: Vec<(String, String)> = Vec::new();
    for (path, item) in &doc.paths.paths {
        let mut item = item.clone();
        for op in operations_mut(&mut item) {
            if let Some(id) = &op.operation_id {
                targets.push((path.clone(), id.clone()));
            }
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let Some(post) = item.post.as_mut() else {
            continue;
        };
        let Some(RefOr::T(created)) = post.responses.responses.get_mut("201") else {
            continue;
        };
        let prefix = format!("{path}/{{id}}");
        for (target, op_id) in &targets {
            if target == &prefix || target.starts_with(&format!("{prefix}/")) {
                created.links.insert(
                    op_id.replace('.', "_"),
                    RefOr::T(
                        LinkBuilder::new()
                            .operation_id(op_id.clone())
                            .parameter("id", "$response.body#/id")
                            .description("The created item's id")
                            .build(),
                    ),
                );
            }
        }
    }
}

/// The operations of a path item.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// An error response with the service's error body and the given headers.
fn error_response(description: &str, headers: &[(&str, &str)]) -> RefOr<Response> {
    let mut b = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(ErrorBody::schema_ref()))
            .build(),
    );
    for (name, text) in headers {
        b = b.header(
            *name,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(*text))
                .build(),
        );
    }
    RefOr::T(b.build())
}

trait SchemaRef {
    fn schema_ref() -> RefOr<utoipa::openapi::Schema>;
}

impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<utoipa::openapi::Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

const RETRY_AFTER: (&str, &str) = ("Retry-After", "Seconds to wait before trying again");

/// Which layers an operation goes through.
#[derive(Clone, Copy)]
struct Shared {
    /// Takes a bearer token (401).
    bearer: bool,
    /// Under the API's rate limits (429).
    rate_limited: bool,
    /// Reads the engine store (503 when it is unavailable).
    uses_store: bool,
}

/// Adds the shared error responses an operation does not document itself.
fn add_common_responses(op: &mut Operation, shared: Shared) {
    let has_body = op.request_body.is_some();
    let body_required = op
        .request_body
        .as_ref()
        .is_some_and(|b: &RequestBody| b.required == Some(Required::True));
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let has_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let mut add = |status: &str, resp: RefOr<Response>| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert(resp);
    };
    if has_body {
        add(
            "400",
            error_response("The body is not well-formed JSON (`malformed_json`)", &[]),
        );
        add(
            "413",
            error_response(
                "The body is larger than the service accepts (`body_too_large`)",
                &[],
            ),
        );
        add(
            "415",
            error_response(
                "The body is not `Content-Type: application/json` (`unsupported_media_type`)",
                &[],
            ),
        );
        add(
            "422",
            error_response(
                if body_required {
                    "A body field is missing, unknown or has the wrong type (`invalid_input`); `field` names it"
                } else {
                    "A body field is unknown or has the wrong type (`invalid_input`)"
                },
                &[],
            ),
        );
    }
    if has_query {
        add(
            "422",
            error_response(
                "A query parameter is unknown or has the wrong type (`invalid_query`)",
                &[],
            ),
        );
    }
    if has_path {
        add(
            "404",
            error_response("Nothing has this id (`not_found`)", &[]),
        );
        add(
            "422",
            error_response(
                "A path parameter cannot be decoded (`invalid_path`); `field` names it",
                &[],
            ),
        );
    }
    add(
        "414",
        error_response(
            "The request target (path and query) is too long (`uri_too_long`)",
            &[],
        ),
    );
    if shared.bearer {
        add(
            "401",
            error_response(
                "The bearer token is missing, malformed, unknown, expired or revoked (`unauthorized`)",
                &[("WWW-Authenticate", "`Bearer realm=\"lethe\"`")],
            ),
        );
    }
    if shared.rate_limited {
        add(
            "429",
            error_response(
                "Too many requests from this token or address (`rate_limited`)",
                &[RETRY_AFTER],
            ),
        );
    }
    if shared.uses_store {
        add(
            "503",
            error_response(
                "The engine store or a CRM source is unavailable (`store_unavailable`, `source_unavailable`)",
                &[RETRY_AFTER],
            ),
        );
    }
    if shared.bearer {
        let reqs = op.security.get_or_insert_with(Vec::new);
        if reqs.is_empty() {
            reqs.push(SecurityRequirement::new(BEARER, Vec::<String>::new()));
        }
    }
    add(
        "500",
        error_response("A defect in the service (logged; `internal`)", &[]),
    );
}

/// `GET /metrics` (its handler is `super::metrics::metrics`).
fn metrics_path() -> PathItem {
    use utoipa::openapi::path::OperationBuilder;
    let ok = ResponseBuilder::new()
        .description("Prometheus text exposition format")
        .content(
            crate::metrics::encode::CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        )
        .build();
    let op = OperationBuilder::new()
        .tag("service")
        .operation_id(Some("metrics"))
        .summary(Some("Metrics in Prometheus text format"))
        .description(Some(
            "Requests by state and kind, overdue requests, retention rows per rule, \
             durations and the job queue. Takes an API token of any role or the dedicated \
             `LETHE_METRICS_TOKEN` as a bearer token.\n\nRole: any (or the metrics token).",
        ))
        .response("200", ok)
        .build();
    PathItem::new(HttpMethod::Get, op)
}

// ---------------------------------------------------------------------------------------
// Schema-only types: JSON built by hand elsewhere, described here.

/// The erasure, rectification or opt-out plan of a request (`erase::run::summary`, and for
/// officers `erase::run::review` with the pinned rows).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanView {
    request_id: String,
    plan_digest: String,
    /// erasure | rectification | opt_out
    kind: String,
    created_at: String,
    policy_digest: String,
    footprint_rows: u64,
    /// Mentions of the subject in other people's free text.
    mentions: u64,
    steps: Vec<PlanStep>,
    totals: PlanTotals,
    exemptions: Vec<PlanExemption>,
    /// Ids of the holds that keep rows.
    holds: Vec<String>,
    warnings: Vec<String>,
    /// Officers only: every pinned row with the path that found it.
    rows: Option<Vec<PlanStepRows>>,
    /// Officers only: the keys of the rows kept.
    exempt_rows: Option<Vec<PlanExemptRows>>,
}

/// One step of a plan.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanStep {
    source: String,
    table: String,
    /// delete | anonymize | redact | rectify | opt_out
    action: String,
    rows: u64,
    columns: Vec<PlanColumn>,
    reason: Option<String>,
}

/// How a column is changed.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanColumn {
    column: String,
    strategy: String,
}

/// Rows per action of a plan.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanTotals {
    delete: u64,
    anonymize: u64,
    redact: u64,
    update: u64,
    exempt: u64,
}

/// Rows a plan keeps, and why.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanExemption {
    table: String,
    rows: u64,
    ground: String,
    citation: String,
    basis: String,
    hold_id: Option<String>,
    /// kept | anonymized
    treatment: String,
}

/// The pinned rows of a step.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanStepRows {
    table: String,
    action: String,
    rows: Vec<PlanRow>,
}

/// A pinned row: its primary key and the path that found it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanRow {
    /// Primary-key values.
    key: Vec<serde_json::Value>,
    found_via: String,
}

/// The kept rows of an exemption.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PlanExemptRows {
    table: String,
    keys: Vec<Vec<serde_json::Value>>,
    treatment: String,
}

/// The public keys certificates are signed with (RFC 7517).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JwkSet {
    keys: Vec<JwkView>,
}

/// An Ed25519 public key (RFC 8037); `kid` is its RFC 7638 thumbprint.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JwkView {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    x: String,
    kid: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc_json() -> Value {
        document().expect("document serializes")
    }

    /// `(method, path)` of every route the router in `src/http/mod.rs` declares, read from
    /// its source: `.route("/path", get(..).post(..))`; the routes of the `api` router
    /// (the statement `let api = Router::new()...;`, nested under `/api/v1`) prefixed.
    fn declared_routes() -> Vec<(String, String)> {
        let src = include_str!("mod.rs");
        let start = src.find("pub fn router").expect("router function");
        let body = &src[start..];
        assert!(
            body.contains(".nest(\"/api/v1\", api)"),
            "api router nested"
        );
        let api_start = body.find("let api = Router::new()").expect("api router");
        let mut depth = 0i32;
        let mut api_end = body.len();
        for (j, c) in body[api_start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ';' if depth == 0 => {
                    api_end = api_start + j;
                    break;
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        let mut rest = body;
        let mut offset = 0;
        while let Some(i) = rest.find(".route(") {
            let at = offset + i;
            let after = &rest[i + ".route(".len()..];
            let q1 = after.find('"').expect("route path");
            let q2 = after[q1 + 1..].find('"').expect("route path end");
            let path = &after[q1 + 1..q1 + 1 + q2];
            // The handler chain runs to the matching close paren.
            let mut depth = 1;
            let mut end = 0;
            for (j, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let chain = &after[q1 + 1 + q2..end];
            let full = if (api_start..api_end).contains(&at) {
                format!("/api/v1{path}")
            } else {
                path.to_string()
            };
            for m in ["get", "post", "put", "patch", "delete"] {
                let mut k = 0;
                while let Some(p) = chain[k..].find(&format!("{m}(")) {
                    let idx = k + p;
                    let before = chain[..idx].chars().last();
                    if matches!(before, Some('.' | ' ' | '\n' | ',' | '(')) || idx == 0 {
                        out.push((m.to_string(), full.clone()));
                        break;
                    }
                    k = idx + 1;
                }
            }
            rest = &after[end..];
            offset = at + ".route(".len() + end;
        }
        out
    }

    #[test]
    fn every_route_is_documented() {
        let doc = doc_json();
        let routes = declared_routes();
        assert!(routes.len() >= 35, "parsed only {} routes", routes.len());
        assert!(routes.contains(&("get".into(), "/health".into())));
        assert!(routes.contains(&("post".into(), "/api/v1/requests".into())));
        let mut missing = Vec::new();
        for (method, path) in &routes {
            if doc["paths"][path][method].is_null() {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI document: {missing:?}"
        );
        // And nothing documented that the router does not serve.
        let mut extra = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if !routes.contains(&(method.clone(), path.clone())) {
                    extra.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    }

    #[test]
    fn api_operations_need_a_token_and_document_their_errors() {
        let doc = doc_json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let name = format!("{method} {path}");
                let responses = op["responses"].as_object().expect("responses");
                // Success, a redirect, or (a retired route) 410 Gone naming its replacement.
                assert!(
                    responses
                        .keys()
                        .any(|s| s.starts_with('2') || s.starts_with('3') || s == "410"),
                    "{name}: no success response"
                );
                if path.starts_with("/api/v1/") {
                    assert_eq!(
                        op["security"],
                        serde_json::json!([{ BEARER: [] }]),
                        "{name}: security"
                    );
                    for status in ["401", "429", "500", "503"] {
                        assert!(responses.contains_key(status), "{name}: no {status}");
                    }
                    assert!(
                        responses["429"]["headers"]["Retry-After"].is_object(),
                        "{name}: 429 without Retry-After"
                    );
                    let desc = op["description"].as_str().unwrap_or_default();
                    assert!(desc.contains("Role: "), "{name}: description names no role");
                    if desc.contains("Role: officer or admin") {
                        assert!(responses.contains_key("403"), "{name}: no 403");
                    }
                    checked += 1;
                } else if path != "/metrics" {
                    let security = &op["security"];
                    assert!(
                        security.is_null() || *security == serde_json::json!([{}]),
                        "{name}: needs no token"
                    );
                }
                if op.get("requestBody").is_some() {
                    for status in ["400", "413", "415", "422"] {
                        assert!(responses.contains_key(status), "{name}: no {status}");
                    }
                }
                if path.contains('{') {
                    assert!(responses.contains_key("404"), "{name}: no 404");
                }
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        if path == "/health" && status == "503" {
                            continue;
                        }
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{name}: {status} without the error body"
                        );
                    }
                }
            }
        }
        assert!(checked >= 33, "checked {checked} API operations");
    }

    #[test]
    fn operation_ids_are_unique_and_links_resolve() {
        let doc = doc_json();
        let mut ids = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().expect("paths").values() {
            for op in item.as_object().expect("path item").values() {
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
            }
        }
        let created = &doc["paths"]["/api/v1/requests"]["post"]["responses"]["201"]["links"];
        let links = created
            .as_object()
            .expect("links from POST /api/v1/requests");
        assert!(links.len() >= 15, "{} links", links.len());
        for link in links.values() {
            let target = link["operationId"].as_str().expect("link target");
            assert!(ids.contains(target), "link to unknown operation {target}");
            assert_eq!(link["parameters"]["id"], "$response.body#/id");
        }
        assert!(
            doc["paths"]["/api/v1/holds"]["post"]["responses"]["201"]["links"]["holds_release"]
                .is_object()
        );
    }

    #[test]
    fn mirrored_enums_match_the_code() {
        let doc = doc_json();
        let names = |schema: &str| -> Vec<String> {
            doc["components"]["schemas"][schema]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{schema} enum"))
                .iter()
                .map(|v| v.as_str().expect("name").to_string())
                .collect()
        };
        assert_eq!(
            names("VerificationMethod"),
            crate::request::service::VERIFICATION_METHODS
        );
        assert_eq!(names("HoldGround"), crate::policy::ExemptionGround::NAMES);
        assert_eq!(names("RequestKind"), crate::request::RequestKind::names());
        assert_eq!(names("RequestState"), crate::request::RequestState::names());
    }

    #[test]
    fn the_served_document_names_the_data_maps_identities_and_rules() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let policy = crate::policy::load_dir(&dir).expect("demo policies");
        let mut doc = doc_json();
        with_policy(&mut doc, &policy);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["IdentityInput"]["properties"]["kind"]["enum"],
            serde_json::json!(["customer_no", "email", "phone"])
        );
        let map = &schemas["IdentitiesInput"]["oneOf"][1];
        assert_eq!(map["properties"]["email"]["format"], "email");
        assert_eq!(
            map["properties"]["customer_no"]["pattern"],
            "^CUST-[0-9]{1,7}$"
        );
        let rules = schemas["StartRun"]["properties"]["rule"]["enum"]
            .as_array()
            .expect("rule names");
        assert!(
            rules.contains(&serde_json::json!("web_sessions")),
            "{rules:?}"
        );
        // A prefix with regex metacharacters is matched literally.
        let odd = identity_value_schema(
            "x",
            &Normalizer::Reference {
                prefix: "A.B+(".into(),
                digits: None,
            },
        );
        assert_eq!(odd["pattern"], "^A\\.B\\+\\([0-9]+$");
    }

    #[test]
    fn schemas_resolve() {
        let doc = doc_json();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("#/components/schemas/") {
            let tail = &rest[i + "#/components/schemas/".len()..];
            let name: String = tail.chars().take_while(|c| *c != '"').collect();
            assert!(schemas.contains_key(&name), "unresolved $ref {name}");
            rest = tail;
        }
    }
}
