//! The web UI end to end in headless Chromium (Debian's package, driven by chromedriver):
//! an officer signs in, records an erasure request, verifies the requester, plans, reviews
//! and approves the plan, executes it and opens the certificate; an auditor verifies that
//! certificate (uploaded, then tampered with) and checks the audit log. Each step saves a
//! screenshot under `target/e2e/browser_ui_journey/` and asserts on what the page says.

use crate::browser::Browser;
use crate::support::{TestApp, client};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// axe-core (from npm; `.ci/run` installs it and sets `LETHE_TEST_AXE` to `axe.min.js`).
fn axe_source() -> Option<String> {
    match std::env::var("LETHE_TEST_AXE") {
        Ok(p) if !p.is_empty() => {
            Some(std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("LETHE_TEST_AXE={p}: {e}")))
        }
        _ => {
            assert!(
                std::env::var("LETHE_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "LETHE_TEST_REQUIRE_BROWSER=1 needs LETHE_TEST_AXE (axe-core's axe.min.js, \
                 `npm install axe-core`) for the accessibility checks"
            );
            None
        }
    }
}

/// Runs axe-core's WCAG 2.1 A/AA rules on the current page; returns the violations.
async fn axe_violations(b: &Browser, src: &str) -> Vec<serde_json::Value> {
    let script = format!(
        "{src}\nreturn axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', \
         'wcag21a', 'wcag21aa']}}, resultTypes: ['violations']}}).then(function (r) {{ return \
         r.violations.map(function (v) {{ return {{id: v.id, impact: v.impact, help: v.help, \
         nodes: v.nodes.slice(0, 3).map(function (n) {{ return n.target.join(' '); }})}}; }}); }});"
    );
    let v = b.execute(&script, vec![]).await;
    v.as_array()
        .cloned()
        .unwrap_or_else(|| panic!("axe-core did not run: {v}"))
}

/// Any WCAG 2.1 A/AA violation on the current page fails the test.
async fn accessible(b: &Browser, axe: &Option<String>, page: &str) {
    let Some(src) = axe else {
        return;
    };
    let found = axe_violations(b, src).await;
    assert!(
        found.is_empty(),
        "{page}: WCAG 2.1 A/AA violations (axe-core): {}",
        serde_json::to_string_pretty(&found).unwrap_or_default()
    );
}

async fn sign_in(b: &Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/")).await;
    b.wait_for_url("/sign-in", WAIT).await;
    assert!(b.body_text().await.contains("Sign in to lethe"));
    b.fill("#token", token).await;
    b.click("form[action='/sign-in'] button[type='submit']")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_ui_journey() {
    let t = TestApp::builder().build();
    let base = t.serve().await;
    let Some(b) = Browser::start("browser_ui_journey").await else {
        return;
    };
    let axe = axe_source();

    // 1. Sign in as an officer: the token becomes an HttpOnly, SameSite=Strict cookie.
    sign_in(&b, &base, "lethe_wrong_token").await;
    b.wait_for_text("not valid", WAIT).await;
    b.screenshot("sign-in-refused").await;
    accessible(&b, &axe, "sign-in").await;
    b.fill("#token", &t.officer).await;
    b.click("form[action='/sign-in'] button[type='submit']")
        .await;
    b.wait_for_url("/dashboard", WAIT).await;
    let text = b.body_text().await;
    assert!(text.contains("Dashboard") && text.contains("Open requests by deadline"));
    assert!(text.contains("Retention"), "the dashboard shows retention");
    let cookies = b.cookies().await;
    let session = cookies
        .iter()
        .find(|c| c.name == "lethe_session")
        .expect("session cookie");
    assert!(session.http_only, "session cookie must be HttpOnly");
    assert_eq!(session.same_site.as_deref(), Some("Strict"));
    assert!(session.expiry.is_some(), "session cookie has an expiry");
    assert!(
        !b.page_source().await.contains(&t.officer),
        "the token never reaches a page"
    );
    b.screenshot("dashboard").await;
    accessible(&b, &axe, "dashboard").await;
    if let Some(src) = &axe {
        // The check can fail: an input without a label is reported.
        b.execute(
            "document.querySelector('main').appendChild(document.createElement('input'));",
            vec![],
        )
        .await;
        let found = axe_violations(&b, src).await;
        assert!(found.iter().any(|v| v["id"] == "label"), "{found:?}");
        b.refresh().await;
    }

    // 2. Record an erasure request through the intake form.
    b.click("a[href='/requests/new']").await;
    b.wait_for_text("Who is asking", WAIT).await;
    b.select("#kind", "erasure").await;
    b.select("#regime", "gdpr").await;
    b.fill("#id_email", "jane.doe@example.com").await;
    b.fill("#note", "Asked by e-mail to be forgotten").await;
    b.screenshot("intake-form").await;
    accessible(&b, &axe, "intake form").await;
    b.click("form[action='/requests'] button[type='submit']")
        .await;
    b.wait_for_text("Request recorded", WAIT).await;
    let request_url = b.current_url().await;
    let request_id = request_url
        .rsplit('/')
        .next()
        .and_then(|s| s.split('?').next())
        .expect("request id in the URL")
        .to_string();
    let text = b.body_text().await;
    assert!(text.contains("Erasure request"), "{text}");
    assert!(text.contains("received"));
    assert!(
        text.contains("jane.doe@example.com"),
        "officers see the identity"
    );
    b.screenshot("request-received").await;

    // 3. Verify the requester's identity.
    b.select("#v-method", "document_check").await;
    b.fill("#v-note", "Passport checked").await;
    b.click("#verify-form button[type='submit']").await;
    b.wait_for_text("Identity verified.", WAIT).await;
    assert!(
        b.body_text().await.contains("Document check")
            || b.body_text().await.contains("document_check")
    );
    b.screenshot("verified").await;

    // 4. Run: trace the person and plan the erasure; review the plan.
    b.click("#plan-form button[type='submit']").await;
    b.wait_for_text("Erasure plan ready for review", WAIT).await;
    let text = b.body_text().await;
    assert!(text.contains("What happens to each table"), "{text}");
    assert!(
        text.contains("contacts"),
        "the plan covers the contacts table"
    );
    assert!(
        text.to_lowercase().contains("found via"),
        "the footprint shows the path"
    );
    assert!(b.exists("#footprint details").await);
    b.execute("document.getElementById('plan').scrollIntoView()", vec![])
        .await;
    b.screenshot("plan-review").await;
    accessible(&b, &axe, "request page with plan").await;

    // 5. Approve the plan.
    b.fill("#ap-note", "Reviewed: nothing under a hold").await;
    b.click("#approve-form button[type='submit']").await;
    b.wait_for_text("Plan approved", WAIT).await;
    b.screenshot("approved").await;

    // 6. Execute (the page asks for confirmation first).
    b.click("#execute-form button[type='submit']").await;
    let asked = b.alert_text().await.unwrap_or_default();
    assert!(asked.contains("cannot be undone"), "confirmation: {asked}");
    b.accept_alert().await;
    b.wait_for_text("Executed and verified.", WAIT).await;
    let text = b.body_text().await;
    assert!(text.contains("completed"), "{text}");
    b.screenshot("executed").await;

    // 7. Open the certificate from the request page.
    b.click("a[href^='/certificates/']").await;
    b.wait_for_text("Signature valid", WAIT).await;
    let text = b.body_text().await;
    assert!(text.contains("Erasure certificate"));
    assert!(text.contains("Post-erasure verification: passed"), "{text}");
    assert!(text.contains("Results") && text.contains("contacts"));
    assert!(
        !text.contains("jane.doe@example.com"),
        "no identity value in a certificate"
    );
    let cert_url = b.current_url().await;
    let cert_id = cert_url.rsplit('/').next().unwrap().to_string();
    b.screenshot("certificate").await;
    accessible(&b, &axe, "certificate").await;
    b.execute("document.querySelector('table').scrollIntoView()", vec![])
        .await;
    b.screenshot("certificate-results").await;

    // The signed certificate as the officer would download it.
    let jws = client()
        .get(format!("{base}/api/v1/certificates/{cert_id}/jws"))
        .bearer_auth(&t.auditor)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{cert_id}.jws.json"));
    std::fs::write(&file, &jws).unwrap();

    // 8. Sign out; an auditor signs in and lands on the certificates.
    b.click("form[action='/sign-out'] button").await;
    b.wait_for_url("/sign-in", WAIT).await;
    sign_in(&b, &base, &t.auditor).await;
    b.wait_for_url("/certificates", WAIT).await;
    let text = b.body_text().await;
    assert!(text.contains(&cert_id), "the auditor sees the certificate");
    assert!(
        !b.exists("a[href='/dashboard']").await,
        "no officer navigation for auditors"
    );
    b.screenshot("auditor-certificates").await;

    // 9. Verify the certificate on the auditor page: upload it.
    b.click("a[href='/verify']").await;
    b.wait_for_text("Verify a certificate", WAIT).await;
    b.upload("#file", &file).await;
    b.click("form[action='/verify'] button[type='submit']")
        .await;
    b.wait_for_text("Valid certificate", WAIT).await;
    let text = b.body_text().await;
    assert!(
        text.contains(&request_id),
        "the verified payload names the request"
    );
    b.screenshot("verify-valid").await;
    accessible(&b, &axe, "verify").await;

    // A tampered copy (one count changed in the payload) is rejected, with the reason.
    let mut v: serde_json::Value = serde_json::from_str(&jws).unwrap();
    let payload = v["payload"].as_str().unwrap().to_string();
    let flipped = if payload.starts_with('e') { "f" } else { "e" };
    v["payload"] = serde_json::Value::String(format!("{flipped}{}", &payload[1..]));
    b.goto(&format!("{base}/verify")).await;
    b.fill("#jws", &v.to_string()).await;
    b.click("form[action='/verify'] button[type='submit']")
        .await;
    b.wait_for_text("Invalid certificate", WAIT).await;
    assert!(b.body_text().await.contains("Why:"));
    b.screenshot("verify-tampered").await;

    // 10. The audit log: chain intact, the erasure's entries listed.
    b.click("a[href='/audit']").await;
    b.wait_for_text("Chain intact", WAIT).await;
    let text = b.body_text().await;
    assert!(
        text.contains(&request_id),
        "the log shows the request's entries"
    );
    assert!(
        !text.contains("jane.doe@example.com"),
        "no identity value in the audit log"
    );
    b.screenshot("audit-log").await;
    accessible(&b, &axe, "audit log").await;

    // 11. Reports and the data map.
    b.click("a[href='/reports']").await;
    b.wait_for_text("Request metrics", WAIT).await;
    let text = b.body_text().await.to_lowercase();
    assert!(
        text.contains("median days to respond") && text.contains("erasure"),
        "{text}"
    );
    b.screenshot("reports").await;
    accessible(&b, &axe, "reports").await;
    b.click("a[href='/data-map']").await;
    b.wait_for_text("How the tables link", WAIT).await;
    assert!(
        b.exists("svg[role='img']").await,
        "the data map graph is drawn"
    );
    b.screenshot("data-map").await;
    accessible(&b, &axe, "data map").await;

    // 12. Officer pages stay closed to the auditor, even by URL.
    b.goto(&format!("{base}/requests/{request_id}")).await;
    b.wait_for_text("Not allowed", WAIT).await;
    assert!(b.body_text().await.contains("for privacy officers"));
    b.screenshot("auditor-forbidden").await;
    accessible(&b, &axe, "403 page").await;
}
