//! The validated data map: the policy snapshot every other layer works from.
//!
//! Architecture invariant: every table and column name in here passed
//! [`super::validate::is_identifier`]; SQL is only ever built from these names.

use super::diagnostic::Origin;
use super::identity::Normalizer;
use crate::source::Value;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Serialize)]
pub struct Controller {
    pub name: String,
    pub contact: String,
    pub dpo: Option<String>,
    pub supervisory_authority: Option<String>,
    pub rights_notice: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub name: String,
    pub label: String,
    pub description: Option<String>,
    pub sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct SourceDef {
    pub name: String,
    /// As written: a URL or `env:VAR`; resolved by [`crate::source::SourceUrl`].
    pub url: String,
    pub description: Option<String>,
    pub at: Origin,
}

#[derive(Debug, Clone)]
pub struct IdentityKind {
    pub name: String,
    pub label: String,
    pub normalizer: Normalizer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterests,
}

impl LegalBasis {
    pub const NAMES: [&'static str; 6] = [
        "consent",
        "contract",
        "legal_obligation",
        "vital_interests",
        "public_task",
        "legitimate_interests",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "consent" => LegalBasis::Consent,
            "contract" => LegalBasis::Contract,
            "legal_obligation" => LegalBasis::LegalObligation,
            "vital_interests" => LegalBasis::VitalInterests,
            "public_task" => LegalBasis::PublicTask,
            "legitimate_interests" => LegalBasis::LegitimateInterests,
            _ => return None,
        })
    }

    /// The GDPR article and a plain description.
    pub fn describe(self) -> &'static str {
        match self {
            LegalBasis::Consent => "Consent (GDPR Art. 6(1)(a))",
            LegalBasis::Contract => "Performance of a contract (GDPR Art. 6(1)(b))",
            LegalBasis::LegalObligation => "Legal obligation (GDPR Art. 6(1)(c))",
            LegalBasis::VitalInterests => "Vital interests (GDPR Art. 6(1)(d))",
            LegalBasis::PublicTask => "Public task (GDPR Art. 6(1)(e))",
            LegalBasis::LegitimateInterests => "Legitimate interests (GDPR Art. 6(1)(f))",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Purpose {
    pub name: String,
    pub description: String,
    pub legal_basis: LegalBasis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    Processor,
    Controller,
    PublicAuthority,
    Internal,
}

impl RecipientKind {
    pub const NAMES: [&'static str; 4] =
        ["processor", "controller", "public_authority", "internal"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "processor" => RecipientKind::Processor,
            "controller" => RecipientKind::Controller,
            "public_authority" => RecipientKind::PublicAuthority,
            "internal" => RecipientKind::Internal,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    pub name: String,
    pub display_name: String,
    pub kind: RecipientKind,
    pub country: Option<String>,
    pub purpose: Option<String>,
    pub safeguards: Option<String>,
    /// Where lethe sends notices of erasures, rectifications and restrictions (GDPR Art. 19,
    /// CCPA regulations 7022(b), 7026(f)); `None`: the recipient is told some other way.
    /// Operational configuration, not Art. 15 information: never serialized.
    #[serde(skip)]
    pub webhook: Option<Webhook>,
}

/// What a recipient is notified of: the completed request kinds that GDPR Art. 19 and the
/// CCPA regulations require to be passed on to those who received the data.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum NoticeEvent {
    /// The subject's data was erased (GDPR Art. 17, CCPA 1798.105).
    Erasure,
    /// The subject's data was corrected (GDPR Art. 16, CPRA 1798.106).
    Rectification,
    /// Processing was restricted: the subject opted out of sale or sharing (CCPA 1798.120),
    /// or GDPR Art. 18 restriction.
    Restriction,
}

impl NoticeEvent {
    /// Every event, in the order the data-map default lists them.
    pub const ALL: [NoticeEvent; 3] = [
        NoticeEvent::Erasure,
        NoticeEvent::Rectification,
        NoticeEvent::Restriction,
    ];

    /// The names used in the data map and in notices.
    pub const NAMES: [&'static str; 3] = ["erasure", "rectification", "restriction"];

    /// Parses a data-map name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "erasure" => NoticeEvent::Erasure,
            "rectification" => NoticeEvent::Rectification,
            "restriction" => NoticeEvent::Restriction,
            _ => return None,
        })
    }

    /// The name used in the data map and in notices.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeEvent::Erasure => "erasure",
            NoticeEvent::Rectification => "rectification",
            NoticeEvent::Restriction => "restriction",
        }
    }
}

