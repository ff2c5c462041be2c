//! The data map page: the tables with their purposes, legal basis and categories, the links
//! drawn as a graph (SVG made on the server), the categories, and the linter's warnings
//! against the live schema.

use super::page::blocking;
use super::page::{Layout, PageError, render};
use super::session::Session;
use crate::app::AppState;
use crate::policy::diagnostic::Severity;
use crate::policy::lint::{self, CatalogResult};
use crate::source::Catalog;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct TableLine {
    pub name: String,
    pub label: String,
    pub source: String,
    pub purposes: String,
    pub legal_basis: String,
    pub on_erasure: String,
    pub retention: String,
    pub identities: String,
    pub columns: Vec<(String, String, String)>,
}

pub struct CategoryLine {
    pub name: String,
    pub label: String,
    pub description: String,
    pub sensitive: bool,
    pub columns: usize,
}

pub struct Finding {
    pub error: bool,
    pub at: String,
    pub key: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "datamap.html")]
struct DataMapPage {
    layout: Layout,
    svg: String,
    digest: String,
    tables: Vec<TableLine>,
    categories: Vec<CategoryLine>,
    findings: Vec<Finding>,
    links: usize,
}

pub async fn show(State(app): State<AppState>, s: Session) -> Result<Response, PageError> {
    let page = blocking(&app, move |app| -> Result<DataMapPage, PageError> {
        let map = &app.policy.datamap;
        let loaded: BTreeMap<String, Result<Arc<Catalog>, String>> = app
            .sources
            .iter()
            .map(|h| (h.name.clone(), h.catalog().map_err(|e| e.to_string())))
            .collect();
        let catalogs: BTreeMap<String, CatalogResult<'_>> = loaded
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map(|c| c.as_ref()).map_err(Clone::clone),
                )
            })
            .collect();
        let mut diags = app.policy.warnings.clone();
        diags.extend(lint::lint(map, &catalogs));
        let mut col_count: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &map.tables {
            for c in &t.columns {
                *col_count.entry(c.category.as_str()).or_default() += 1;
            }
        }
        Ok(DataMapPage {
            layout: s.layout("Data map", "datamap"),
            svg: crate::policy::graph::svg(map),
            digest: app.policy.digest.clone(),
            links: map.links.len(),
            tables: map
                .tables
                .iter()
                .map(|t| TableLine {
                    name: t.name.clone(),
                    label: t.label.clone(),
                    source: t.source.clone(),
                    purposes: t.purposes.join(", "),
                    legal_basis: t.legal_basis.describe().to_string(),
                    on_erasure: format!("{:?}", t.on_erasure).to_lowercase(),
                    retention: t.retention.clone(),
                    identities: t
                        .identities
                        .iter()
                        .map(|i| format!("{} ({})", i.column, i.kind))
                        .collect::<Vec<_>>()
                        .join(", "),
                    columns: t
                        .columns
                        .iter()
                        .map(|c| {
                            (
                                c.name.clone(),
                                map.categories
                                    .get(&c.category)
                                    .map_or_else(|| c.category.clone(), |k| k.label.clone()),
                                c.strategy
                                    .as_ref()
                                    .map(|s| s.name().to_string())
                                    .unwrap_or_default(),
                            )
                        })
                        .collect(),
                })
                .collect(),
            categories: map
                .categories
                .values()
                .map(|c| CategoryLine {
                    name: c.name.clone(),
                    label: c.label.clone(),
                    description: c.description.clone().unwrap_or_default(),
                    sensitive: c.sensitive,
                    columns: col_count.get(c.name.as_str()).copied().unwrap_or(0),
                })
                .collect(),
            findings: diags
                .iter()
                .map(|d| Finding {
                    error: d.severity == Severity::Error,
                    at: d.at.to_string(),
                    key: d.key.clone(),
                    message: d.message.clone(),
                })
                .collect(),
        })
    })
    .await?;
    Ok(render(&page))
}
