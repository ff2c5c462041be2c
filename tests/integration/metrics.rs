//! `/metrics` over real HTTP: its authentication (any API token or `LETHE_METRICS_TOKEN`),
//! the exposition format, and figures that match the store after requests, an overdue
//! request, a retention run and the jobs that ran; labels carry route templates, never ids
//! or identities.

use crate::support::{TestApp, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const METRICS_TOKEN: &str = "metrics-scraper-secret-0123456789";

/// The value of the series `series` (name and labels exactly as written).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

async fn post_json(http: &reqwest::Client, token: &str, url: String, body: Value) -> Value {
    let r = http
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_report_the_store_and_this_process() {
    let t = TestApp::builder()
        .configure(|c| c.metrics_token = Some(METRICS_TOKEN.into()))
        .build();
    let base = t.serve().await;
    let http = client();
    let post = |url: String, body: Value| post_json(&http, &t.officer, url, body);
    let url = |p: &str| format!("{base}{p}");

    // Two requests: one received long ago (overdue), one today.
    let old = post(
        url("/api/v1/requests"),
        json!({"kind": "access", "regime": "gdpr", "identities": {"email": "jane.doe@example.com"}, "received_at": "2020-01-06"}),
    )
    .await;
    let old_id = old["id"].as_str().unwrap().to_string();
    post(
        url("/api/v1/requests"),
        json!({"kind": "erasure", "regime": "ccpa", "identities": {"email": "max@mustermann-it.example"}}),
    )
    .await;
    let r = http
        .get(url(&format!("/api/v1/requests/{old_id}")))
        .bearer_auth(&t.auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A retention run, to its end.
    post(
        url("/api/v1/retention/runs"),
        json!({"rule": "web_sessions"}),
    )
    .await;
    let mut run = None;
    for _ in 0..200 {
        let runs = t
            .app
            .store
            .read(|c| lethe::store::retention::runs(c, Some("web_sessions"), 1))
            .unwrap();
        if let Some(r) = runs.into_iter().next().filter(|r| r.finished_at.is_some()) {
            run = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let run = run.expect("the retention run finished");
    assert!(run.rows_deleted > 0, "the demo has expired web sessions");

    // Authentication: none, a wrong token, the dedicated token, any API token.
    let scrape = |token: Option<&str>| {
        let mut req = http.get(url("/metrics"));
        if let Some(tok) = token {
            req = req.bearer_auth(tok);
        }
        req.send()
    };
    assert_eq!(
        scrape(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scrape(Some("metrics-scraper-secret-0123456780"))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let by_auditor = scrape(Some(&t.auditor)).await.unwrap();
    assert_eq!(by_auditor.status(), StatusCode::OK);
    let resp = scrape(Some(METRICS_TOKEN)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();

    // The format: HELP and TYPE for every family, every sample line `name{labels} value`.
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert!(helps >= 14 && helps == types, "{helps} HELP, {types} TYPE");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, v) = line.rsplit_once(' ').expect("value");
        assert!(
            v.parse::<f64>().is_ok() || v == "+Inf" || v == "NaN",
            "{line}"
        );
        assert!(series.starts_with("lethe_"), "{line}");
        assert!(
            !series.contains('{') || series.ends_with('}'),
            "labels close the series: {line}"
        );
    }

    // Store figures.
    for (series, want) in [
        ("lethe_requests{state=\"received\",kind=\"access\"}", 1.0),
        ("lethe_requests{state=\"received\",kind=\"erasure\"}", 1.0),
        ("lethe_requests{state=\"completed\",kind=\"access\"}", 0.0),
        ("lethe_requests_overdue", 1.0),
        ("lethe_store_up", 1.0),
        (
            "lethe_retention_rows_processed_total{rule=\"web_sessions\",outcome=\"deleted\"}",
            run.rows_deleted as f64,
        ),
        (
            "lethe_retention_rows_processed_total{rule=\"web_sessions\",outcome=\"anonymized\"}",
            run.rows_anonymized as f64,
        ),
        (
            "lethe_retention_runs{rule=\"web_sessions\",status=\"completed\"}",
            1.0,
        ),
        (
            "lethe_retention_run_duration_seconds_count{rule=\"web_sessions\"}",
            1.0,
        ),
        ("lethe_jobs{kind=\"retention.run\",state=\"queued\"}", 0.0),
        (
            "lethe_jobs{kind=\"request.execute\",state=\"running\"}",
            0.0,
        ),
        ("lethe_jobs_retrying{kind=\"notify\"}", 0.0),
        (
            "lethe_job_duration_seconds_count{kind=\"retention.run\",outcome=\"done\"}",
            1.0,
        ),
    ] {
        assert_eq!(value(&text, series), Some(want), "{series}\n{text}");
    }
    // This process's HTTP requests, by route template.
    for series in [
        "lethe_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/requests\",status_class=\"2xx\"}",
        "lethe_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/requests/{id}\",status_class=\"2xx\"}",
        "lethe_http_request_duration_seconds_count{method=\"GET\",route=\"/metrics\",status_class=\"4xx\"}",
    ] {
        assert!(
            value(&text, series).is_some_and(|v| v >= 1.0),
            "{series}\n{text}"
        );
    }
    assert_eq!(
        value(
            &text,
            "lethe_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/requests\",status_class=\"2xx\"}"
        ),
        Some(2.0)
    );
    assert!(text.contains("lethe_build_info{version=\""));
    assert!(value(&text, "lethe_process_start_time_seconds").is_some_and(|v| v > 1.7e9));
    // No ids, identities or tokens in any label.
    for needle in [
        old_id.as_str(),
        "jane.doe",
        "mustermann",
        METRICS_TOKEN,
        t.officer.as_str(),
    ] {
        assert!(!text.contains(needle), "{needle} in the metrics");
    }
}
