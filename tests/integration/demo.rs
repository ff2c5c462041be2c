//! The first README command, run as a user would: `lethe demo` in an empty directory serves
//! the API, the printed token works, the tour's requests return Jane Doe's export, and
//! SIGTERM stops it cleanly. A second start reuses the data and prints a new token.

use crate::support::client;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `lethe demo` and returns the child and the printed token once it serves.
fn start_demo(dir: &std::path::Path, port: u16) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args([
            "demo",
            "--contacts",
            "200",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir)
        .env("LETHE_LOG", "warn")
        .env_remove("LETHE_DATA_DIR")
        .env_remove("LETHE_POLICY_DIR")
        .env_remove("LETHE_STORE_URL")
        .env_remove("LETHE_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn lethe demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut token = String::new();
    let mut take_next = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if take_next {
            token = line.trim().to_string();
            take_next = false;
        }
        if line.starts_with("demo officer token") {
            take_next = true;
        }
        let done = line.starts_with("serving on");
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(token.starts_with("lethe_"), "no token in {lines:?}");
    (child, token, lines)
}

async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client().get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("demo did not become ready");
}

fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "lethe demo exited with {status} after SIGTERM"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lethe demo did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_readme_tour() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, token, lines) = start_demo(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        lines.iter().any(|l| l.starts_with("created demo CRM")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("curl")),
        "example commands missing: {lines:?}"
    );
    wait_ready(&base).await;

    let http = client();
    let create: Value = http
        .post(format!("{base}/api/v1/requests"))
        .bearer_auth(&token)
        .json(&json!({"kind": "access", "regime": "gdpr", "identities": {"email": " Jane.Doe@Example.com"}, "channel": "email"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = create["id"].as_str().expect("id").to_string();
    let r = http
        .post(format!("{base}/api/v1/requests/{id}/verify"))
        .bearer_auth(&token)
        .json(&json!({"method": "email_confirmation"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = http
        .post(format!("{base}/api/v1/requests/{id}/run"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let export: Value = http
        .get(format!("{base}/api/v1/requests/{id}/export"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["summary"]["records"], 26, "{export}");
    assert_eq!(export["summary"]["tables"], 12);
    stop(&mut child);

    // The data directory is complete and reused; the key file is private.
    let data = dir.path().join("lethe-data");
    for f in [
        "demo-crm.sqlite3",
        "lethe.sqlite3",
        "master.key",
        "policies/datamap.toml",
    ] {
        assert!(data.join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (mut child, token2, lines) = start_demo(dir.path(), port);
    assert_ne!(token, token2);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("using the existing demo CRM")),
        "{lines:?}"
    );
    wait_ready(&base).await;
    // The earlier request is still there.
    let r = http
        .get(format!("{base}/api/v1/requests/{id}"))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    stop(&mut child);
}