impl std::fmt::Display for NoticeEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recipient's webhook endpoint for notices (`webhook = { url, secret, ... }` in the map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `https://...` (plain `http://` only to a loopback host); checked by
    /// [`super::validate::check_webhook_url`].
    pub url: String,
    /// The environment variable holding the signing secret (the map says `env:VAR`; the
    /// secret itself is never in a policy file).
    pub secret_env: String,
    /// The events this recipient is notified of (no duplicates; all three by default).
    pub events: Vec<NoticeEvent>,
    /// How long one delivery attempt may take, connection to response body.
    pub timeout: std::time::Duration,
    /// Delivery attempts before a notice is marked failed (at least 1).
    pub max_attempts: u32,
    /// Where the webhook is written.
    pub at: Origin,
}

impl Webhook {
    /// Default of `timeout_secs`.
    pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
    /// Largest `timeout_secs` accepted.
    pub const MAX_TIMEOUT_SECS: u64 = 120;
    /// Default of `max_attempts`.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
    /// Largest `max_attempts` accepted.
    pub const MAX_MAX_ATTEMPTS: u32 = 20;

    /// Whether this recipient wants notices of `event`.
    pub fn wants(&self, event: NoticeEvent) -> bool {
        self.events.contains(&event)
    }
}

/// What an erasure does to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowAction {
    Delete,
    Anonymize,
    Keep,
}

impl RowAction {
    pub const NAMES: [&'static str; 3] = ["delete", "anonymize", "keep"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "delete" => RowAction::Delete,
            "anonymize" => RowAction::Anonymize,
            "keep" => RowAction::Keep,
            _ => return None,
        })
    }
}

/// Legal grounds for keeping data despite an erasure request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExemptionGround {
    LegalObligation,
    LegalClaims,
    PublicInterest,
    FreedomOfExpression,
    PublicHealth,
}

impl ExemptionGround {
    pub const NAMES: [&'static str; 5] = [
        "legal_obligation",
        "legal_claims",
        "public_interest",
        "freedom_of_expression",
        "public_health",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "legal_obligation" => ExemptionGround::LegalObligation,
            "legal_claims" => ExemptionGround::LegalClaims,
            "public_interest" => ExemptionGround::PublicInterest,
            "freedom_of_expression" => ExemptionGround::FreedomOfExpression,
            "public_health" => ExemptionGround::PublicHealth,
            _ => return None,
        })
    }

    /// The provisions this ground rests on, GDPR first, then CCPA.
    pub fn citation(self) -> &'static str {
        match self {
            ExemptionGround::LegalObligation => "GDPR Art. 17(3)(b); CCPA 1798.105(d)(8)",
            ExemptionGround::LegalClaims => "GDPR Art. 17(3)(e); CCPA 1798.105(d)(8)",
            ExemptionGround::PublicInterest => "GDPR Art. 17(3)(d); CCPA 1798.105(d)(6)",
            ExemptionGround::FreedomOfExpression => "GDPR Art. 17(3)(a); CCPA 1798.105(d)(4)",
            ExemptionGround::PublicHealth => "GDPR Art. 17(3)(c)",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Exemption {
    pub ground: ExemptionGround,
    pub basis: String,
}

/// How a column value is compared with an identity value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    Exact,
    /// `lower(column) = value`: for copies typed in mixed case.
    Lower,
}

impl Compare {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "exact" => Compare::Exact,
            "lower" => Compare::Lower,
            _ => return None,
        })
    }
}

/// Erasure strategy for one column (applied when its row is anonymized).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "strategy", content = "param")]
pub enum Strategy {
    Null,
    Constant(Value),
    /// Keep the first character and the shape (`j***@example.com`, `+49******567`).
    Mask,
    Generalize(Generalization),
    /// Keyed pseudonymization (HMAC-SHA256): pseudonymization, not anonymization.
    Hmac,
    /// AES-256-GCM under a per-subject key; deleting the key is crypto-shredding.
    Encrypt,
    /// Replace the subject's identity spellings inside free text, keep the rest.
    Redact,
    /// Leave the value as it is (not personal once the row's identifiers are gone).
    Keep,
}

