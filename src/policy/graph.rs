//! The data map drawn as an inline SVG: one box per table, one arrow per [`Link`].
//!
//! Pure and deterministic (same map, same bytes). The layout is layered, left to right:
//! column 0 holds the tables with identity columns (where a request's search starts), then a
//! breadth-first walk along the links (from → target) puts every reachable table in the
//! column after the nearest table that reaches it; tables nothing reaches come last. Within a
//! column tables start in name order and a few barycenter sweeps reduce edge crossings.
//!
//! The SVG is meant to be embedded in an HTML page under a strict Content Security Policy,
//! so it has no `<style>` element and no `style` attributes: colors, dashes and fonts are
//! presentation attributes. Every text is XML-escaped with [`escape`].

use super::model::{Compare, Condition, DataMap, Link, Op, RowAction, Table};
use crate::source::Value;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write;

const MARGIN: f64 = 24.0;
/// Room right of the last column for same-column edges and self-links.
const RIGHT_EXTRA: f64 = 64.0;
const BOX_H: f64 = 64.0;
const V_GAP: f64 = 22.0;
const COL_GAP: f64 = 150.0;
const MIN_BOX_W: f64 = 190.0;
const MAX_BOX_W: f64 = 320.0;
const NAME_SIZE: f64 = 14.0;
const SMALL_SIZE: f64 = 11.0;
/// Rough advance widths (em) of the sans-serif font, for sizing boxes.
const BOLD_EM: f64 = 0.62;
const SMALL_EM: f64 = 0.56;

const FONT: &str = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif";
const TEXT: &str = "#1a1a1a";
const TEXT_MUTED: &str = "#404040";
const BOX_FILL: &str = "#ffffff";
const BOX_STROKE: &str = "#6b7280";
const ID_FILL: &str = "#e7f0fb";
const ID_STROKE: &str = "#1d4ed8";

/// XML-escapes `&`, `<`, `>`, `"` and `'` (safe in text and in quoted attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a link is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    ForeignKey,
    Polymorphic,
    Copy,
}

impl EdgeKind {
    const ALL: [EdgeKind; 3] = [EdgeKind::ForeignKey, EdgeKind::Polymorphic, EdgeKind::Copy];

    fn of(link: &Link, map: &DataMap) -> EdgeKind {
        if link.polymorphic.is_some() {
            EdgeKind::Polymorphic
        } else if link.is_copy(map) {
            EdgeKind::Copy
        } else {
            EdgeKind::ForeignKey
        }
    }

    fn class(self) -> &'static str {
        match self {
            EdgeKind::ForeignKey => "fk",
            EdgeKind::Polymorphic => "polymorphic",
            EdgeKind::Copy => "copy",
        }
    }

    fn stroke(self) -> &'static str {
        match self {
            EdgeKind::ForeignKey => "#4b5563",
            EdgeKind::Polymorphic => "#6d28d9",
            EdgeKind::Copy => "#b45309",
        }
    }

    /// Presentation attributes of the line (after `stroke`).
    fn line_attrs(self) -> &'static str {
        match self {
            EdgeKind::ForeignKey => r#"stroke-width="1.5""#,
            EdgeKind::Polymorphic => r#"stroke-width="1.5" stroke-dasharray="7 4""#,
            EdgeKind::Copy => r#"stroke-width="2" stroke-dasharray="0.5 4" stroke-linecap="round""#,
        }
    }

    fn legend(self) -> &'static str {
        match self {
            EdgeKind::ForeignKey => "foreign key",
            EdgeKind::Polymorphic => "polymorphic (type column)",
            EdgeKind::Copy => "copied value",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Left,
    Right,
}

/// Table positions.
struct Layout {
    /// Column of each table.
    column_of: Vec<usize>,
    /// Top-left corner of each table's box.
    at: Vec<(f64, f64)>,
    box_w: f64,
    width: f64,
    /// Height of the boxes area (without the legend).
    height: f64,
}

