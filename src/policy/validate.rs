//! Turns parsed policy files into a validated [`DataMap`], collecting every problem with
//! its file, line and key instead of stopping at the first.

use super::diagnostic::{Diagnostic, Origin, suggest};
use super::identity::Normalizer;
use super::model::*;
use super::spec::{self, DataMapFile};
use crate::source::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use toml::Spanned;

/// A parsed file with its name and text (for line numbers).
pub struct ParsedFile {
    pub file: Arc<str>,
    pub src: String,
    pub spec: DataMapFile,
}

/// Plain SQL identifiers only: letters, digits and underscores, not starting with a digit,
/// at most 63 characters. Anything else (quotes, spaces, semicolons) is rejected before SQL
/// is ever built.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

pub const DEFAULT_RIGHTS_NOTICE: &str = "You have the right to request access to, rectification \
or erasure of your personal data, restriction of or objection to its processing, and data \
portability (GDPR Art. 15-22). Where processing rests on consent you may withdraw it at any time. \
You may lodge a complaint with a supervisory authority (GDPR Art. 77). California residents \
have the rights to know, delete, correct and opt out of sale or sharing, and not to be \
discriminated against for exercising them (CCPA/CPRA 1798.100-1798.125).";

pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Arc<str>,
    pub(crate) src: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn at<T>(&self, s: &Spanned<T>) -> Origin {
        Origin::new(self.file, self.src, s.span().start)
    }
}

/// Validates and merges data-map files. Returns the map and any warnings, or every error.
pub fn validate(files: &[ParsedFile]) -> Result<(DataMap, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let map = build(files, &mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    match map {
        Some(m) => Ok((m, diags)),
        None => Err(diags),
    }
}

/// A named item from some file, with the context to report on it.
struct Named<'a, T> {
    ctx: Ctx<'a>,
    item: &'a Spanned<T>,
}

/// Merges the maps of one section across files; a name defined twice is an error naming
/// both places.
fn merge<'a, T>(
    files: &'a [ParsedFile],
    section: &str,
    get: impl Fn(&'a DataMapFile) -> &'a BTreeMap<String, Spanned<T>>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<&'a str, Named<'a, T>> {
    let mut out: BTreeMap<&str, Named<T>> = BTreeMap::new();
    for f in files {
        for (name, item) in get(&f.spec) {
            let ctx = Ctx {
                file: &f.file,
                src: &f.src,
            };
            if let Some(prev) = out.get(name.as_str()) {
                diags.push(Diagnostic::error(
                    &ctx.at(item),
                    format!("{section}.{name}"),
                    format!("defined twice (first at {})", prev.ctx.at(prev.item)),
                ));
                continue;
            }
            if !is_identifier(name) {
                diags.push(Diagnostic::error(
                    &ctx.at(item),
                    format!("{section}.{name}"),
                    "names must be plain identifiers (letters, digits, underscore)",
                ));
            }
            out.insert(name.as_str(), Named { ctx, item });
        }
    }
    out
}

fn build(files: &[ParsedFile], diags: &mut Vec<Diagnostic>) -> Option<DataMap> {
    let Some(first) = files.first() else {
        diags.push(Diagnostic::error(
            &Origin::builtin(),
            "",
            "no data-map files found (expected policies/*.toml)",
        ));
        return None;
    };
    let first_origin = Origin {
        file: first.file.clone(),
        line: 1,
    };

    for f in files {
        if let Some(v) = &f.spec.version
            && *v.get_ref() != 1
        {
            let ctx = Ctx {
                file: &f.file,
                src: &f.src,
            };
            diags.push(Diagnostic::error(
                &ctx.at(v),
                "version",
                format!("unsupported version {} (only 1 exists)", v.get_ref()),
            ));
        }
    }

    // Controller: exactly one.
    let mut controller: Option<Controller> = None;
    let mut controller_at: Option<Origin> = None;
    for f in files {
        if let Some(c) = &f.spec.controller {
            let ctx = Ctx {
                file: &f.file,
                src: &f.src,
            };
            if let Some(prev) = &controller_at {
                diags.push(Diagnostic::error(
                    &ctx.at(c),
                    "controller",
                    format!("defined twice (first at {prev})"),
                ));
                continue;
            }
            let c2 = c.get_ref();
            controller = Some(Controller {
                name: c2.name.clone(),
                contact: c2.contact.clone(),
                dpo: c2.dpo.clone(),
                supervisory_authority: c2.supervisory_authority.clone(),
                rights_notice: c2
                    .rights_notice
                    .clone()
                    .unwrap_or_else(|| DEFAULT_RIGHTS_NOTICE.to_string()),
            });
            controller_at = Some(ctx.at(c));
        }
    }
    if controller.is_none() {
        diags.push(Diagnostic::error(
            &first_origin,
            "controller",
            "missing [controller] section (name and contact of the controller)",
        ));
    }

    let categories_in = merge(files, "categories", |f| &f.categories, diags);
    let sources_in = merge(files, "sources", |f| &f.sources, diags);
    let identities_in = merge(files, "identities", |f| &f.identities, diags);
    let purposes_in = merge(files, "purposes", |f| &f.purposes, diags);
    let recipients_in = merge(files, "recipients", |f| &f.recipients, diags);
    let tables_in = merge(files, "tables", |f| &f.tables, diags);

    let categories: BTreeMap<String, Category> = categories_in
        .iter()
        .map(|(name, n)| {
            let c = n.item.get_ref();
            (
                name.to_string(),
                Category {
                    name: name.to_string(),
                    label: c.label.clone(),
                    description: c.description.clone(),
                    sensitive: c.sensitive,
                },
            )
        })
        .collect();

    let mut sources = BTreeMap::new();
    for (name, n) in &sources_in {
        let s = n.item.get_ref();
        let url = s.url.get_ref();
        if let Err(e) = crate::source::SourceUrl::check_syntax(url) {
            diags.push(Diagnostic::error(
                &n.ctx.at(&s.url),
                format!("sources.{name}.url"),
                e,
            ));
        }
        sources.insert(
            name.to_string(),
            SourceDef {
                name: name.to_string(),
                url: url.clone(),
                description: s.description.clone(),
                at: n.ctx.at(n.item),
            },
        );
    }

    let mut identity_kinds = BTreeMap::new();
    for (name, n) in &identities_in {
        if let Some(normalizer) = identity_normalizer(name, n, diags) {
            identity_kinds.insert(
                name.to_string(),
                IdentityKind {
                    name: name.to_string(),
                    label: n
                        .item
                        .get_ref()
                        .label
                        .clone()
                        .unwrap_or_else(|| name.replace('_', " ")),
                    normalizer,
                },
            );
        }
    }

    let mut purposes = BTreeMap::new();
    for (name, n) in &purposes_in {
        let p = n.item.get_ref();
        match LegalBasis::parse(p.legal_basis.get_ref()) {
            Some(b) => {
                purposes.insert(
                    name.to_string(),
                    Purpose {
                        name: name.to_string(),
                        description: p.description.clone(),
                        legal_basis: b,
                    },
                );
            }
            None => diags.push(unknown_value(
                &n.ctx.at(&p.legal_basis),
                format!("purposes.{name}.legal_basis"),
                "legal basis",
                p.legal_basis.get_ref(),
                &LegalBasis::NAMES,
            )),
        }
    }

    let mut recipients = BTreeMap::new();
    for (name, n) in &recipients_in {
        let r = n.item.get_ref();
        let webhook = r
            .webhook
            .as_ref()
            .and_then(|w| build_webhook(&n.ctx, name, w, diags));
        match RecipientKind::parse(r.kind.get_ref()) {
            Some(kind) => {
                recipients.insert(
                    name.to_string(),
                    Recipient {
                        name: name.to_string(),
                        display_name: r.name.clone(),
                        kind,
                        country: r.country.clone(),
                        purpose: r.purpose.clone(),
                        safeguards: r.safeguards.clone(),
                        webhook,
                    },
                );
            }
            None => diags.push(unknown_value(
                &n.ctx.at(&r.kind),
                format!("recipients.{name}.kind"),
                "recipient kind",
                r.kind.get_ref(),
                &RecipientKind::NAMES,
            )),
        }
    }

    let table_names: Vec<&str> = tables_in.keys().copied().collect();
    let table_index: HashMap<String, usize> = table_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), i))
        .collect();

    let names = Names {
        categories: &categories,
        sources: &sources,
        identity_kinds: &identity_kinds,
        purposes: &purposes,
        recipients: &recipients,
        tables: &table_names,
    };

    let mut tables = Vec::new();
    let mut links = Vec::new();
    for (ti, (name, n)) in tables_in.iter().enumerate() {
        let (table, table_links) = build_table(ti, name, n, &names, &table_index, diags);
        tables.push(table);
        links.extend(table_links);
    }

    // Cross-table checks once every table is known.
    for l in &links {
        let (from, target) = (&tables[l.from], &tables[l.target]);
        if from.source != target.source {
            diags.push(Diagnostic::error(
                &l.at,
                format!("tables.{}.links", target.name),
                format!(
                    "links across sources are not possible: {} is in source \"{}\", {} in \"{}\" (use an identity column instead)",
                    from.name, from.source, target.name, target.source
                ),
            ));
        }
    }
    check_reachability(&tables, &links, diags);
    for (name, r) in &recipients {
        if let Some(w) = &r.webhook
            && !tables
                .iter()
                .any(|t| t.recipients.iter().any(|x| x == name))
        {
            diags.push(Diagnostic::warning(
                &w.at,
                format!("recipients.{name}.webhook"),
                "no table lists this recipient, so it is never notified",
            ));
        }
    }

    let controller = controller?;
    Some(DataMap {
        controller,
        categories,
        sources,
        identity_kinds,
        purposes,
        recipients,
        tables,
        links,
        table_index,
    })
}