impl Strategy {
    pub const NAMES: [&'static str; 8] = [
        "null",
        "constant",
        "mask",
        "generalize",
        "hmac",
        "encrypt",
        "redact",
        "keep",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Null => "null",
            Strategy::Constant(_) => "constant",
            Strategy::Mask => "mask",
            Strategy::Generalize(_) => "generalize",
            Strategy::Hmac => "hmac",
            Strategy::Encrypt => "encrypt",
            Strategy::Redact => "redact",
            Strategy::Keep => "keep",
        }
    }

    /// Hashing and encryption are pseudonymization (GDPR Recital 26), not anonymization.
    pub fn is_pseudonymization(&self) -> bool {
        matches!(self, Strategy::Hmac | Strategy::Encrypt)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Generalization {
    /// A date or timestamp becomes the first day of its year.
    Year,
    /// A date or timestamp becomes the first day of its month.
    Month,
    /// A number becomes the lower bound of its bucket of this width.
    Range(i64),
    /// A text keeps its first N characters (postcodes).
    Prefix(usize),
}

impl Generalization {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "year" => Some(Generalization::Year),
            "month" => Some(Generalization::Month),
            _ => {
                let (kind, n) = s.split_once(':')?;
                match kind {
                    "range" => n
                        .parse()
                        .ok()
                        .filter(|&w: &i64| w > 0)
                        .map(Generalization::Range),
                    "prefix" => n
                        .parse()
                        .ok()
                        .filter(|&w: &usize| w > 0)
                        .map(Generalization::Prefix),
                    _ => None,
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub strategy: Option<Strategy>,
    pub provided: bool,
    pub scan: bool,
    pub opt_out: Option<Value>,
    pub at: Origin,
}

#[derive(Debug, Clone)]
pub struct IdentityColumn {
    pub kind: String,
    pub column: String,
    pub discover: bool,
    pub compare: Compare,
    pub at: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "not_in")]
    NotIn,
    #[serde(rename = "is_null")]
    IsNull,
    #[serde(rename = "is_not_null")]
    IsNotNull,
}

impl Op {
    pub const NAMES: [&'static str; 10] = [
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "not_in",
        "is_null",
        "is_not_null",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "=" | "eq" => Op::Eq,
            "!=" | "<>" | "ne" => Op::Ne,
            "<" | "lt" => Op::Lt,
            "<=" | "le" => Op::Le,
            ">" | "gt" => Op::Gt,
            ">=" | "ge" => Op::Ge,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "is_null" => Op::IsNull,
            "is_not_null" => Op::IsNotNull,
            _ => return None,
        })
    }

    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::NotIn)
    }

    pub fn takes_value(self) -> bool {
        !matches!(self, Op::IsNull | Op::IsNotNull)
    }

    /// Whether a (non-null) value satisfies `value <op> operand`, for checks done in memory.
    pub fn holds(self, value: &Value, operand: &[Value]) -> bool {
        use std::cmp::Ordering::*;
        let first = operand.first();
        match self {
            Op::IsNull => value.is_null(),
            Op::IsNotNull => !value.is_null(),
            Op::In => operand.iter().any(|o| value.sql_cmp(o) == Some(Equal)),
            Op::NotIn => {
                !value.is_null()
                    && operand
                        .iter()
                        .all(|o| value.sql_cmp(o).is_some_and(|c| c != Equal))
            }
            _ => {
                let Some(ord) = first.and_then(|o| value.sql_cmp(o)) else {
                    return false;
                };
                match self {
                    Op::Eq => ord == Equal,
                    Op::Ne => ord != Equal,
                    Op::Lt => ord == Less,
                    Op::Le => ord != Greater,
                    Op::Gt => ord == Greater,
                    Op::Ge => ord != Less,
                    _ => false,
                }
            }
        }
    }
}