/// Draws the data map as a standalone inline SVG (no XML prolog), `width="100%"` with a
/// `viewBox`, so it scales with its container.
///
/// Tables with identity columns are `<g class="table identity">`, the others
/// `<g class="table">`; each link is one `<path class="edge fk|polymorphic|copy">` with a
/// `<title>` such as `contacts.id → deals.contact_id`. The root has `role="img"`, a title
/// (`Data map: N tables, M links`) and a description listing every link.
pub fn svg(map: &DataMap) -> String {
    let layout = layout(map);
    let n_tables = map.tables.len();
    let links: Vec<(usize, &Link)> = map
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| l.from < n_tables && l.target < n_tables)
        .collect();

    let (legend, legend_h) = legend(layout.width, layout.height + 20.0);
    let width = layout.width;
    let height = layout.height + 20.0 + legend_h + MARGIN;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="datamap" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="dm-title dm-desc" font-family="{font}">"#,
        w = num(width),
        h = num(height),
        font = escape(FONT),
    );
    let _ = write!(
        out,
        r#"<title id="dm-title">Data map: {}, {}</title>"#,
        plural(n_tables, "table", "tables"),
        plural(map.links.len(), "link", "links"),
    );
    let _ = write!(
        out,
        r#"<desc id="dm-desc">{}</desc>"#,
        escape(&description(map))
    );

    out.push_str("<defs>");
    for kind in EdgeKind::ALL {
        let _ = write!(
            out,
            r#"<marker id="dm-arrow-{class}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{fill}"/></marker>"#,
            class = kind.class(),
            fill = kind.stroke(),
        );
    }
    out.push_str("</defs>");

    // Edges first, so boxes cover any edge that passes behind them.
    let ports = ports(&layout, &links);
    out.push_str(r#"<g class="edges">"#);
    for &(k, link) in &links {
        let kind = EdgeKind::of(link, map);
        let (Some(&(x1, y1, s1)), Some(&(x2, y2, s2))) = (ports.get(&(k, 0)), ports.get(&(k, 1)))
        else {
            continue;
        };
        let d = path(link.from == link.target, (x1, y1, s1), (x2, y2, s2));
        let _ = write!(
            out,
            r#"<path class="edge {class}" d="{d}" fill="none" stroke="{stroke}" {attrs} marker-end="url(#dm-arrow-{class})"><title>{title}</title></path>"#,
            class = kind.class(),
            stroke = kind.stroke(),
            attrs = kind.line_attrs(),
            title = escape(&describe_link(map, link)),
        );
    }
    out.push_str("</g>");

    out.push_str(r#"<g class="tables">"#);
    for (i, t) in map.tables.iter().enumerate() {
        let (x, y) = layout.at[i];
        table_box(&mut out, t, x, y, layout.box_w);
    }
    out.push_str("</g>");
    out.push_str(&legend);
    out.push_str("</svg>");
    out
}

fn table_box(out: &mut String, t: &Table, x: f64, y: f64, w: f64) {
    let identity = !t.identities.is_empty();
    let (class, fill, stroke, stroke_w) = if identity {
        ("table identity", ID_FILL, ID_STROKE, "2")
    } else {
        ("table", BOX_FILL, BOX_STROKE, "1")
    };
    let _ = write!(
        out,
        r#"<g class="{class}"><title>{title}</title><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_w}"/>"#,
        title = escape(&box_title(t)),
        x = num(x),
        y = num(y),
        w = num(w),
        h = num(BOX_H),
    );
    let text_w = w - 20.0;
    let lines = [
        (
            fit(&t.name, text_w, NAME_SIZE * BOLD_EM),
            20.0,
            NAME_SIZE,
            TEXT,
            true,
        ),
        (
            fit(&second_line(t), text_w, SMALL_SIZE * SMALL_EM),
            38.0,
            SMALL_SIZE,
            TEXT_MUTED,
            false,
        ),
        (
            fit(&third_line(t), text_w, SMALL_SIZE * SMALL_EM),
            54.0,
            SMALL_SIZE,
            TEXT_MUTED,
            false,
        ),
    ];
    for (text, dy, size, fill, bold) in lines {
        let _ = write!(
            out,
            r#"<text x="{x}" y="{y}" font-size="{size}"{weight} fill="{fill}">{text}</text>"#,
            x = num(x + 10.0),
            y = num(y + dy),
            size = num(size),
            weight = if bold { r#" font-weight="bold""# } else { "" },
            text = escape(&text),
        );
    }
    out.push_str("</g>");
}

fn action(t: &Table) -> &'static str {
    match (t.on_erasure, t.exemption.is_some()) {
        (RowAction::Delete, _) => "delete",
        (RowAction::Anonymize, _) => "anonymize",
        (RowAction::Keep, true) => "keep (exempt)",
        (RowAction::Keep, false) => "keep",
    }
}

fn second_line(t: &Table) -> String {
    format!("{} · on erasure: {}", t.source, action(t))
}

fn third_line(t: &Table) -> String {
    let cats: BTreeSet<&str> = t.columns.iter().map(|c| c.category.as_str()).collect();
    let mut parts = Vec::new();
    if !t.identities.is_empty() {
        parts.push(plural(t.identities.len(), "identity", "identities"));
    }
    if t.columns.is_empty() {
        parts.push("no personal columns".to_string());
    } else {
        parts.push(plural(t.columns.len(), "column", "columns"));
        parts.push(plural(cats.len(), "category", "categories"));
    }
    parts.join(" · ")
}

fn box_title(t: &Table) -> String {
    let mut s = format!(
        "{} ({}). Source: {}. On erasure: {}.",
        t.label,
        t.name,
        t.source,
        action(t)
    );
    if !t.identities.is_empty() {
        let ids: Vec<String> = t
            .identities
            .iter()
            .map(|i| format!("{} ({})", i.column, i.kind))
            .collect();
        let _ = write!(s, " Identity columns: {}.", ids.join(", "));
    }
    if !t.columns.is_empty() {
        let cats: BTreeSet<&str> = t.columns.iter().map(|c| c.category.as_str()).collect();
        let _ = write!(
            s,
            " {} in {}: {}.",
            plural(t.columns.len(), "personal column", "personal columns"),
            plural(cats.len(), "category", "categories"),
            cats.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    s
}

/// `text`, shortened with an ellipsis to fit `width` at `advance` per character.
fn fit(text: &str, width: f64, advance: f64) -> String {
    let max = ((width / advance).floor() as usize).max(2);
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

fn text_width(text: &str, advance: f64) -> f64 {
    text.chars().count() as f64 * advance
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A coordinate with at most one decimal, without a trailing `.0`.
fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    // No "-0".
    let r = if r == 0.0 { 0.0 } else { r };
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// `contacts.id → deals.contact_id`, with the type or other conditions, the copy marker and
/// the link's label.
pub fn describe_link(map: &DataMap, link: &Link) -> String {
    let (Some(from), Some(target)) = (map.tables.get(link.from), map.tables.get(link.target))
    else {
        return String::new();
    };
    let pairs: Vec<String> = link
        .on
        .iter()
        .map(|(t, f)| format!("{}.{f} → {}.{t}", from.name, target.name))
        .collect();
    let mut s = pairs.join(", ");
    let mut conds = Vec::new();
    if let Some((col, value)) = &link.polymorphic {
        conds.push(format!("{}.{col} = '{value}'", target.name));
    }
    conds.extend(link.conditions.iter().map(|c| condition(&target.name, c)));
    if !conds.is_empty() {
        let _ = write!(s, " where {}", conds.join(" and "));
    }
    if link.compare == Compare::Lower {
        s.push_str(" (case-insensitive)");
    }
    if link.polymorphic.is_none() && link.is_copy(map) {
        s.push_str(" (copied value)");
    }
    if let Some(label) = &link.label {
        let _ = write!(s, ": {label}");
    }
    s
}

fn condition(table: &str, c: &Condition) -> String {
    let lit = |v: &Value| match v {
        Value::Text(t) => format!("'{t}'"),
        other => other.to_string(),
    };
    let op = match c.op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::In => "in",
        Op::NotIn => "not in",
        Op::IsNull => return format!("{table}.{} is null", c.column),
        Op::IsNotNull => return format!("{table}.{} is not null", c.column),
    };
    let operand = if c.op.takes_list() {
        format!(
            "({})",
            c.values.iter().map(lit).collect::<Vec<_>>().join(", ")
        )
    } else {
        c.values.first().map(lit).unwrap_or_default()
    };
    format!("{table}.{} {op} {operand}", c.column)
}

/// The text alternative: the tables with identity columns, then every link.
fn description(map: &DataMap) -> String {
    let ids: Vec<&str> = map
        .tables
        .iter()
        .filter(|t| !t.identities.is_empty())
        .map(|t| t.name.as_str())
        .collect();
    let mut s = if ids.is_empty() {
        "No table has identity columns.".to_string()
    } else {
        format!("Tables with identity columns: {}.", ids.join(", "))
    };
    let others: Vec<&str> = map
        .tables
        .iter()
        .filter(|t| t.identities.is_empty())
        .map(|t| t.name.as_str())
        .collect();
    if !others.is_empty() {
        let _ = write!(s, " Other tables: {}.", others.join(", "));
    }
    if map.links.is_empty() {
        s.push_str(" No links.");
    } else {
        let links: Vec<String> = map.links.iter().map(|l| describe_link(map, l)).collect();
        let _ = write!(s, " Links: {}.", links.join("; "));
    }
    s
}

fn layout(map: &DataMap) -> Layout {
    let n = map.tables.len();
    let mut columns = assign_columns(map);
    let mut column_of = vec![0; n];
    for (c, col) in columns.iter().enumerate() {
        for &t in col {
            column_of[t] = c;
        }
    }
    reduce_crossings(map, &mut columns, &column_of);

    let mut box_w = MIN_BOX_W;
    for t in &map.tables {
        let need = [
            text_width(&t.name, NAME_SIZE * BOLD_EM),
            text_width(&second_line(t), SMALL_SIZE * SMALL_EM),
            text_width(&third_line(t), SMALL_SIZE * SMALL_EM),
        ]
        .into_iter()
        .fold(0.0, f64::max)
            + 20.0;
        box_w = box_w.max(need.min(MAX_BOX_W));
    }
    box_w = box_w.ceil();

    let rows = columns.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let content_h = (rows * BOX_H + (rows - 1.0).max(0.0) * V_GAP).max(0.0);
    let mut at = vec![(0.0, 0.0); n];
    for (c, col) in columns.iter().enumerate() {
        let len = col.len() as f64;
        let col_h = len * BOX_H + (len - 1.0).max(0.0) * V_GAP;
        let x = MARGIN + c as f64 * (box_w + COL_GAP);
        let top = MARGIN + (content_h - col_h) / 2.0;
        for (i, &t) in col.iter().enumerate() {
            at[t] = (x, top + i as f64 * (BOX_H + V_GAP));
        }
    }
    let ncols = columns.len() as f64;
    let width =
        (MARGIN + ncols * box_w + (ncols - 1.0).max(0.0) * COL_GAP + RIGHT_EXTRA).max(480.0);
    Layout {
        column_of,
        at,
        box_w,
        width: width.ceil(),
        height: MARGIN + content_h,
    }
}

/// Column 0: tables with identity columns; then breadth-first along links; unreachable
/// tables last. Each column in name order; empty columns dropped.
fn assign_columns(map: &DataMap) -> Vec<Vec<usize>> {
    let n = map.tables.len();
    let mut layer: Vec<Option<usize>> = vec![None; n];
    let mut queue = VecDeque::new();
    for (i, t) in map.tables.iter().enumerate() {
        if !t.identities.is_empty() {
            layer[i] = Some(0);
            queue.push_back((i, 0));
        }
    }
    while let Some((u, lu)) = queue.pop_front() {
        for (_, l) in map.links_from(u) {
            if l.target < n && layer[l.target].is_none() {
                layer[l.target] = Some(lu + 1);
                queue.push_back((l.target, lu + 1));
            }
        }
    }
    let last = layer.iter().flatten().max().map_or(0, |m| m + 1);
    let mut columns = vec![Vec::new(); last + 1];
    for (i, l) in layer.iter().enumerate() {
        columns[l.unwrap_or(last)].push(i);
    }
    for col in &mut columns {
        col.sort_by(|&a, &b| map.tables[a].name.cmp(&map.tables[b].name).then(a.cmp(&b)));
    }
    columns.retain(|c| !c.is_empty());
    columns
}

/// Barycenter sweeps (down, up, repeated), keeping the ordering with the fewest crossings
/// between adjacent columns.
fn reduce_crossings(map: &DataMap, columns: &mut [Vec<usize>], column_of: &[usize]) {
    let n = map.tables.len();
    let mut neighbors: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in &map.links {
        if l.from < n && l.target < n && l.from != l.target {
            neighbors[l.from].push(l.target);
            neighbors[l.target].push(l.from);
        }
    }
    let mut best = columns.to_vec();
    let mut best_crossings = crossings(columns, column_of, &neighbors);
    for _ in 0..3 {
        for c in 1..columns.len() {
            sweep(columns, c, c - 1, column_of, &neighbors);
        }
        for c in (0..columns.len().saturating_sub(1)).rev() {
            sweep(columns, c, c + 1, column_of, &neighbors);
        }
        let x = crossings(columns, column_of, &neighbors);
        if x < best_crossings {
            best_crossings = x;
            best = columns.to_vec();
        }
    }
    columns.clone_from_slice(&best);
}

/// Centered position of each table in its column (so columns of different lengths compare).
fn centered(columns: &[Vec<usize>], n: usize) -> Vec<f64> {
    let mut pos = vec![0.0; n];
    for col in columns {
        let mid = (col.len() as f64 - 1.0) / 2.0;
        for (i, &t) in col.iter().enumerate() {
            pos[t] = i as f64 - mid;
        }
    }
    pos
}

fn sweep(
    columns: &mut [Vec<usize>],
    c: usize,
    reference: usize,
    column_of: &[usize],
    neighbors: &[Vec<usize>],
) {
    let pos = centered(columns, column_of.len());
    let mut keyed: Vec<(f64, usize)> = columns[c]
        .iter()
        .map(|&t| {
            let ns: Vec<f64> = neighbors[t]
                .iter()
                .filter(|&&u| column_of[u] == reference)
                .map(|&u| pos[u])
                .collect();
            let bary = if ns.is_empty() {
                pos[t]
            } else {
                ns.iter().sum::<f64>() / ns.len() as f64
            };
            (bary, t)
        })
        .collect();
    // Stable: ties keep their current order.
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    columns[c] = keyed.into_iter().map(|(_, t)| t).collect();
}

/// Crossings between edges of adjacent columns.
fn crossings(columns: &[Vec<usize>], column_of: &[usize], neighbors: &[Vec<usize>]) -> usize {
    let mut index = vec![0usize; column_of.len()];
    for col in columns {
        for (i, &t) in col.iter().enumerate() {
            index[t] = i;
        }
    }
    let mut total = 0;
    for (c, pair) in columns.windows(2).enumerate() {
        let mut edges = Vec::new();
        for &t in &pair[0] {
            for &u in &neighbors[t] {
                if column_of[u] == c + 1 {
                    edges.push((index[t], index[u]));
                }
            }
        }
        for (i, a) in edges.iter().enumerate() {
            for b in &edges[i + 1..] {
                if (a.0 < b.0 && a.1 > b.1) || (a.0 > b.0 && a.1 < b.1) {
                    total += 1;
                }
            }
        }
    }
    total
}

/// End points of each edge: `(link index, 0 = from | 1 = target)` → `(x, y, side)`. Ends on
/// the same side of a box are spread along it, ordered by where the other end is, so
/// parallel links and self-links get distinct, non-crossing ports.
fn ports(layout: &Layout, links: &[(usize, &Link)]) -> BTreeMap<(usize, u8), Port> {
    let center_y = |t: usize| layout.at[t].1 + BOX_H / 2.0;
    // (table, side) -> [(y of the other end, link index, end)]
    let mut slots: Slots = BTreeMap::new();
    for &(k, l) in links {
        let (sf, st) = if l.from == l.target {
            (Side::Right, Side::Right)
        } else {
            match layout.column_of[l.from].cmp(&layout.column_of[l.target]) {
                Ordering::Less => (Side::Right, Side::Left),
                Ordering::Equal => (Side::Right, Side::Right),
                Ordering::Greater => (Side::Left, Side::Right),
            }
        };
        slots
            .entry((l.from, sf))
            .or_default()
            .push((center_y(l.target), k, 0));
        slots
            .entry((l.target, st))
            .or_default()
            .push((center_y(l.from), k, 1));
    }
    let mut out = BTreeMap::new();
    for ((t, side), mut ends) in slots {
        ends.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let (x, y) = layout.at[t];
        let px = match side {
            Side::Left => x,
            Side::Right => x + layout.box_w,
        };
        // Ports use the middle 80% of the side.
        let m = ends.len() as f64;
        for (j, &(_, k, end)) in ends.iter().enumerate() {
            let py = y + BOX_H * 0.1 + BOX_H * 0.8 * (j as f64 + 1.0) / (m + 1.0);
            out.insert((k, end), (px, py, side));
        }
    }
    out
}

/// A port: where an edge meets a box.
type Port = (f64, f64, Side);

/// The edge ends attached to each side of each box.
type Slots = BTreeMap<(usize, Side), Vec<(f64, usize, u8)>>;

/// A cubic path between two ports.
fn path(self_link: bool, a: Port, b: Port) -> String {
    let (x1, y1, s1) = a;
    let (x2, y2, s2) = b;
    let (c1x, c1y, c2x, c2y) = if self_link {
        (x1 + 44.0, y1 - 16.0, x2 + 44.0, y2 + 16.0)
    } else {
        match (s1, s2) {
            (Side::Right, Side::Left) => {
                let dx = (x2 - x1) / 2.0;
                (x1 + dx, y1, x2 - dx, y2)
            }
            (Side::Left, Side::Right) => {
                let dx = ((x1 - x2) / 2.0).max(30.0);
                (x1 - dx, y1, x2 + dx, y2)
            }
            // Same column: bulge out to the right.
            _ => {
                let bulge = (24.0 + (y2 - y1).abs() * 0.2).min(COL_GAP * 0.4);
                (x1 + bulge, y1, x2 + bulge, y2)
            }
        }
    };
    format!(
        "M{},{} C{},{} {},{} {},{}",
        num(x1),
        num(y1),
        num(c1x),
        num(c1y),
        num(c2x),
        num(c2y),
        num(x2),
        num(y2)
    )
}

/// The legend at `top`, wrapped to `width`; returns the markup and its height.
fn legend(width: f64, top: f64) -> (String, f64) {
    const ROW_H: f64 = 22.0;
    const SWATCH: f64 = 36.0;
    const SIZE: f64 = 12.0;
    enum Item {
        Box(bool, &'static str),
        Line(EdgeKind),
    }
    let items = [
        Item::Box(true, "table with identity columns"),
        Item::Box(false, "other table"),
        Item::Line(EdgeKind::ForeignKey),
        Item::Line(EdgeKind::Polymorphic),
        Item::Line(EdgeKind::Copy),
    ];
    let mut out = String::from(r#"<g class="legend">"#);
    let (mut x, mut y) = (MARGIN, top);
    for item in items {
        let label = match &item {
            Item::Box(_, l) => *l,
            Item::Line(k) => k.legend(),
        };
        let item_w = SWATCH + 8.0 + text_width(label, SIZE * SMALL_EM) + 24.0;
        if x > MARGIN && x + item_w > width - MARGIN {
            x = MARGIN;
            y += ROW_H;
        }
        let mid = y + ROW_H / 2.0;
        match item {
            Item::Box(identity, _) => {
                let (fill, stroke, sw) = if identity {
                    (ID_FILL, ID_STROKE, "2")
                } else {
                    (BOX_FILL, BOX_STROKE, "1")
                };
                let _ = write!(
                    out,
                    r#"<rect x="{}" y="{}" width="{}" height="14" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>"#,
                    num(x + 4.0),
                    num(mid - 7.0),
                    num(SWATCH - 8.0),
                );
            }
            Item::Line(kind) => {
                let _ = write!(
                    out,
                    r#"<path class="legend-edge {class}" d="M{},{} H{}" fill="none" stroke="{stroke}" {attrs} marker-end="url(#dm-arrow-{class})"/>"#,
                    num(x),
                    num(mid),
                    num(x + SWATCH),
                    class = kind.class(),
                    stroke = kind.stroke(),
                    attrs = kind.line_attrs(),
                );
            }
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" font-size="{}" fill="{TEXT}">{}</text>"#,
            num(x + SWATCH + 8.0),
            num(mid + 4.0),
            num(SIZE),
            escape(label),
        );
        x += item_w;
    }
    out.push_str("</g>");
    (out, y + ROW_H - top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn demo() -> DataMap {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        crate::policy::load_dir(&dir)
            .expect("demo policy loads")
            .datamap
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    /// Tags balance (a light well-formedness check) and every attribute value is quoted.
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        assert!(svg.starts_with("<svg "), "no prolog, starts with <svg");
        while let Some(open) = rest.find('<') {
            assert!(
                !rest[..open].contains('>'),
                "stray '>' in text: {:?}",
                &rest[..open]
            );
            let close = rest[open..].find('>').expect("tag closes") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            assert_eq!(count(tag, "\"") % 2, 0, "unbalanced quotes in {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "closing {name}");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("tag name");
                stack.push(name.to_string());
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(rest.is_empty(), "text after </svg>");
        // Entities: only the ones escape() writes.
        for (i, _) in svg.match_indices('&') {
            let ent = &svg[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "bare & at {i}"
            );
        }
    }

    #[test]
    fn demo_map_renders_every_table_and_link() {
        let map = demo();
        assert_eq!(map.tables.len(), 14);
        let svg = svg(&map);
        assert_well_formed(&svg);
        assert_eq!(
            count(&svg, "<g class=\"table\">") + count(&svg, "<g class=\"table identity\">"),
            map.tables.len()
        );
        for t in &map.tables {
            assert_eq!(
                count(
                    &svg,
                    &format!(" font-weight=\"bold\" fill=\"{TEXT}\">{}</text>", t.name)
                ),
                1,
                "{}",
                t.name
            );
        }
        let identity = map
            .tables
            .iter()
            .filter(|t| !t.identities.is_empty())
            .count();
        assert_eq!(count(&svg, "<g class=\"table identity\">"), identity);
        assert_eq!(count(&svg, "<path class=\"edge "), map.links.len());
        let poly = map.links.iter().filter(|l| l.polymorphic.is_some()).count();
        let copy = map
            .links
            .iter()
            .filter(|l| l.polymorphic.is_none() && l.is_copy(&map))
            .count();
        assert_eq!(poly, 5);
        assert_eq!(copy, 1);
        assert_eq!(count(&svg, "<path class=\"edge polymorphic\""), poly);
        assert_eq!(count(&svg, "<path class=\"edge copy\""), copy);
        assert_eq!(
            count(&svg, "<path class=\"edge fk\""),
            map.links.len() - poly - copy
        );
        assert!(svg.contains(&format!(
            "<title id=\"dm-title\">Data map: 14 tables, {} links</title>",
            map.links.len()
        )));
        assert!(svg.contains("role=\"img\" aria-labelledby=\"dm-title dm-desc\""));
        assert!(svg.contains("<title>contacts.id → deals.contact_id</title>"));
        assert!(svg.contains(
            "<title>contacts.id → activities.parent_id where activities.parent_type = &#39;Contact&#39;</title>"
        ));
        assert!(svg.contains("contacts.customer_no → invoices.customer_no (copied value)"));
        assert!(svg.contains("where companies.is_sole_trader = true"));
        // The description lists every link.
        let desc = &svg[svg.find("<desc").expect("desc")..svg.find("</desc>").expect("desc")];
        for l in &map.links {
            assert!(desc.contains(&escape(&describe_link(&map, l))));
        }
        // Legend.
        for label in [
            "table with identity columns",
            "foreign key",
            "polymorphic (type column)",
            "copied value",
        ] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        // CSP: presentation attributes only.
        assert!(!svg.contains("<style"));
        assert!(!svg.contains("style="));
        assert!(svg.contains("width=\"100%\""));
        assert!(svg.contains("viewBox=\"0 0 "));
    }

    #[test]
    fn output_is_deterministic() {
        let map = demo();
        assert_eq!(svg(&map), svg(&map));
        assert_eq!(svg(&map), svg(&demo()));
    }

    #[test]
    fn layers_start_at_identity_tables() {
        let map = demo();
        let l = layout(&map);
        let col = |name: &str| l.column_of[map.table_idx(name).expect("table")];
        assert_eq!(l.column_of.iter().max(), Some(&2));
        for t in [
            "contacts",
            "leads",
            "tickets",
            "newsletter_subscriptions",
            "employees",
        ] {
            assert_eq!(col(t), 0, "{t}");
        }
        for t in ["deals", "companies", "notes", "ticket_messages", "invoices"] {
            assert_eq!(col(t), 1, "{t}");
        }
        assert_eq!(col("invoice_lines"), 2);
        // Boxes do not overlap.
        for (i, a) in l.at.iter().enumerate() {
            for b in &l.at[i + 1..] {
                assert!(
                    (a.0 - b.0).abs() >= l.box_w || (a.1 - b.1).abs() >= BOX_H,
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn unreachable_tables_self_links_and_parallel_links() {
        let mut map = demo();
        let employees = map.table_idx("employees").expect("employees");
        let contacts = map.table_idx("contacts").expect("contacts");
        let deals = map.table_idx("deals").expect("deals");
        let plain = |map: &DataMap, from: usize, target: usize, on: (&str, &str)| {
            let mut l = map.links[0].clone();
            l.from = from;
            l.target = target;
            l.on = vec![(on.0.to_string(), on.1.to_string())];
            l.polymorphic = None;
            l.conditions.clear();
            l.label = None;
            l.compare = Compare::Exact;
            l
        };
        // Nothing reaches employees once it has no identity columns: it goes last.
        map.tables[employees].identities.clear();
        let self_link = plain(&map, deals, deals, ("parent_deal_id", "id"));
        map.links.push(self_link);
        // A second, parallel contacts -> deals link.
        let twin = plain(&map, contacts, deals, ("referrer_id", "id"));
        map.links.push(twin);
        // A link from the unreachable last column back to column 0.
        let back = plain(&map, employees, contacts, ("owner_id", "id"));
        map.links.push(back);

        let l = layout(&map);
        let last = l.column_of.iter().max().copied();
        assert_eq!(last, Some(3));
        assert_eq!(l.column_of[employees], 3);
        assert_eq!(l.column_of.iter().filter(|&&c| c == 3).count(), 1);
        let svg = svg(&map);
        assert_well_formed(&svg);
        assert_eq!(count(&svg, "<path class=\"edge "), map.links.len());
        // Every edge has its own geometry.
        let ds: Vec<&str> = svg
            .split("<path class=\"edge ")
            .skip(1)
            .filter_map(|p| p.split("d=\"").nth(1))
            .filter_map(|p| p.split('"').next())
            .collect();
        assert_eq!(ds.len(), map.links.len());
        let distinct: BTreeSet<&str> = ds.iter().copied().collect();
        assert_eq!(distinct.len(), ds.len());
        assert!(svg.contains("<title>deals.id → deals.parent_deal_id</title>"));
        assert!(svg.contains("<title>contacts.id → deals.referrer_id</title>"));
        assert!(svg.contains("<title>employees.id → contacts.owner_id</title>"));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"a<&>"'b"#),
            "a&lt;&amp;&gt;&quot;&#39;b".to_string()
        );
        assert_eq!(escape("plain → ok"), "plain → ok");
        let mut map = demo();
        map.tables[0].name = "evil<&>\"'".into();
        map.tables[0].label = "<script>alert(1)</script>".into();
        let svg = svg(&map);
        assert_well_formed(&svg);
        assert!(svg.contains(">evil&lt;&amp;&gt;&quot;&#39;</text>"));
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("evil<"));
    }

    #[test]
    fn empty_and_tiny_maps() {
        let mut map = demo();
        map.links.clear();
        let keep = map.table_idx("contacts").expect("contacts");
        let t = map.tables[keep].clone();
        map.tables = vec![t];
        map.table_index = [("contacts".to_string(), 0)].into_iter().collect();
        let s = svg(&map);
        assert_well_formed(&s);
        assert!(s.contains("Data map: 1 table, 0 links"));
        assert!(s.contains("No links."));
        map.tables.clear();
        map.table_index.clear();
        let s = svg(&map);
        assert_well_formed(&s);
        assert!(s.contains("Data map: 0 tables, 0 links"));
    }

    #[test]
    fn long_names_are_shortened() {
        assert_eq!(fit("short", 100.0, 10.0), "short");
        assert_eq!(fit("abcdefghijkl", 50.0, 10.0), "abcd…");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.25), "1.3");
        assert_eq!(num(-0.04), "0");
        assert_eq!(num(-2.5), "-2.5");
    }
}