struct Names<'a> {
    categories: &'a BTreeMap<String, Category>,
    sources: &'a BTreeMap<String, SourceDef>,
    identity_kinds: &'a BTreeMap<String, IdentityKind>,
    purposes: &'a BTreeMap<String, Purpose>,
    recipients: &'a BTreeMap<String, Recipient>,
    tables: &'a [&'a str],
}

fn unknown_value(at: &Origin, key: String, what: &str, got: &str, allowed: &[&str]) -> Diagnostic {
    Diagnostic::error(
        at,
        key,
        format!(
            "unknown {what} \"{got}\"{}; expected one of: {}",
            suggest(got, allowed.iter().copied()),
            allowed.join(", ")
        ),
    )
}

fn unknown_ref<'a>(
    at: &Origin,
    key: String,
    what: &str,
    got: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Diagnostic {
    Diagnostic::error(
        at,
        key,
        format!("unknown {what} \"{got}\"{}", suggest(got, known)),
    )
}

fn check_ident(at: &Origin, key: String, name: &str, diags: &mut Vec<Diagnostic>) {
    if !is_identifier(name) {
        diags.push(Diagnostic::error(
            at,
            key,
            format!(
                "\"{}\" is not a plain SQL identifier (letters, digits, underscore; at most 63 characters)",
                name.escape_debug()
            ),
        ));
    }
}

fn identity_normalizer(
    name: &str,
    n: &Named<'_, spec::IdentitySpec>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Normalizer> {
    let s = n.item.get_ref();
    let key = format!("identities.{name}");
    let normalizer = s.normalizer.get_ref().as_str();
    let misplaced = |field: &str, at: Origin, diags: &mut Vec<Diagnostic>| {
        diags.push(Diagnostic::error(
            &at,
            format!("{key}.{field}"),
            format!("not a parameter of the {normalizer} normalizer"),
        ));
    };
    if normalizer != "phone"
        && let Some(cc) = &s.default_country_code
    {
        misplaced("default_country_code", n.ctx.at(cc), diags);
    }
    if normalizer != "reference" {
        if let Some(p) = &s.prefix {
            misplaced("prefix", n.ctx.at(p), diags);
        }
        if let Some(d) = &s.digits {
            misplaced("digits", n.ctx.at(d), diags);
        }
    }
    match normalizer {
        "email" => Some(Normalizer::Email),
        "text" => Some(Normalizer::Text),
        "phone" => {
            let cc = s.default_country_code.as_ref().map(|cc| {
                let v = cc.get_ref().trim_start_matches('+').to_string();
                if v.is_empty()
                    || v.len() > 3
                    || !v.chars().all(|c| c.is_ascii_digit())
                    || v.starts_with('0')
                {
                    diags.push(Diagnostic::error(
                        &n.ctx.at(cc),
                        format!("{key}.default_country_code"),
                        "a country calling code is 1 to 3 digits, e.g. \"49\"",
                    ));
                }
                v
            });
            Some(Normalizer::Phone { country_code: cc })
        }
        "reference" => {
            let prefix = s
                .prefix
                .as_ref()
                .map(|p| p.get_ref().clone())
                .unwrap_or_default();
            if prefix.chars().any(char::is_control) {
                diags.push(Diagnostic::error(
                    &n.ctx.at(n.item),
                    format!("{key}.prefix"),
                    "contains control characters",
                ));
            }
            let digits = s.digits.as_ref().map(|d| {
                let v = *d.get_ref();
                if !(1..=20).contains(&v) {
                    diags.push(Diagnostic::error(
                        &n.ctx.at(d),
                        format!("{key}.digits"),
                        "must be between 1 and 20",
                    ));
                }
                v
            });
            Some(Normalizer::Reference { prefix, digits })
        }
        other => {
            diags.push(unknown_value(
                &n.ctx.at(&s.normalizer),
                format!("{key}.normalizer"),
                "normalizer",
                other,
                &Normalizer::NAMES,
            ));
            None
        }
    }
}