/// A structured condition on one column: never raw SQL.
#[derive(Debug, Clone)]
pub struct Condition {
    pub column: String,
    pub op: Op,
    /// One value for comparisons, several for `in`/`not_in`, none for the null tests.
    pub values: Vec<Value>,
    pub at: Origin,
}

/// "Rows of `target` are reached from rows of `from` where target.on[i].0 = from.on[i].1".
#[derive(Debug, Clone)]
pub struct Link {
    pub target: usize,
    pub from: usize,
    pub on: Vec<(String, String)>,
    /// Polymorphic link: (type column on the target, value naming the `from` table).
    pub polymorphic: Option<(String, String)>,
    pub conditions: Vec<Condition>,
    pub compare: Compare,
    pub label: Option<String>,
    pub at: Origin,
}

impl Link {
    pub fn is_copy(&self, map: &DataMap) -> bool {
        let from = &map.tables[self.from];
        // A link that does not end on the `from` table's primary key joins on a copied value.
        !self.on.iter().all(|(_, f)| from.primary_key.contains(f))
            && !map.tables[self.target]
                .primary_key
                .iter()
                .all(|pk| self.on.iter().any(|(t, _)| t == pk))
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub source: String,
    pub label: String,
    pub description: Option<String>,
    pub primary_key: Vec<String>,
    pub purposes: Vec<String>,
    pub legal_basis: LegalBasis,
    pub recipients: Vec<String>,
    pub retention: String,
    pub origin: Option<String>,
    pub on_erasure: RowAction,
    pub exemption: Option<Exemption>,
    pub erase_before: Vec<String>,
    pub identities: Vec<IdentityColumn>,
    pub columns: Vec<Column>,
    /// Columns knowingly not mapped: (column, reason).
    pub ignored: Vec<(String, String)>,
    pub at: Origin,
}

impl Table {
    pub fn is_ignored(&self, col: &str) -> bool {
        self.ignored.iter().any(|(c, _)| c == col)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The validated data map.
#[derive(Debug, Clone)]
pub struct DataMap {
    pub controller: Controller,
    pub categories: BTreeMap<String, Category>,
    pub sources: BTreeMap<String, SourceDef>,
    pub identity_kinds: BTreeMap<String, IdentityKind>,
    pub purposes: BTreeMap<String, Purpose>,
    pub recipients: BTreeMap<String, Recipient>,
    /// Sorted by name.
    pub tables: Vec<Table>,
    pub links: Vec<Link>,
    pub(crate) table_index: HashMap<String, usize>,
}

impl DataMap {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.table_index.get(name).map(|&i| &self.tables[i])
    }

    pub fn table_idx(&self, name: &str) -> Option<usize> {
        self.table_index.get(name).copied()
    }

    /// Links that lead to rows of `target`.
    pub fn links_into(&self, target: usize) -> impl Iterator<Item = &Link> {
        self.links.iter().filter(move |l| l.target == target)
    }

    /// Links that start from rows of `from`.
    pub fn links_from(&self, from: usize) -> impl Iterator<Item = (usize, &Link)> {
        self.links
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.from == from)
    }

    /// Every column of `table` that the map names (and SQL may therefore touch), in a stable
    /// order: primary key first, then described columns, then identity, link, type and
    /// condition columns.
    pub fn allowed_columns(&self, table: usize) -> Vec<String> {
        let t = &self.tables[table];
        let mut cols: Vec<String> = Vec::new();
        let mut add = |c: &str| {
            if !cols.iter().any(|x| x == c) {
                cols.push(c.to_string());
            }
        };
        t.primary_key.iter().for_each(|c| add(c));
        t.columns.iter().for_each(|c| add(&c.name));
        t.identities.iter().for_each(|i| add(&i.column));
        for l in &self.links {
            if l.target == table {
                l.on.iter().for_each(|(c, _)| add(c));
                if let Some((c, _)) = &l.polymorphic {
                    add(c);
                }
                l.conditions.iter().for_each(|c| add(&c.column));
            }
            if l.from == table {
                l.on.iter().for_each(|(_, c)| add(c));
            }
        }
        cols
    }

    pub fn normalizer(&self, kind: &str) -> Option<&Normalizer> {
        self.identity_kinds.get(kind).map(|k| &k.normalizer)
    }
}
