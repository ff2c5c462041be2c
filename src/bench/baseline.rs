//! Hand-written SQL for the demo CRM: what a developer who knows the schema would write to
//! fetch one contact's rows. It is the benchmark's baseline and an independent oracle for
//! the tracer in the tests (it knows nothing of the data map).

use crate::source::{SourceConn, SourceError, Sql, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Row ids per table.
pub type RowIds = BTreeMap<&'static str, BTreeSet<i64>>;

fn ids(rows: &[Vec<Value>]) -> BTreeSet<i64> {
    rows.iter()
        .filter_map(|r| r.first().and_then(Value::as_int))
        .collect()
}

fn list(sql: &mut Sql, ids: &BTreeSet<i64>) {
    let v: Vec<Value> = ids.iter().map(|i| Value::Int(*i)).collect();
    sql.in_list(&v, None);
}

/// All rows of the contact with this (normalized) e-mail address, fetched with full rows
/// (`SELECT *`), in one read transaction: 13 statements.
pub fn contact_rows(conn: &mut SourceConn, email: &str) -> Result<RowIds, SourceError> {
    conn.transaction(false, |conn| {
        let d = conn.dialect();
        let mut out: RowIds = BTreeMap::new();
        let mut q = Sql::new(d);
        q.push("SELECT * FROM contacts WHERE email = ")
            .bind(email.into());
        let contacts = conn.query(&q)?;
        let Some(c) = contacts.first() else {
            return Ok(out);
        };
        let cid = c[0].clone();
        let customer_no = c[1].clone();
        let company = c[11].clone();
        out.insert("contacts", ids(&contacts));

        let mut companies = BTreeSet::new();
        if !company.is_null() {
            let mut q = Sql::new(d);
            q.push("SELECT * FROM companies WHERE id = ")
                .bind(company)
                .push(" AND is_sole_trader = ")
                .bind(Value::Bool(true));
            companies = ids(&conn.query(&q)?);
        }

        let mut q = Sql::new(d);
        q.push("SELECT * FROM leads WHERE email = ")
            .bind(email.into())
            .push(" OR converted_contact_id = ")
            .bind(cid.clone());
        out.insert("leads", ids(&conn.query(&q)?));

        let mut q = Sql::new(d);
        q.push("SELECT * FROM deals WHERE contact_id = ")
            .bind(cid.clone());
        let deals = ids(&conn.query(&q)?);

        let mut q = Sql::new(d);
        q.push("SELECT * FROM activities WHERE (parent_type = 'Contact' AND parent_id = ")
            .bind(cid.clone())
            .push(")");
        if !deals.is_empty() {
            q.push(" OR (parent_type = 'Deal' AND parent_id IN ");
            list(&mut q, &deals);
            q.push(")");
        }
        out.insert("activities", ids(&conn.query(&q)?));

        let mut q = Sql::new(d);
        q.push("SELECT * FROM notes WHERE (parent_type = 'Contact' AND parent_id = ")
            .bind(cid.clone())
            .push(")");
        if !deals.is_empty() {
            q.push(" OR (parent_type = 'Deal' AND parent_id IN ");
            list(&mut q, &deals);
            q.push(")");
        }
        if !companies.is_empty() {
            q.push(" OR (parent_type = 'Company' AND parent_id IN ");
            list(&mut q, &companies);
            q.push(")");
        }
        out.insert("notes", ids(&conn.query(&q)?));

        let mut q = Sql::new(d);
        q.push("SELECT * FROM tickets WHERE contact_id = ")
            .bind(cid.clone())
            .push(" OR lower(requester_email) = ")
            .bind(email.into());
        let tickets = ids(&conn.query(&q)?);
        if !tickets.is_empty() {
            let mut q = Sql::new(d);
            q.push("SELECT * FROM ticket_messages WHERE ticket_id IN ");
            list(&mut q, &tickets);
            out.insert("ticket_messages", ids(&conn.query(&q)?));
        }
        out.insert("tickets", tickets);

        let mut q = Sql::new(d);
        q.push("SELECT * FROM invoices WHERE contact_id = ")
            .bind(cid.clone())
            .push(" OR customer_no = ")
            .bind(customer_no);
        let invoices = ids(&conn.query(&q)?);
        if !invoices.is_empty() {
            let mut q = Sql::new(d);
            q.push("SELECT * FROM invoice_lines WHERE invoice_id IN ");
            list(&mut q, &invoices);
            out.insert("invoice_lines", ids(&conn.query(&q)?));
        }
        out.insert("invoices", invoices);

        let mut q = Sql::new(d);
        q.push("SELECT * FROM newsletter_subscriptions WHERE email = ")
            .bind(email.into());
        out.insert("newsletter_subscriptions", ids(&conn.query(&q)?));

        for t in ["consents", "web_sessions"] {
            let mut q = Sql::new(d);
            q.push("SELECT * FROM ")
                .push(t)
                .push(" WHERE contact_id = ")
                .bind(cid.clone());
            out.insert(t, ids(&conn.query(&q)?));
        }
        out.insert("deals", deals);
        out.insert("companies", companies);
        out.retain(|_, v| !v.is_empty());
        Ok(out)
    })
}