/// Checks a webhook URL: absolute `https://host[:port][/path][?query]`, or plain `http://`
/// to a loopback host (127.0.0.0/8, ::1, localhost) for tests and local relays. No
/// credentials in the URL (they would be a secret in the data map) and no fragment. The
/// error is a sentence for a diagnostic; it never repeats the URL.
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("not an absolute URL; expected https://host/path".into());
    };
    let plain_http = if scheme.eq_ignore_ascii_case("https") {
        false
    } else if scheme.eq_ignore_ascii_case("http") {
        true
    } else {
        return Err(format!(
            "unsupported scheme \"{}\"; a webhook URL must start with https://",
            scheme.escape_debug()
        ));
    };
    if rest.contains('#') {
        return Err("a fragment (#...) is never sent to the server; remove it".into());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(
            "credentials in the URL are not allowed (they would be a secret in the data map); \
             the receiver authenticates lethe by the signature made with `secret`"
                .into(),
        );
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err("unterminated [IPv6] host".into());
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the [bracketed] host is not an IPv6 address".into());
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err("unexpected characters after the [IPv6] host".into()),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(
            "the host may only contain letters, digits, '.', '-' and '_' (write \
             internationalized names in their xn-- form)"
                .into(),
        );
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("the port must be a number from 1 to 65535".into());
    }
    if plain_http && !is_loopback_host(host) {
        return Err(
            "https is required: plain http:// is only allowed to a loopback host \
             (127.0.0.1, ::1, localhost), because notices must not travel unencrypted"
                .into(),
        );
    }
    Ok(())
}

/// `localhost` or a loopback IP address (127.0.0.0/8, ::1).
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The variable name of an `env:VARIABLE` reference, if `s` is one with a plain name
/// (letters, digits, underscore; not starting with a digit).
pub fn env_reference(s: &str) -> Option<&str> {
    let var = s.strip_prefix("env:")?;
    let mut chars = var.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && var.len() <= 255;
    plain.then_some(var)
}

/// Validates a recipient's `webhook = { ... }`. Secrets are never repeated in diagnostics.
fn build_webhook(
    ctx: &Ctx<'_>,
    recipient: &str,
    w: &Spanned<spec::WebhookSpec>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Webhook> {
    let key = format!("recipients.{recipient}.webhook");
    let s = w.get_ref();
    let errors_before = diags.iter().filter(|d| d.is_error()).count();

    if let Err(e) = check_webhook_url(s.url.get_ref()) {
        diags.push(Diagnostic::error(&ctx.at(&s.url), format!("{key}.url"), e));
    }

    let secret = s.secret.get_ref();
    let secret_env = match env_reference(secret) {
        Some(var) => var.to_string(),
        None => {
            let message = if secret.starts_with("env:") {
                "\"env:\" must be followed by an environment variable name (letters, digits, \
                 underscore), e.g. \"env:SENDFAST_WEBHOOK_SECRET\""
            } else {
                "inline secrets are not allowed in the data map (the files are versioned, shared \
                 and digested): put the secret in an environment variable and write \
                 secret = \"env:VARIABLE\""
            };
            diags.push(Diagnostic::error(
                &ctx.at(&s.secret),
                format!("{key}.secret"),
                message,
            ));
            String::new()
        }
    };

    let events = match &s.events {
        None => NoticeEvent::ALL.to_vec(),
        Some(list) => {
            let mut events = Vec::new();
            for e in list.get_ref() {
                match NoticeEvent::parse(e.get_ref()) {
                    Some(ev) if events.contains(&ev) => diags.push(Diagnostic::error(
                        &ctx.at(e),
                        format!("{key}.events"),
                        format!("\"{ev}\" is listed twice"),
                    )),
                    Some(ev) => events.push(ev),
                    None => diags.push(unknown_value(
                        &ctx.at(e),
                        format!("{key}.events"),
                        "notice event",
                        e.get_ref(),
                        &NoticeEvent::NAMES,
                    )),
                }
            }
            if list.get_ref().is_empty() {
                diags.push(Diagnostic::error(
                    &ctx.at(list),
                    format!("{key}.events"),
                    "name at least one event, or leave `events` out for all three",
                ));
            }
            events
        }
    };

    let timeout_secs = match &s.timeout_secs {
        None => Webhook::DEFAULT_TIMEOUT_SECS,
        Some(t) => match u64::try_from(*t.get_ref()) {
            Ok(v) if (1..=Webhook::MAX_TIMEOUT_SECS).contains(&v) => v,
            _ => {
                diags.push(Diagnostic::error(
                    &ctx.at(t),
                    format!("{key}.timeout_secs"),
                    format!(
                        "must be between 1 and {} seconds",
                        Webhook::MAX_TIMEOUT_SECS
                    ),
                ));
                Webhook::DEFAULT_TIMEOUT_SECS
            }
        },
    };

    let max_attempts = match &s.max_attempts {
        None => Webhook::DEFAULT_MAX_ATTEMPTS,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(v) if (1..=Webhook::MAX_MAX_ATTEMPTS).contains(&v) => v,
            _ => {
                diags.push(Diagnostic::error(
                    &ctx.at(m),
                    format!("{key}.max_attempts"),
                    format!("must be between 1 and {}", Webhook::MAX_MAX_ATTEMPTS),
                ));
                Webhook::DEFAULT_MAX_ATTEMPTS
            }
        },
    };

    let errors_after = diags.iter().filter(|d| d.is_error()).count();
    (errors_after == errors_before).then(|| Webhook {
        url: s.url.get_ref().clone(),
        secret_env,
        events,
        timeout: std::time::Duration::from_secs(timeout_secs),
        max_attempts,
        at: ctx.at(w),
    })
}

