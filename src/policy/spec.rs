//! The raw TOML shape of the policy files, exactly as written by a privacy officer.
//!
//! These structs only describe syntax (every struct denies unknown keys, so a typo is an
//! error with a line number). Meaning is checked in [`super::validate`], which turns a set of
//! [`DataMapFile`]s into a validated [`super::DataMap`].

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// One data-map file (`policies/*.toml` other than `retention.toml`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DataMapFile {
    /// Format version; only `1` exists.
    pub version: Option<Spanned<u32>>,
    pub controller: Option<Spanned<ControllerSpec>>,
    #[serde(default)]
    pub categories: BTreeMap<String, Spanned<CategorySpec>>,
    #[serde(default)]
    pub sources: BTreeMap<String, Spanned<SourceSpec>>,
    #[serde(default)]
    pub identities: BTreeMap<String, Spanned<IdentitySpec>>,
    #[serde(default)]
    pub purposes: BTreeMap<String, Spanned<PurposeSpec>>,
    #[serde(default)]
    pub recipients: BTreeMap<String, Spanned<RecipientSpec>>,
    #[serde(default)]
    pub tables: BTreeMap<String, Spanned<TableSpec>>,
}

/// The controller named in access exports (GDPR Art. 13/14/15).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ControllerSpec {
    pub name: String,
    pub contact: String,
    pub dpo: Option<String>,
    pub supervisory_authority: Option<String>,
    pub rights_notice: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    pub label: String,
    pub description: Option<String>,
    /// Special category (GDPR Art. 9) or sensitive personal information (CPRA).
    #[serde(default)]
    pub sensitive: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A connection URL (`sqlite://`, `postgres://`) or `env:VARIABLE`.
    pub url: Spanned<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    pub normalizer: Spanned<String>,
    pub label: Option<String>,
    /// Phone normalizer: the country calling code used for national numbers (`0301234567`).
    pub default_country_code: Option<Spanned<String>>,
    /// Reference normalizer: the fixed prefix (`CUST-`).
    pub prefix: Option<Spanned<String>>,
    /// Reference normalizer: zero-padded width of the number part.
    pub digits: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PurposeSpec {
    pub description: String,
    pub legal_basis: Spanned<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RecipientSpec {
    pub name: String,
    /// processor | controller | public_authority | internal
    pub kind: Spanned<String>,
    pub country: Option<String>,
    pub purpose: Option<String>,
    /// Transfer safeguard for third countries (e.g. "EU SCCs 2021").
    pub safeguards: Option<String>,
    /// Where notices of erasures, rectifications and restrictions are POSTed.
    pub webhook: Option<Spanned<WebhookSpec>>,
}

/// `webhook = { url = "https://...", secret = "env:VAR", events = [...] }` on a recipient.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// `https://...`; plain `http://` only to a loopback host.
    pub url: Spanned<String>,
    /// `env:VARIABLE`: the environment variable that holds the signing secret.
    pub secret: Spanned<String>,
    /// erasure | rectification | restriction; all three when left out.
    pub events: Option<Spanned<Vec<Spanned<String>>>>,
    /// Seconds one delivery attempt may take (default 10).
    pub timeout_secs: Option<Spanned<i64>>,
    /// Attempts before the notice is marked failed (default 8).
    pub max_attempts: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub source: Spanned<String>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub primary_key: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub purposes: Vec<Spanned<String>>,
    /// Overrides the legal basis of the purposes for this table.
    pub legal_basis: Option<Spanned<String>>,
    #[serde(default)]
    pub recipients: Vec<Spanned<String>>,
    /// Retention period or the criteria used to determine it (GDPR Art. 15(1)(d)).
    pub retention: Spanned<String>,
    /// Where the data came from when not from the subject (GDPR Art. 15(1)(g)).
    pub origin: Option<String>,
    /// What an erasure does to a row of this table: delete, anonymize or keep.
    pub on_erasure: Spanned<String>,
    /// The legal ground for keeping (or only anonymizing) rows of this table.
    pub exemption: Option<Spanned<ExemptionSpec>>,
    /// Tables whose rows must be erased after this table's rows (overrides the catalog order).
    #[serde(default)]
    pub erase_before: Vec<Spanned<String>>,
    #[serde(default)]
    pub identities: Vec<Spanned<IdentityColumnSpec>>,
    #[serde(default)]
    pub links: Vec<Spanned<LinkSpec>>,
    #[serde(default)]
    pub columns: BTreeMap<String, Spanned<ColumnSpec>>,
    /// Columns knowingly left out of the map, with the reason (silences the coverage and
    /// foreign-key lints; SQL never touches them).
    #[serde(default)]
    pub ignore: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ExemptionSpec {
    /// legal_obligation | legal_claims | ...
    pub ground: Spanned<String>,
    /// The statute or policy, e.g. "HGB 257, AO 147 (10 years)".
    pub basis: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct IdentityColumnSpec {
    pub kind: Spanned<String>,
    pub column: Spanned<String>,
    /// Values found in this column become identities of the subject (and are traced too).
    #[serde(default)]
    pub discover: bool,
    /// `exact` (default) or `lower` (the column holds mixed case; compare `lower(column)`).
    pub compare: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The table whose found rows lead to rows of this table.
    pub from: Spanned<String>,
    /// `this_column = "from_column"` pairs; all must be equal.
    pub on: Spanned<BTreeMap<String, Spanned<String>>>,
    /// Polymorphic link: the discriminator column on this table ...
    pub type_column: Option<Spanned<String>>,
    /// ... and the value naming the `from` table (e.g. "Contact").
    pub type_value: Option<Spanned<String>>,
    /// Further conditions on this table's rows.
    #[serde(default, rename = "where")]
    pub conditions: Vec<Spanned<ConditionSpec>>,
    /// `exact` (default) or `lower` (a copied value in mixed case).
    pub compare: Option<Spanned<String>>,
    pub label: Option<String>,
}

/// A structured condition: never raw SQL.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub column: Spanned<String>,
    pub op: Spanned<String>,
    pub value: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub category: Spanned<String>,
    pub description: Option<String>,
    /// The erasure strategy when the row is anonymized.
    pub erase: Option<Spanned<String>>,
    /// Parameter of `constant`.
    pub value: Option<Spanned<toml::Value>>,
    /// Parameter of `generalize`: year | month | range:N | prefix:N.
    pub to: Option<Spanned<String>>,
    /// The subject provided this value (included in portability exports).
    #[serde(default)]
    pub provided: bool,
    /// Search this text column for the subject's identities (residual scan).
    #[serde(default)]
    pub scan: bool,
    /// The value an opt-out of sale/sharing writes into this column.
    pub opt_out: Option<Spanned<toml::Value>>,
}