/// Converts a TOML literal to a SQL value (strings, integers, floats, booleans; dates as
/// ISO strings).
pub fn literal(v: &toml::Value) -> Option<Value> {
    Some(match v {
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Text(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => return None,
    })
}

pub(crate) fn build_condition(
    ctx: &Ctx<'_>,
    key: &str,
    c: &Spanned<spec::ConditionSpec>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Condition> {
    let cs = c.get_ref();
    let at = ctx.at(c);
    check_ident(
        &ctx.at(&cs.column),
        format!("{key}.column"),
        cs.column.get_ref(),
        diags,
    );
    let Some(op) = Op::parse(cs.op.get_ref()) else {
        diags.push(unknown_value(
            &ctx.at(&cs.op),
            format!("{key}.op"),
            "operator",
            cs.op.get_ref(),
            &Op::NAMES,
        ));
        return None;
    };
    let values = match (&cs.value, op.takes_value()) {
        (None, false) => Vec::new(),
        (Some(v), false) => {
            diags.push(Diagnostic::error(
                &ctx.at(v),
                format!("{key}.value"),
                format!("operator {} takes no value", cs.op.get_ref()),
            ));
            return None;
        }
        (None, true) => {
            diags.push(Diagnostic::error(
                &at,
                format!("{key}.value"),
                format!("operator {} needs a value", cs.op.get_ref()),
            ));
            return None;
        }
        (Some(v), true) => {
            let items: Vec<&toml::Value> = match (v.get_ref(), op.takes_list()) {
                (toml::Value::Array(a), true) if !a.is_empty() => a.iter().collect(),
                (_, true) => {
                    diags.push(Diagnostic::error(
                        &ctx.at(v),
                        format!("{key}.value"),
                        format!("operator {} needs a non-empty list", cs.op.get_ref()),
                    ));
                    return None;
                }
                (other, false) => vec![other],
            };
            let mut out = Vec::new();
            for item in items {
                match literal(item) {
                    Some(l) => out.push(l),
                    None => {
                        diags.push(Diagnostic::error(
                            &ctx.at(v),
                            format!("{key}.value"),
                            "must be a string, number, boolean or date",
                        ));
                        return None;
                    }
                }
            }
            out
        }
    };
    Some(Condition {
        column: cs.column.get_ref().clone(),
        op,
        values,
        at,
    })
}

fn build_table(
    ti: usize,
    name: &str,
    n: &Named<'_, spec::TableSpec>,
    names: &Names<'_>,
    table_index: &HashMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
) -> (Table, Vec<Link>) {
    let ctx = &n.ctx;
    let t = n.item.get_ref();
    let key = format!("tables.{name}");
    let at = ctx.at(n.item);

    if !names.sources.contains_key(t.source.get_ref()) {
        diags.push(unknown_ref(
            &ctx.at(&t.source),
            format!("{key}.source"),
            "source",
            t.source.get_ref(),
            names.sources.keys().map(String::as_str),
        ));
    }

    let pk: Vec<String> = t
        .primary_key
        .get_ref()
        .iter()
        .map(|c| {
            check_ident(&ctx.at(c), format!("{key}.primary_key"), c.get_ref(), diags);
            c.get_ref().clone()
        })
        .collect();
    if pk.is_empty() {
        diags.push(Diagnostic::error(
            &ctx.at(&t.primary_key),
            format!("{key}.primary_key"),
            "needs at least one column",
        ));
    }

    for p in &t.purposes {
        if !names.purposes.contains_key(p.get_ref()) {
            diags.push(unknown_ref(
                &ctx.at(p),
                format!("{key}.purposes"),
                "purpose",
                p.get_ref(),
                names.purposes.keys().map(String::as_str),
            ));
        }
    }
    if t.purposes.is_empty() {
        diags.push(Diagnostic::error(
            &at,
            format!("{key}.purposes"),
            "name at least one purpose (GDPR Art. 15(1)(a) requires it in access exports)",
        ));
    }
    let legal_basis = match &t.legal_basis {
        Some(b) => LegalBasis::parse(b.get_ref()).unwrap_or_else(|| {
            diags.push(unknown_value(
                &ctx.at(b),
                format!("{key}.legal_basis"),
                "legal basis",
                b.get_ref(),
                &LegalBasis::NAMES,
            ));
            LegalBasis::Contract
        }),
        None => t
            .purposes
            .first()
            .and_then(|p| names.purposes.get(p.get_ref()))
            .map_or(LegalBasis::Contract, |p| p.legal_basis),
    };
    for r in &t.recipients {
        if !names.recipients.contains_key(r.get_ref()) {
            diags.push(unknown_ref(
                &ctx.at(r),
                format!("{key}.recipients"),
                "recipient",
                r.get_ref(),
                names.recipients.keys().map(String::as_str),
            ));
        }
    }
    if t.retention.get_ref().trim().is_empty() {
        diags.push(Diagnostic::error(
            &ctx.at(&t.retention),
            format!("{key}.retention"),
            "describe the retention period or its criteria (GDPR Art. 15(1)(d))",
        ));
    }
    let on_erasure = RowAction::parse(t.on_erasure.get_ref()).unwrap_or_else(|| {
        diags.push(unknown_value(
            &ctx.at(&t.on_erasure),
            format!("{key}.on_erasure"),
            "row action",
            t.on_erasure.get_ref(),
            &RowAction::NAMES,
        ));
        RowAction::Delete
    });
    let exemption = t.exemption.as_ref().and_then(|e| {
        let es = e.get_ref();
        match ExemptionGround::parse(es.ground.get_ref()) {
            Some(ground) => Some(Exemption {
                ground,
                basis: es.basis.clone(),
            }),
            None => {
                diags.push(unknown_value(
                    &ctx.at(&es.ground),
                    format!("{key}.exemption.ground"),
                    "exemption ground",
                    es.ground.get_ref(),
                    &ExemptionGround::NAMES,
                ));
                None
            }
        }
    });
    if on_erasure == RowAction::Keep && t.exemption.is_none() {
        diags.push(Diagnostic::error(
            &ctx.at(&t.on_erasure),
            format!("{key}.on_erasure"),
            "keeping rows on erasure needs an [exemption] with the legal ground",
        ));
    }
    for b in &t.erase_before {
        if !table_index.contains_key(b.get_ref()) {
            diags.push(unknown_ref(
                &ctx.at(b),
                format!("{key}.erase_before"),
                "table",
                b.get_ref(),
                names.tables.iter().copied(),
            ));
        }
    }

    // Columns.
    let mut columns = Vec::new();
    for (cname, cs) in &t.columns {
        let ckey = format!("{key}.columns.{cname}");
        let cat = ctx.at(cs);
        check_ident(&cat, ckey.clone(), cname, diags);
        let c = cs.get_ref();
        if !names.categories.contains_key(c.category.get_ref()) {
            diags.push(unknown_ref(
                &ctx.at(&c.category),
                format!("{ckey}.category"),
                "category",
                c.category.get_ref(),
                names.categories.keys().map(String::as_str),
            ));
        }
        let strategy = c
            .erase
            .as_ref()
            .and_then(|e| build_strategy(ctx, &ckey, e, c, diags));
        if c.erase.is_none() {
            if let Some(v) = &c.value {
                diags.push(Diagnostic::error(
                    &ctx.at(v),
                    format!("{ckey}.value"),
                    "only the constant strategy takes a value",
                ));
            }
            if let Some(v) = &c.to {
                diags.push(Diagnostic::error(
                    &ctx.at(v),
                    format!("{ckey}.to"),
                    "only the generalize strategy takes `to`",
                ));
            }
        }
        if on_erasure == RowAction::Anonymize && strategy.is_none() && c.erase.is_none() {
            diags.push(Diagnostic::error(
                &cat,
                format!("{ckey}.erase"),
                "rows of this table are anonymized on erasure: give every column an erasure strategy (or `keep`)",
            ));
        }
        let opt_out = c.opt_out.as_ref().and_then(|v| {
            let l = literal(v.get_ref());
            if l.is_none() {
                diags.push(Diagnostic::error(
                    &ctx.at(v),
                    format!("{ckey}.opt_out"),
                    "must be a string, number or boolean",
                ));
            }
            l
        });
        columns.push(Column {
            name: cname.clone(),
            category: c.category.get_ref().clone(),
            description: c.description.clone(),
            strategy,
            provided: c.provided,
            scan: c.scan,
            opt_out,
            at: cat,
        });
    }

    // Identity columns.
    let mut identities = Vec::new();
    for (i, ic) in t.identities.iter().enumerate() {
        let ikey = format!("{key}.identities[{i}]");
        let s = ic.get_ref();
        check_ident(
            &ctx.at(&s.column),
            format!("{ikey}.column"),
            s.column.get_ref(),
            diags,
        );
        if !names.identity_kinds.contains_key(s.kind.get_ref()) {
            diags.push(unknown_ref(
                &ctx.at(&s.kind),
                format!("{ikey}.kind"),
                "identity kind",
                s.kind.get_ref(),
                names.identity_kinds.keys().map(String::as_str),
            ));
        }
        if !t.columns.contains_key(s.column.get_ref()) {
            diags.push(Diagnostic::error(
                &ctx.at(&s.column),
                format!("{ikey}.column"),
                format!(
                    "identity column \"{}\" must also be described under [{key}.columns] with its category",
                    s.column.get_ref()
                ),
            ));
        }
        let compare = parse_compare(ctx, &ikey, s.compare.as_ref(), diags);
        identities.push(IdentityColumn {
            kind: s.kind.get_ref().clone(),
            column: s.column.get_ref().clone(),
            discover: s.discover,
            compare,
            at: ctx.at(ic),
        });
    }

    // Links into this table.
    let mut links = Vec::new();
    for (i, ls) in t.links.iter().enumerate() {
        let lkey = format!("{key}.links[{i}]");
        let l = ls.get_ref();
        let lat = ctx.at(ls);
        let from = match table_index.get(l.from.get_ref()) {
            Some(&f) => Some(f),
            None => {
                diags.push(unknown_ref(
                    &ctx.at(&l.from),
                    format!("{lkey}.from"),
                    "table",
                    l.from.get_ref(),
                    names.tables.iter().copied(),
                ));
                None
            }
        };
        let mut on = Vec::new();
        for (this_col, from_col) in l.on.get_ref() {
            check_ident(&ctx.at(&l.on), format!("{lkey}.on"), this_col, diags);
            check_ident(
                &ctx.at(from_col),
                format!("{lkey}.on.{this_col}"),
                from_col.get_ref(),
                diags,
            );
            on.push((this_col.clone(), from_col.get_ref().clone()));
        }
        if on.is_empty() {
            diags.push(Diagnostic::error(
                &ctx.at(&l.on),
                format!("{lkey}.on"),
                "needs at least one `column = \"from_column\"` pair",
            ));
        }
        let polymorphic = match (&l.type_column, &l.type_value) {
            (Some(c), Some(v)) => {
                check_ident(
                    &ctx.at(c),
                    format!("{lkey}.type_column"),
                    c.get_ref(),
                    diags,
                );
                Some((c.get_ref().clone(), v.get_ref().clone()))
            }
            (None, None) => None,
            (Some(c), None) => {
                diags.push(Diagnostic::error(
                    &ctx.at(c),
                    format!("{lkey}.type_value"),
                    "a polymorphic link needs both type_column and type_value",
                ));
                None
            }
            (None, Some(v)) => {
                diags.push(Diagnostic::error(
                    &ctx.at(v),
                    format!("{lkey}.type_column"),
                    "a polymorphic link needs both type_column and type_value",
                ));
                None
            }
        };
        let conditions = l
            .conditions
            .iter()
            .enumerate()
            .filter_map(|(j, c)| build_condition(ctx, &format!("{lkey}.where[{j}]"), c, diags))
            .collect();
        let compare = parse_compare(ctx, &lkey, l.compare.as_ref(), diags);
        if let Some(from) = from {
            links.push(Link {
                target: ti,
                from,
                on,
                polymorphic,
                conditions,
                compare,
                label: l.label.clone(),
                at: lat,
            });
        }
    }

    let mut ignored = Vec::new();
    for (col, reason) in &t.ignore {
        check_ident(&ctx.at(reason), format!("{key}.ignore.{col}"), col, diags);
        if t.columns.contains_key(col) {
            diags.push(Diagnostic::error(
                &ctx.at(reason),
                format!("{key}.ignore.{col}"),
                "a column cannot be both described and ignored",
            ));
        }
        ignored.push((col.clone(), reason.get_ref().clone()));
    }

    let table = Table {
        name: name.to_string(),
        source: t.source.get_ref().clone(),
        label: t.label.clone().unwrap_or_else(|| name.replace('_', " ")),
        description: t.description.clone(),
        primary_key: pk,
        purposes: t.purposes.iter().map(|p| p.get_ref().clone()).collect(),
        legal_basis,
        recipients: t.recipients.iter().map(|r| r.get_ref().clone()).collect(),
        retention: t.retention.get_ref().clone(),
        origin: t.origin.clone(),
        on_erasure,
        exemption,
        erase_before: t.erase_before.iter().map(|b| b.get_ref().clone()).collect(),
        identities,
        columns,
        ignored,
        at,
    };
    (table, links)
}

fn parse_compare(
    ctx: &Ctx<'_>,
    key: &str,
    c: Option<&Spanned<String>>,
    diags: &mut Vec<Diagnostic>,
) -> Compare {
    match c {
        None => Compare::Exact,
        Some(c) => Compare::parse(c.get_ref()).unwrap_or_else(|| {
            diags.push(unknown_value(
                &ctx.at(c),
                format!("{key}.compare"),
                "comparison",
                c.get_ref(),
                &["exact", "lower"],
            ));
            Compare::Exact
        }),
    }
}

fn build_strategy(
    ctx: &Ctx<'_>,
    key: &str,
    e: &Spanned<String>,
    c: &spec::ColumnSpec,
    diags: &mut Vec<Diagnostic>,
) -> Option<Strategy> {
    let name = e.get_ref().as_str();
    if name != "constant"
        && let Some(v) = &c.value
    {
        diags.push(Diagnostic::error(
            &ctx.at(v),
            format!("{key}.value"),
            "only the constant strategy takes a value",
        ));
    }
    if name != "generalize"
        && let Some(v) = &c.to
    {
        diags.push(Diagnostic::error(
            &ctx.at(v),
            format!("{key}.to"),
            "only the generalize strategy takes `to`",
        ));
    }
    Some(match name {
        "null" => Strategy::Null,
        "mask" => Strategy::Mask,
        "hmac" => Strategy::Hmac,
        "encrypt" => Strategy::Encrypt,
        "redact" => Strategy::Redact,
        "keep" => Strategy::Keep,
        "constant" => {
            let v = match &c.value {
                None => Value::Text("[redacted]".into()),
                Some(v) => match literal(v.get_ref()) {
                    Some(l) => l,
                    None => {
                        diags.push(Diagnostic::error(
                            &ctx.at(v),
                            format!("{key}.value"),
                            "must be a string, number or boolean",
                        ));
                        return None;
                    }
                },
            };
            Strategy::Constant(v)
        }
        "generalize" => {
            let Some(to) = &c.to else {
                diags.push(Diagnostic::error(
                    &ctx.at(e),
                    format!("{key}.to"),
                    "generalize needs `to` = year | month | range:N | prefix:N",
                ));
                return None;
            };
            match Generalization::parse(to.get_ref()) {
                Some(g) => Strategy::Generalize(g),
                None => {
                    diags.push(Diagnostic::error(
                        &ctx.at(to),
                        format!("{key}.to"),
                        format!(
                            "\"{}\" is not a generalization; expected year, month, range:N or prefix:N (N > 0)",
                            to.get_ref()
                        ),
                    ));
                    return None;
                }
            }
        }
        other => {
            diags.push(unknown_value(
                &ctx.at(e),
                format!("{key}.erase"),
                "erasure strategy",
                other,
                &Strategy::NAMES,
            ));
            return None;
        }
    })
}

/// Every table must be reachable from an identity column by following links; otherwise no
/// request would ever find its rows.
fn check_reachability(tables: &[Table], links: &[Link], diags: &mut Vec<Diagnostic>) {
    let mut reached = vec![false; tables.len()];
    let mut queue: VecDeque<usize> = VecDeque::new();
    for (i, t) in tables.iter().enumerate() {
        if !t.identities.is_empty() {
            reached[i] = true;
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        for l in links.iter().filter(|l| l.from == i) {
            if !reached[l.target] {
                reached[l.target] = true;
                queue.push_back(l.target);
            }
        }
    }
    for (i, t) in tables.iter().enumerate() {
        if !reached[i] {
            diags.push(Diagnostic::error(
                &t.at,
                format!("tables.{}", t.name),
                "not reachable from any identity: add an identity column or a link from a table that is",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_reject_injection() {
        assert!(is_identifier("contacts"));
        assert!(is_identifier("_x1"));
        for bad in [
            "",
            "1a",
            "a b",
            "a;drop table x",
            "a\"b",
            "a-b",
            "ä",
            &"a".repeat(64),
        ] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }

    const WEBHOOK_BASE: &str = r#"
[controller]
name = "Test Ltd"
contact = "privacy@test.example"

[sources.crm]
url = "sqlite://unused.db"

[identities.email]
normalizer = "email"

[categories.contact]
label = "Contact"

[purposes.crm]
description = "CRM"
legal_basis = "contract"

[tables.people]
source = "crm"
primary_key = ["id"]
purposes = ["crm"]
recipients = ["mailer"]
retention = "1 year"
on_erasure = "delete"
identities = [{ kind = "email", column = "email" }]
[tables.people.columns]
email = { category = "contact" }

[recipients.mailer]
name = "SendFast Ltd"
kind = "processor"
"#;

    fn load_webhook(extra: &str) -> Result<crate::policy::Policy, Vec<Diagnostic>> {
        crate::policy::load_texts(&[(
            "policies/test.toml".to_string(),
            format!("{WEBHOOK_BASE}{extra}"),
        )])
        .map_err(|e| e.0)
    }

    fn webhook_errors(extra: &str) -> Vec<Diagnostic> {
        match load_webhook(extra) {
            Ok(p) => panic!("expected errors, got a valid map ({:?})", p.warnings),
            Err(d) => d.into_iter().filter(Diagnostic::is_error).collect(),
        }
    }

    fn line_in(extra: &str, needle: &str) -> u32 {
        let text = format!("{WEBHOOK_BASE}{extra}");
        let index = text
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in the test map"));
        u32::try_from(index + 1).unwrap_or(u32::MAX)
    }

    fn mailer_webhook(p: &crate::policy::Policy) -> Webhook {
        p.datamap.recipients["mailer"]
            .webhook
            .clone()
            .expect("the mailer has a webhook")
    }

    #[test]
    fn webhook_defaults() {
        let p = load_webhook(
            r#"webhook = { url = "https://hooks.sendfast.example/lethe", secret = "env:SENDFAST_WEBHOOK_SECRET" }"#,
        )
        .expect("valid map");
        let w = mailer_webhook(&p);
        assert_eq!(w.url, "https://hooks.sendfast.example/lethe");
        assert_eq!(w.secret_env, "SENDFAST_WEBHOOK_SECRET");
        assert_eq!(w.events, NoticeEvent::ALL.to_vec());
        assert_eq!(w.timeout, std::time::Duration::from_secs(10));
        assert_eq!(w.max_attempts, 8);
        assert!(w.wants(NoticeEvent::Restriction));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn webhook_with_every_field() {
        let p = load_webhook(
            r#"
[recipients.mailer.webhook]
url = "https://hooks.sendfast.example:8443/lethe?tenant=northwind"
secret = "env:SENDFAST_WEBHOOK_SECRET"
events = ["rectification", "erasure"]
timeout_secs = 30
max_attempts = 3
"#,
        )
        .expect("valid map");
        let w = mailer_webhook(&p);
        assert_eq!(
            w.events,
            vec![NoticeEvent::Rectification, NoticeEvent::Erasure]
        );
        assert!(!w.wants(NoticeEvent::Restriction));
        assert_eq!(w.timeout, std::time::Duration::from_secs(30));
        assert_eq!(w.max_attempts, 3);
        assert_eq!(&*w.at.file, "policies/test.toml");
    }

    #[test]
    fn recipients_without_webhook_have_none() {
        let p = load_webhook("").expect("valid map");
        assert!(p.datamap.recipients["mailer"].webhook.is_none());
    }

    #[test]
    fn webhook_url_scheme_is_checked_with_file_line_and_key() {
        let extra = r#"
[recipients.mailer.webhook]
url = "ftp://hooks.sendfast.example/lethe"
secret = "env:SENDFAST_WEBHOOK_SECRET"
"#;
        let e = webhook_errors(extra);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(&*e[0].at.file, "policies/test.toml");
        assert_eq!(e[0].at.line, line_in(extra, "ftp://"));
        assert_eq!(e[0].key, "recipients.mailer.webhook.url");
        assert!(
            e[0].message.contains("unsupported scheme \"ftp\""),
            "{}",
            e[0]
        );
    }

    #[test]
    fn plain_http_needs_a_loopback_host() {
        let extra = r#"
[recipients.mailer.webhook]
url = "http://hooks.sendfast.example/lethe"
secret = "env:SENDFAST_WEBHOOK_SECRET"
"#;
        let e = webhook_errors(extra);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].at.line, line_in(extra, "http://"));
        assert!(e[0].message.contains("https is required"), "{}", e[0]);
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]:9000/",
            "http://localhost/hook",
            "http://LOCALHOST:1/",
        ] {
            let extra = format!("webhook = {{ url = \"{url}\", secret = \"env:S\" }}");
            assert!(load_webhook(&extra).is_ok(), "{url}");
        }
    }

    #[test]
    fn webhook_urls() {
        for ok in [
            "https://hooks.example/lethe",
            "HTTPS://hooks.example",
            "https://hooks.example:8443/a/b?c=d",
            "https://[2001:db8::1]/hook",
            "https://10.0.0.5/hook",
            "http://127.0.0.2:8080",
        ] {
            assert_eq!(check_webhook_url(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("hooks.example/lethe", "not an absolute URL"),
            ("file:///etc/passwd", "unsupported scheme"),
            ("javascript://x", "unsupported scheme"),
            ("https:///path", "no host"),
            ("https://user:pw@hooks.example/", "credentials"),
            ("https://hooks.example/#frag", "fragment"),
            ("https://hooks.example:0/", "port"),
            ("https://hooks.example:99999/", "port"),
            ("https://hooks.example:+80/", "port"),
            ("https://hooks example/", "spaces"),
            ("https://[::1/", "unterminated"),
            ("https://[not-v6]/", "IPv6"),
            ("https://hööks.example/", "xn--"),
            ("http://10.0.0.5/hook", "https is required"),
            ("http://127.0.0.1.evil.example/", "https is required"),
            ("http://[::2]/", "https is required"),
        ] {
            match check_webhook_url(bad) {
                Ok(()) => panic!("{bad} accepted"),
                Err(e) => assert!(e.contains(says), "{bad}: {e}"),
            }
        }
    }

    #[test]
    fn inline_secrets_are_rejected_without_repeating_them() {
        let extra = r#"
[recipients.mailer.webhook]
url = "https://hooks.sendfast.example/lethe"
secret = "whsec_s3cr3t-value"
"#;
        let e = webhook_errors(extra);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].key, "recipients.mailer.webhook.secret");
        assert_eq!(e[0].at.line, line_in(extra, "whsec_"));
        assert!(
            e[0].message.contains("inline secrets are not allowed"),
            "{}",
            e[0]
        );
        assert!(!e[0].to_string().contains("s3cr3t"), "{}", e[0]);

        let e = webhook_errors(
            r#"webhook = { url = "https://hooks.example/", secret = "env:not a name" }"#,
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].message.contains("environment variable name"),
            "{}",
            e[0]
        );
        assert!(!e[0].to_string().contains("not a name"), "{}", e[0]);
    }

    #[test]
    fn credentials_in_the_url_are_not_repeated() {
        let e = webhook_errors(
            r#"webhook = { url = "https://bob:hunter2@hooks.example/", secret = "env:S" }"#,
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(!e[0].to_string().contains("hunter2"), "{}", e[0]);
    }

    #[test]
    fn webhook_events_are_checked() {
        let extra = r#"
[recipients.mailer.webhook]
url = "https://hooks.sendfast.example/lethe"
secret = "env:SENDFAST_WEBHOOK_SECRET"
events = ["erasure", "erasure", "rectifcation"]
"#;
        let e = webhook_errors(extra);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e.iter()
                .all(|d| d.key == "recipients.mailer.webhook.events")
        );
        assert!(e.iter().all(|d| d.at.line == line_in(extra, "events =")));
        assert!(e[0].message.contains("listed twice"), "{}", e[0]);
        assert!(
            e[1].message.contains(
                "unknown notice event \"rectifcation\" (did you mean \"rectification\"?)"
            ),
            "{}",
            e[1]
        );

        let e = webhook_errors(
            r#"webhook = { url = "https://hooks.example/", secret = "env:S", events = [] }"#,
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("at least one event"), "{}", e[0]);
    }

    #[test]
    fn webhook_limits_are_checked() {
        let extra = r#"
[recipients.mailer.webhook]
url = "https://hooks.sendfast.example/lethe"
secret = "env:SENDFAST_WEBHOOK_SECRET"
timeout_secs = 0
max_attempts = -1
"#;
        let e = webhook_errors(extra);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].key, "recipients.mailer.webhook.timeout_secs");
        assert_eq!(e[0].at.line, line_in(extra, "timeout_secs"));
        assert_eq!(e[1].key, "recipients.mailer.webhook.max_attempts");
        assert_eq!(e[1].at.line, line_in(extra, "max_attempts"));
        let e = webhook_errors(
            r#"webhook = { url = "https://hooks.example/", secret = "env:S", timeout_secs = 121, max_attempts = 21 }"#,
        );
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn unknown_webhook_keys_are_errors() {
        let extra = r#"
[recipients.mailer.webhook]
url = "https://hooks.sendfast.example/lethe"
secret = "env:SENDFAST_WEBHOOK_SECRET"
retries = 3
"#;
        let e = webhook_errors(extra);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].at.line, line_in(extra, "retries"));
        assert!(e[0].message.contains("retries"), "{}", e[0]);
    }

    #[test]
    fn webhook_of_an_unlisted_recipient_warns() {
        let p = load_webhook(
            r#"
[recipients.billing]
name = "Billing Co"
kind = "processor"
webhook = { url = "https://billing.example/hook", secret = "env:BILLING_SECRET" }
"#,
        )
        .expect("valid map");
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert_eq!(p.warnings[0].key, "recipients.billing.webhook");
        assert!(p.warnings[0].message.contains("never notified"));
    }

    #[test]
    fn env_references() {
        assert_eq!(env_reference("env:SECRET_1"), Some("SECRET_1"));
        assert_eq!(env_reference("env:_X"), Some("_X"));
        for bad in ["SECRET", "env:", "env:1X", "env:A-B", "env:A B", "ENV:X"] {
            assert_eq!(env_reference(bad), None, "{bad}");
        }
    }

    #[test]
    fn generalizations_parse() {
        assert_eq!(Generalization::parse("year"), Some(Generalization::Year));
        assert_eq!(
            Generalization::parse("range:10"),
            Some(Generalization::Range(10))
        );
        assert_eq!(
            Generalization::parse("prefix:2"),
            Some(Generalization::Prefix(2))
        );
        assert_eq!(Generalization::parse("range:0"), None);
        assert_eq!(Generalization::parse("decade"), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::policy::load_texts;
    use proptest::prelude::*;
    use proptest::strategy::Strategy;

    const DEMO_MAP: &str = include_str!("../../policies/datamap.toml");
    const DEMO_RULES: &str = include_str!("../../policies/retention.toml");

    /// One random edit of a policy text.
    #[derive(Debug, Clone)]
    enum Edit {
        Delete(prop::sample::Index, usize),
        Insert(prop::sample::Index, String),
        Replace(prop::sample::Index, char),
        Truncate(prop::sample::Index),
        DuplicateLine(prop::sample::Index),
        SwapLines(prop::sample::Index, prop::sample::Index),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let idx = any::<prop::sample::Index>;
        prop_oneof![
            (idx(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
            (
                idx(),
                prop_oneof![
                    any::<String>(),
                    "[\\[\\]{}=\",.\\n# a-z0-9_'\\\\-]{1,12}",
                    Just("\n[tables.x]\n".to_string()),
                    Just(" = 1\n".to_string()),
                    Just("\"\"\"".to_string()),
                ]
            )
                .prop_map(|(i, s)| Edit::Insert(i, s)),
            (idx(), any::<char>()).prop_map(|(i, c)| Edit::Replace(i, c)),
            idx().prop_map(Edit::Truncate),
            idx().prop_map(Edit::DuplicateLine),
            (idx(), idx()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        ]
    }

    fn apply(text: &str, e: &Edit) -> String {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len().max(1);
        let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
        match e {
            Edit::Delete(i, len) => {
                let at = i.index(n).min(chars.len());
                let end = (at + len).min(chars.len());
                chars[..at].iter().chain(&chars[end..]).collect()
            }
            Edit::Insert(i, s) => {
                let at = i.index(n).min(chars.len());
                let head: String = chars[..at].iter().collect();
                let tail: String = chars[at..].iter().collect();
                format!("{head}{s}{tail}")
            }
            Edit::Replace(i, c) => {
                let mut out = chars.clone();
                if let Some(x) = out.get_mut(i.index(n)) {
                    *x = *c;
                }
                out.into_iter().collect()
            }
            Edit::Truncate(i) => chars[..i.index(n).min(chars.len())].iter().collect(),
            Edit::DuplicateLine(i) => {
                let at = i
                    .index(lines.len().max(1))
                    .min(lines.len().saturating_sub(1));
                if let Some(l) = lines.get(at).copied() {
                    lines.insert(at, l);
                }
                lines.concat()
            }
            Edit::SwapLines(a, b) => {
                let len = lines.len().max(1);
                let (a, b) = (a.index(len), b.index(len));
                if a < lines.len() && b < lines.len() {
                    lines.swap(a, b);
                }
                lines.concat()
            }
        }
    }

    /// Loading never panics; a failure reports errors that each name one of the files
    /// and a line inside it.
    fn check_load(files: &[(String, String)]) -> Result<(), TestCaseError> {
        match load_texts(files) {
            Ok(p) => {
                prop_assert!(!p.datamap.tables.is_empty());
                prop_assert!(p.digest.starts_with("sha256:"));
            }
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                prop_assert!(errors.0.iter().any(Diagnostic::is_error));
                for d in &errors.0 {
                    let Some((_, text)) = files.iter().find(|(name, _)| **name == *d.at.file)
                    else {
                        return Err(TestCaseError::fail(format!("no such file in {d}")));
                    };
                    let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
                    prop_assert!(d.at.line >= 1 && d.at.line <= lines.max(1) + 1, "{d}");
                    prop_assert!(!d.message.is_empty(), "{d}");
                }
            }
        }
        Ok(())
    }

    fn files(map: String, rules: String) -> Vec<(String, String)> {
        vec![
            ("policies/datamap.toml".to_string(), map),
            ("policies/retention.toml".to_string(), rules),
        ]
    }

    /// A valid data map: tables with random identifier names and columns, the first with
    /// an e-mail identity, each later one linked from an earlier one.
    fn valid_map() -> impl Strategy<Value = (String, Vec<(String, Vec<String>)>)> {
        proptest::collection::btree_map(
            "[a-z_][a-z0-9_]{0,20}",
            proptest::collection::btree_set("[a-z][a-z0-9_]{0,15}", 1..6),
            1..6,
        )
        .prop_map(|tables| {
            let tables: Vec<(String, Vec<String>)> = tables
                .into_iter()
                .map(|(t, cols)| {
                    let cols = cols
                        .into_iter()
                        .filter(|c| c != "id" && c != "email" && c != "parent_id")
                        .collect();
                    (t, cols)
                })
                .collect();
            let mut text = String::from(
                "version = 1\n[controller]\nname = \"Gen Ltd\"\ncontact = \"privacy@gen.example\"\n\
                 [sources.crm]\nurl = \"sqlite://unused.db\"\n\
                 [identities.email]\nnormalizer = \"email\"\n\
                 [categories.contact]\nlabel = \"Contact\"\n\
                 [purposes.crm]\ndescription = \"CRM\"\nlegal_basis = \"contract\"\n",
            );
            for (i, (t, cols)) in tables.iter().enumerate() {
                text.push_str(&format!(
                    "\n[tables.{t}]\nsource = \"crm\"\nprimary_key = [\"id\"]\npurposes = [\"crm\"]\n\
                     retention = \"1 year\"\non_erasure = \"{}\"\n",
                    if i % 2 == 0 { "delete" } else { "anonymize" }
                ));
                if i == 0 {
                    text.push_str("identities = [{ kind = \"email\", column = \"email\" }]\n");
                } else {
                    let (parent, _) = &tables[i / 2];
                    text.push_str(&format!(
                        "links = [{{ from = \"{parent}\", on = {{ parent_id = \"id\" }} }}]\n"
                    ));
                }
                text.push_str(&format!("[tables.{t}.columns]\n"));
                if i == 0 {
                    text.push_str("email = { category = \"contact\", erase = \"null\" }\n");
                }
                for c in cols {
                    text.push_str(&format!("{c} = {{ category = \"contact\", erase = \"null\" }}\n"));
                }
            }
            (text, tables)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn generated_valid_maps_load(
            (text, tables) in valid_map(),
        ) {
            let p = load_texts(&[("policies/gen.toml".to_string(), text.clone())])
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(p.datamap.tables.len(), tables.len());
            for (t, cols) in &tables {
                let ti = p.datamap.table_idx(t).ok_or_else(|| TestCaseError::fail(t.clone()))?;
                let allowed = p.datamap.allowed_columns(ti);
                for c in cols {
                    prop_assert!(allowed.contains(c), "{t}.{c} not in {allowed:?}");
                }
                for c in &allowed {
                    prop_assert!(is_identifier(c), "{c}");
                }
            }
        }

        #[test]
        fn edited_data_maps_load_or_name_file_and_line(edits in proptest::collection::vec(edit(), 1..4)) {
            let map = edits.iter().fold(DEMO_MAP.to_string(), |t, e| apply(&t, e));
            check_load(&files(map, DEMO_RULES.to_string()))?;
        }

        #[test]
        fn edited_retention_rules_load_or_name_file_and_line(edits in proptest::collection::vec(edit(), 1..4)) {
            let rules = edits.iter().fold(DEMO_RULES.to_string(), |t, e| apply(&t, e));
            check_load(&files(DEMO_MAP.to_string(), rules))?;
        }

        #[test]
        fn arbitrary_text_is_never_a_panic(text in any::<String>()) {
            check_load(&[("policies/x.toml".to_string(), text.clone())])?;
            check_load(&files(DEMO_MAP.to_string(), text))?;
        }

        #[test]
        fn identifiers_are_exactly_the_plain_sql_ones(s in any::<String>()) {
            let plain = !s.is_empty()
                && s.len() <= 63
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !s.as_bytes()[0].is_ascii_digit();
            prop_assert_eq!(is_identifier(&s), plain);
        }
    }
}
