//! A small headless-Chromium harness for the browser (UI) tests: a minimal W3C WebDriver client
//! on `reqwest`, driving Debian's `chromium` through `chromedriver`, both on 127.0.0.1 only.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn browser_ui_sign_in() {
//!     // Returns from the test when chromium is not installed (and not required).
//!     let b = crate::require_browser!("browser_ui_sign_in");
//!     let base = t.serve().await; // any server on 127.0.0.1
//!     b.goto(&format!("{base}/sign-in")).await;
//!     b.fill("#token", "secret").await;
//!     b.click("button[type=submit]").await;
//!     b.wait_for_text("Requests", Duration::from_secs(10)).await;
//!     b.screenshot("signed-in").await; // target/e2e/browser_ui_sign_in/01-signed-in.png
//!     assert!(b.cookie("lethe_session").await.unwrap().http_only);
//! }
//! ```
//!
//! Name browser tests `browser_*`: CI requires at least one test named `*browser*` to pass.
//!
//! * Binaries: `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//!   `chromium-driver`), or `LETHE_CHROMIUM` / `LETHE_CHROMEDRIVER`. When they are missing the
//!   test prints `SKIPPED: install chromium ...` and `Browser::start` returns `None`, unless
//!   `LETHE_TEST_REQUIRE_BROWSER=1` (CI), where that is a failure. A driver or browser that is
//!   installed but does not start is always a failure.
//! * Every CSS-based helper polls for its element (up to [`FIND_TIMEOUT`], see
//!   [`Browser::set_find_timeout`]) and retries on stale or not-yet-interactable elements.
//!   Failures panic with the WebDriver error, the command, the selector, the current URL and the
//!   start of the page text.
//! * Artifacts go to `target/e2e/<test_name>/`: numbered screenshots, `chromedriver.log`, and on
//!   a panic `failure.png` + `failure.html`.
//! * At most `LETHE_BROWSER_PARALLEL` (default 2) browsers run at once in the test binary.
//! * Dropping the `Browser` quits the session, kills chromedriver's process group and any
//!   leftover process of this browser's profile (crashpad handlers included).
#![allow(dead_code)] // The API is for the UI tests; not every test uses every helper.

use reqwest::Method;
use serde_json::{Value, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long CSS-based helpers poll for their element by default.
pub const FIND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long chromedriver may take to answer `/status` with `ready: true`.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// Per-request timeout of WebDriver commands (session creation included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const SKIP_MESSAGE: &str = "SKIPPED: install chromium and chromium-driver to run the browser tests";

const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    // Only 127.0.0.1: no proxy from the environment, and no name resolves but localhost.
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
    "--disable-default-apps",
    "--disable-extensions",
    "--password-store=basic",
];

/// Browsers running at once in this test binary (each is a chromedriver + a chromium).
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let n = std::env::var("LETHE_BROWSER_PARALLEL")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2);
    Arc::new(Semaphore::new(n))
});

// ---------------------------------------------------------------------------------------------
// WebDriver protocol

/// A failed WebDriver command: the transport failed, or the driver answered with an error.
#[derive(Debug, Clone)]
pub enum WdError {
    Transport(String),
    WebDriver {
        status: u16,
        error: String,
        message: String,
    },
}

impl WdError {
    fn is(&self, code: &str) -> bool {
        matches!(self, WdError::WebDriver { error, .. } if error == code)
    }

    /// Errors worth retrying while the page is still changing.
    fn is_transient(&self) -> bool {
        self.is("no such element")
            || self.is("stale element reference")
            || self.is("element not interactable")
            || self.is("element click intercepted")
    }
}

impl fmt::Display for WdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WdError::Transport(e) => write!(f, "transport error: {e}"),
            WdError::WebDriver {
                status,
                error,
                message,
            } => {
                // chromedriver appends a long "(Session info: ...)" and a stacktrace.
                let message = message.lines().next().unwrap_or("");
                write!(f, "WebDriver error `{error}` (HTTP {status}): {message}")
            }
        }
    }
}

/// The connection to one WebDriver session: cheap to clone.
#[derive(Clone)]
struct Wd {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`
    base: String,
    session: String,
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("build the WebDriver HTTP client")
}

async fn wd_request(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, WdError> {
    let mut req = http.request(method.clone(), url);
    if let Some(body) = body {
        req = req.json(body);
    } else if method == Method::POST {
        req = req.json(&json!({}));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| WdError::Transport(format!("{method} {url}: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| WdError::Transport(format!("{method} {url}: reading the answer: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        WdError::Transport(format!(
            "{method} {url}: HTTP {status}, not JSON ({e}): {}",
            snippet(&text, 300)
        ))
    })?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(WdError::WebDriver {
            status: status.as_u16(),
            error: error.to_string(),
            message: value["message"].as_str().unwrap_or("").to_string(),
        });
    }
    if !status.is_success() {
        return Err(WdError::WebDriver {
            status: status.as_u16(),
            error: "unknown error".into(),
            message: snippet(&text, 300),
        });
    }
    Ok(value)
}

impl Wd {
    /// A command on the session: `path` is relative to `/session/{id}` ("" for the session).
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        wd_request(&self.http, method, &url, body.as_ref()).await
    }

    async fn get(&self, path: &str) -> Result<Value, WdError> {
        self.cmd(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, WdError> {
        self.cmd(Method::POST, path, Some(body)).await
    }

    async fn find_once(&self, css: &str) -> Result<Element, WdError> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(self.element(v, css))
    }

    async fn find_all_once(&self, scope: &str, css: &str) -> Result<Vec<Element>, WdError> {
        let v = self
            .post(
                &format!("{scope}/elements"),
                json!({"using": "css selector", "value": css}),
            )
            .await?;
        Ok(v.as_array()
            .map(|a| a.iter().map(|e| self.element(e.clone(), css)).collect())
            .unwrap_or_default())
    }

    fn element(&self, v: Value, css: &str) -> Element {
        let id = v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("WebDriver returned no element reference for `{css}`: {v}"))
            .to_string();
        Element {
            wd: self.clone(),
            id,
            css: css.to_string(),
        }
    }

    async fn body_text(&self) -> Result<String, WdError> {
        let v = self
            .post(
                "/execute/sync",
                json!({
                    "script": "return document.body ? document.body.innerText : '';",
                    "args": [],
                }),
            )
            .await?;
        Ok(v.as_str().unwrap_or("").to_string())
    }

    /// The current URL and the start of the page text, for failure messages (best effort).
    async fn context(&self) -> String {
        let url = match self.get("/url").await {
            Ok(v) => v.as_str().unwrap_or("?").to_string(),
            Err(e) => format!("<unavailable: {e}>"),
        };
        let text = match self.body_text().await {
            Ok(t) => snippet(&t, 600),
            Err(e) => format!("<unavailable: {e}>"),
        };
        format!("\n  at URL: {url}\n  page text: {text}")
    }

    /// Unwraps a command's result, panicking with the command, the selector and the page.
    async fn ok<T>(&self, r: Result<T, WdError>, command: &str, css: Option<&str>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => {
                let on = css.map(|c| format!(" on `{c}`")).unwrap_or_default();
                panic!("browser: {command}{on} failed: {e}{}", self.context().await)
            }
        }
    }
}

fn snippet(s: &str, max: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= max {
        s
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

// ---------------------------------------------------------------------------------------------
// Elements

/// A DOM element found by a CSS selector. Its methods panic on WebDriver errors.
#[derive(Clone)]
pub struct Element {
    wd: Wd,
    id: String,
    css: String,
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Element({} `{}`)", self.id, self.css)
    }
}

impl Element {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{}", self.id, rest)
    }

    async fn try_text(&self) -> Result<String, WdError> {
        let v = self.wd.get(&self.path("/text")).await?;
        Ok(v.as_str().unwrap_or("").to_string())
    }

    async fn try_click(&self) -> Result<(), WdError> {
        self.wd
            .post(&self.path("/click"), json!({}))
            .await
            .map(drop)
    }

    async fn try_clear(&self) -> Result<(), WdError> {
        self.wd
            .post(&self.path("/clear"), json!({}))
            .await
            .map(drop)
    }

    async fn try_send_keys(&self, text: &str) -> Result<(), WdError> {
        self.wd
            .post(&self.path("/value"), json!({"text": text}))
            .await
            .map(drop)
    }

    async fn try_attr(&self, name: &str) -> Result<Option<String>, WdError> {
        let v = self
            .wd
            .get(&self.path(&format!("/attribute/{name}")))
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    async fn try_property(&self, name: &str) -> Result<Value, WdError> {
        self.wd.get(&self.path(&format!("/property/{name}"))).await
    }

    async fn try_bool(&self, what: &str) -> Result<bool, WdError> {
        Ok(self
            .wd
            .get(&self.path(what))
            .await?
            .as_bool()
            .unwrap_or(false))
    }

    async fn check<T>(&self, r: Result<T, WdError>, command: &str) -> T {
        self.wd.ok(r, command, Some(&self.css)).await
    }

    /// The element's visible text (WebDriver "Get Element Text").
    pub async fn text(&self) -> String {
        let r = self.try_text().await;
        self.check(r, "text").await
    }

    pub async fn click(&self) {
        let r = self.try_click().await;
        self.check(r, "click").await
    }

    pub async fn clear(&self) {
        let r = self.try_clear().await;
        self.check(r, "clear").await
    }

    pub async fn send_keys(&self, text: &str) {
        let r = self.try_send_keys(text).await;
        self.check(r, "send keys").await
    }

    /// Clears the field, then types `text`.
    pub async fn fill(&self, text: &str) {
        self.clear().await;
        self.send_keys(text).await;
    }

    /// The HTML attribute (`None` when absent).
    pub async fn attr(&self, name: &str) -> Option<String> {
        let r = self.try_attr(name).await;
        self.check(r, &format!("attribute `{name}`")).await
    }

    /// The DOM property (e.g. `value` of an input as typed, `checked`).
    pub async fn property(&self, name: &str) -> Value {
        let r = self.try_property(name).await;
        self.check(r, &format!("property `{name}`")).await
    }

    pub async fn is_displayed(&self) -> bool {
        let r = self.try_bool("/displayed").await;
        self.check(r, "is displayed").await
    }

    pub async fn is_enabled(&self) -> bool {
        let r = self.try_bool("/enabled").await;
        self.check(r, "is enabled").await
    }

    pub async fn is_selected(&self) -> bool {
        let r = self.try_bool("/selected").await;
        self.check(r, "is selected").await
    }

    pub async fn tag_name(&self) -> String {
        let r = self.wd.get(&self.path("/name")).await;
        let v = self.check(r, "tag name").await;
        v.as_str().unwrap_or("").to_string()
    }

    /// The descendants matching `css` (no waiting).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let r = self.wd.find_all_once(&self.path(""), css).await;
        self.check(r, &format!("find all `{css}` inside")).await
    }
}

// ---------------------------------------------------------------------------------------------
// Cookies

/// A cookie as the browser holds it (WebDriver "Get All Cookies").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    /// "Strict", "Lax" or "None" as chromedriver reports it.
    pub same_site: Option<String>,
    /// Unix seconds; `None` for a session cookie.
    pub expiry: Option<u64>,
}

impl Cookie {
    fn from_json(v: &Value) -> Cookie {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Cookie {
            name: s("name").unwrap_or_default(),
            value: s("value").unwrap_or_default(),
            path: s("path"),
            domain: s("domain"),
            secure: v.get("secure").and_then(Value::as_bool).unwrap_or(false),
            http_only: v.get("httpOnly").and_then(Value::as_bool).unwrap_or(false),
            same_site: s("sameSite"),
            expiry: v.get("expiry").and_then(|e| {
                e.as_u64()
                    .or_else(|| e.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The browser

/// One chromedriver + one headless chromium with a fresh profile, for one test.
pub struct Browser {
    wd: Wd,
    driver: Option<Child>,
    test_name: String,
    dir: PathBuf,
    shots: AtomicUsize,
    find_timeout: Duration,
    profile: TempDir,
    _slot: OwnedSemaphorePermit,
}

fn binary(env: &str, default: &str) -> Result<PathBuf, String> {
    let path = match std::env::var(env) {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(default),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} (set {env} to override)", path.display()))
    }
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "unnamed".into() } else { s }
}

fn driver_supports_allowed_ips(driver: &Path) -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        Command::new(driver)
            .arg("--help")
            .stdin(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).contains("--allowed-ips")
                    || String::from_utf8_lossy(&o.stderr).contains("--allowed-ips")
            })
            .unwrap_or(false)
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port on 127.0.0.1")
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n    ")
}

// Processes. Chromium leaves orphans: its crashpad handlers daemonize (own session, parent
// init) and its zygotes outlive the main process by a moment. Orphans go to the nearest
// "child subreaper", else to PID 1, which in a container may never reap them. So the test
// process makes itself a subreaper, and a `Browser` reaps, by pid, the zombies of exactly the
// processes that carried its profile directory on their command line. No `waitpid(-1)`: the
// children of other tests are left alone.
unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn prctl(option: i32, ...) -> i32;
}
const SIGKILL: i32 = 9;
const WNOHANG: i32 = 1;
const PR_SET_CHILD_SUBREAPER: i32 = 36;

fn sigkill(pid: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        kill(pid, SIGKILL);
    }
}

fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag on this process.
        unsafe {
            prctl(PR_SET_CHILD_SUBREAPER, 1 as std::ffi::c_ulong);
        }
    });
}

/// The live processes whose command line mentions `marker` (this browser's profile dir: every
/// chromium process has `--user-data-dir=<profile>/user-data`, the crashpad handlers have
/// `--database=<profile>/home/...` since HOME points there).
fn processes_mentioning(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            (pid != me && String::from_utf8_lossy(&cmdline).contains(marker)).then_some(pid)
        })
        .collect()
}

/// (state, parent pid, command name) from `/proc/<pid>/stat`; `None` once the pid is gone.
fn proc_stat(pid: i32) -> Option<(char, i32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid, comm))
}

/// Every process below `root` in the process tree (zombies included).
fn descendants(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(i32, i32)> = entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            Some((pid, proc_stat(pid)?.1))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Reaps the zombies among our children that are chromium's processes, whichever browser they
/// belonged to (orphans nobody else waits for). Never another test's child: those are not
/// named chromium.
fn reap_chromium_zombies() {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(('Z', ppid, comm)) = proc_stat(pid)
            && ppid == me
            && (comm == "chromium" || comm.starts_with("chrome_"))
        {
            let mut status = 0;
            // SAFETY: a plain waitpid on one pid; the status pointer is valid.
            unsafe {
                waitpid(pid, &mut status, WNOHANG);
            }
        }
    }
}

/// Kills what is left of a browser (`pids`, and whatever still mentions `marker`), and reaps
/// it, for up to `timeout`.
fn kill_and_reap(mut pids: Vec<i32>, marker: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        for pid in processes_mentioning(marker) {
            sigkill(pid);
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        reap_chromium_zombies();
        pids.retain(|&pid| match proc_stat(pid) {
            None => false,
            // init's now (no subreaper): not ours to reap.
            Some((_, 1, _)) => false,
            Some(_) => true,
        });
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// This browser's processes: chromedriver's descendants, and the processes that mention the
/// profile directory (the crashpad handlers are not descendants: they daemonize).
fn browser_processes(driver: &Child, marker: &str) -> Vec<i32> {
    let mut pids = descendants(driver.id() as i32);
    for pid in processes_mentioning(marker) {
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Kills chromedriver and whatever is left of its chromium, and reaps them. `known`: this
/// browser's processes seen before it was asked to quit.
fn stop_driver(child: &mut Child, marker: &str, mut known: Vec<i32>) {
    for pid in browser_processes(child, marker) {
        if !known.contains(&pid) {
            known.push(pid);
        }
    }
    // chromedriver leads its own process group (chromium's processes are in it): kill the group
    // before reaping chromedriver, so that its id cannot have been reused.
    sigkill(-(child.id() as i32));
    let _ = child.wait();
    kill_and_reap(known, marker, Duration::from_secs(5));
}

impl Browser {
    /// Starts chromedriver and a headless chromium for the test `test_name` (which names the
    /// artifact directory `target/e2e/<test_name>/`). `None` when they are not installed and
    /// `LETHE_TEST_REQUIRE_BROWSER` is not `1`.
    pub async fn start(test_name: &str) -> Option<Browser> {
        let bins = binary("LETHE_CHROMIUM", "/usr/bin/chromium").and_then(|chromium| {
            binary("LETHE_CHROMEDRIVER", "/usr/bin/chromedriver").map(|d| (chromium, d))
        });
        let (chromium, driver) = match bins {
            Ok(b) => b,
            Err(missing) => {
                if std::env::var("LETHE_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") {
                    panic!(
                        "LETHE_TEST_REQUIRE_BROWSER=1 but {missing} is missing: install Debian's \
                         chromium and chromium-driver (apt-get install chromium chromium-driver)"
                    );
                }
                // Straight to the stderr file descriptor, past libtest's output capture, so
                // that a skip shows in `cargo test`'s output (CI greps for it).
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "{SKIP_MESSAGE}");
                return None;
            }
        };

        become_subreaper();
        let slot = SLOTS
            .clone()
            .acquire_owned()
            .await
            .expect("browser semaphore");

        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("e2e")
            .join(sanitize(test_name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let profile = tempfile::Builder::new()
            .prefix("lethe-chromium-")
            .tempdir()
            .expect("create a temporary browser profile");
        let home = profile.path().join("home");
        let user_data = profile.path().join("user-data");
        let downloads = profile.path().join("downloads");
        for d in [&home, &user_data, &downloads] {
            std::fs::create_dir_all(d).expect("create the browser profile dirs");
        }
        let log_path = dir.join("chromedriver.log");
        let marker = profile.path().to_string_lossy().to_string();

        let http = http_client(COMMAND_TIMEOUT);
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("open chromedriver.log");
            let mut cmd = Command::new(&driver);
            cmd.arg(format!("--port={port}"));
            if driver_supports_allowed_ips(&driver) {
                cmd.arg("--allowed-ips=127.0.0.1");
            }
            // Chromium's crash database and caches follow HOME: keep them in the profile.
            cmd.env("HOME", &home)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log);
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
            let base = format!("http://127.0.0.1:{port}");

            // Wait for /status to say ready.
            let deadline = Instant::now() + DRIVER_START_TIMEOUT;
            let mut ready = false;
            let mut exited = None;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some(status);
                    break;
                }
                let status = http
                    .get(format!("{base}/status"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                if let Ok(resp) = status
                    && let Ok(v) = resp.json::<Value>().await
                    && v["value"]["ready"].as_bool() == Some(true)
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !ready {
                stop_driver(&mut child, &marker, Vec::new());
                last_error = match exited {
                    // Most likely the port was taken between picking and binding: retry.
                    Some(status) => format!("chromedriver exited with {status} on port {port}"),
                    None => format!(
                        "chromedriver was not ready on port {port} within \
                         {DRIVER_START_TIMEOUT:?}"
                    ),
                };
                continue;
            }

            let caps = json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "pageLoadStrategy": "normal",
                        "acceptInsecureCerts": false,
                        "unhandledPromptBehavior": "dismiss and notify",
                        "timeouts": {"implicit": 0, "pageLoad": 60_000, "script": 30_000},
                        "goog:chromeOptions": {
                            "binary": chromium.to_string_lossy(),
                            "args": CHROMIUM_ARGS
                                .iter()
                                .map(|a| a.to_string())
                                .chain([format!("--user-data-dir={}", user_data.display())])
                                .collect::<Vec<_>>(),
                            "prefs": {
                                "download.default_directory": downloads.to_string_lossy(),
                                "download.prompt_for_download": false,
                                "download.directory_upgrade": true,
                                "safebrowsing.enabled": false,
                            },
                        },
                    }
                }
            });
            let session =
                wd_request(&http, Method::POST, &format!("{base}/session"), Some(&caps)).await;
            let session = match session {
                Ok(v) => v["sessionId"].as_str().map(str::to_string),
                Err(e) => {
                    stop_driver(&mut child, &marker, Vec::new());
                    panic!(
                        "browser: creating a chromium session failed: {e}\n  chromium: {}\n  \
                         chromedriver log ({}):\n    {}",
                        chromium.display(),
                        log_path.display(),
                        log_tail(&log_path)
                    );
                }
            };
            let Some(session) = session else {
                stop_driver(&mut child, &marker, Vec::new());
                panic!("browser: chromedriver returned no session id");
            };
            return Some(Browser {
                wd: Wd {
                    http,
                    base,
                    session,
                },
                driver: Some(child),
                test_name: test_name.to_string(),
                dir,
                shots: AtomicUsize::new(0),
                find_timeout: FIND_TIMEOUT,
                profile,
                _slot: slot,
            });
        }
        panic!(
            "browser: could not start {}: {last_error}\n  chromedriver log ({}):\n    {}",
            driver.display(),
            log_path.display(),
            log_tail(&log_path)
        );
    }

    /// How long CSS-based helpers poll for their element (default [`FIND_TIMEOUT`]).
    pub fn set_find_timeout(&mut self, timeout: Duration) {
        self.find_timeout = timeout;
    }

    /// `target/e2e/<test_name>/`: screenshots and logs of this test.
    pub fn artifacts_dir(&self) -> &Path {
        &self.dir
    }

    /// Where downloads land (a directory of the temporary profile).
    pub fn downloads_dir(&self) -> PathBuf {
        self.profile.path().join("downloads")
    }

    async fn ok<T>(&self, r: Result<T, WdError>, command: &str, css: Option<&str>) -> T {
        self.wd.ok(r, command, css).await
    }

    /// Finds `css`, then runs `act` on it; retries both while the error is transient (no such
    /// element yet, stale, not interactable, click intercepted) for up to the find timeout.
    async fn on<T>(
        &self,
        css: &str,
        command: &str,
        act: impl AsyncFn(&Element) -> Result<T, WdError>,
    ) -> T {
        let deadline = Instant::now() + self.find_timeout;
        loop {
            let r = match self.wd.find_once(css).await {
                Ok(el) => act(&el).await,
                Err(e) => Err(e),
            };
            match r {
                Err(e) if e.is_transient() => {
                    if Instant::now() >= deadline {
                        let command = format!("{command} (retried for {:?})", self.find_timeout);
                        return self.ok(Err(e), &command, Some(css)).await;
                    }
                    tokio::time::sleep(POLL).await;
                }
                r => return self.ok(r, command, Some(css)).await,
            }
        }
    }

    pub async fn goto(&self, url: &str) {
        let r = self.wd.post("/url", json!({"url": url})).await;
        self.ok(r, &format!("goto {url}"), None).await;
    }

    pub async fn back(&self) {
        let r = self.wd.post("/back", json!({})).await;
        self.ok(r, "back", None).await;
    }

    pub async fn refresh(&self) {
        let r = self.wd.post("/refresh", json!({})).await;
        self.ok(r, "refresh", None).await;
    }

    pub async fn current_url(&self) -> String {
        let r = self.wd.get("/url").await;
        let v = self.ok(r, "current url", None).await;
        v.as_str().unwrap_or("").to_string()
    }

    pub async fn title(&self) -> String {
        let r = self.wd.get("/title").await;
        let v = self.ok(r, "title", None).await;
        v.as_str().unwrap_or("").to_string()
    }

    /// The first element matching `css`, polling up to the find timeout; panics if none.
    pub async fn find(&self, css: &str) -> Element {
        self.on(css, "find", async |el: &Element| Ok(el.clone()))
            .await
    }

    /// The first element matching `css` within `timeout`, or `None`.
    pub async fn try_find(&self, css: &str, timeout: Duration) -> Option<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.wd.find_once(css).await {
                Ok(el) => return Some(el),
                Err(e) if e.is("no such element") => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => {
                    return self.ok(Err(e), "find", Some(css)).await;
                }
            }
        }
    }

    /// Whether an element matches `css` right now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.try_find(css, Duration::ZERO).await.is_some()
    }

    /// All elements matching `css` right now (no waiting; may be empty).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let r = self.wd.find_all_once("", css).await;
        self.ok(r, "find all", Some(css)).await
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.on(css, "text", async |el: &Element| el.try_text().await)
            .await
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn body_text(&self) -> String {
        let r = self.wd.body_text().await;
        self.ok(r, "body text", None).await
    }

    /// Clears the field matching `css`, then types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        self.on(css, "fill", async |el: &Element| {
            el.try_clear().await?;
            el.try_send_keys(text).await
        })
        .await
    }

    pub async fn click(&self, css: &str) {
        self.on(css, "click", async |el: &Element| el.try_click().await)
            .await
    }

    /// Chooses the `<option>` of the `<select>` matching `css` whose visible text or value is
    /// `choice`.
    pub async fn select(&self, css: &str, choice: &str) {
        let found = self
            .on(css, "select", async |el: &Element| {
                let mut seen = Vec::new();
                for opt in self.wd.find_all_once(&el.path(""), "option").await? {
                    let text = opt.try_text().await?;
                    let value = opt.try_property("value").await?;
                    let value = value.as_str().unwrap_or("").to_string();
                    if text.trim() == choice || value == choice {
                        if !opt.try_bool("/selected").await? {
                            opt.try_click().await?;
                        }
                        return Ok(None);
                    }
                    seen.push(format!("{:?} (value {value:?})", text.trim()));
                }
                Ok(Some(seen))
            })
            .await;
        if let Some(seen) = found {
            panic!(
                "browser: select `{choice}` on `{css}`: no such option; the options are: {}{}",
                seen.join(", "),
                self.wd.context().await
            );
        }
    }

    /// Sets the file of the `<input type=file>` matching `css`.
    pub async fn upload(&self, css: &str, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let abs = std::fs::canonicalize(path)
            .unwrap_or_else(|e| panic!("browser: upload {}: {e}", path.display()));
        let abs = abs.to_string_lossy().to_string();
        self.on(css, "upload", async |el: &Element| {
            el.try_send_keys(&abs).await
        })
        .await
    }

    /// The attribute `name` of the first element matching `css` (`None` when absent).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.on(css, &format!("attribute `{name}`"), async |el: &Element| {
            el.try_attr(name).await
        })
        .await
    }

    /// The DOM property `name` of the first element matching `css` (e.g. an input's `value`).
    pub async fn property(&self, css: &str, name: &str) -> Value {
        self.on(css, &format!("property `{name}`"), async |el: &Element| {
            el.try_property(name).await
        })
        .await
    }

    pub async fn page_source(&self) -> String {
        let r = self.wd.get("/source").await;
        let v = self.ok(r, "page source", None).await;
        v.as_str().unwrap_or("").to_string()
    }

    /// Saves a PNG of the viewport as `target/e2e/<test_name>/NN-<step>.png`, returns its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let r = self.wd.get("/screenshot").await;
        let v = self.ok(r, &format!("screenshot {step}"), None).await;
        let n = self.shots.fetch_add(1, Ordering::SeqCst) + 1;
        let path = self.dir.join(format!("{n:02}-{}.png", sanitize(step)));
        let png = decode_png(&v).unwrap_or_else(|e| panic!("browser: screenshot {step}: {e}"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Polls the page text until it contains `text`; returns the page text. Panics on timeout.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // Errors while a navigation is in flight are retried until the deadline.
            let r = self.wd.body_text().await;
            if let Ok(body) = &r
                && body.contains(text)
            {
                return body.clone();
            }
            if Instant::now() >= deadline {
                let body = self.ok(r, "wait for text", None).await;
                panic!(
                    "browser: the text {text:?} did not appear within {timeout:?}\n  at URL: {}\n  \
                     page text: {}",
                    self.current_url().await,
                    snippet(&body, 600)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls the URL until it contains `needle`; returns it. Panics on timeout.
    pub async fn wait_for_url(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if url.contains(needle) {
                return url;
            }
            if Instant::now() >= deadline {
                panic!(
                    "browser: the URL did not come to contain {needle:?} within {timeout:?}{}",
                    self.wd.context().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let r = self
            .wd
            .post("/execute/sync", json!({"script": script, "args": args}))
            .await;
        self.ok(r, "execute", None).await
    }

    /// The cookies visible to the current page, with their flags.
    pub async fn cookies(&self) -> Vec<Cookie> {
        let r = self.wd.get("/cookie").await;
        let v = self.ok(r, "cookies", None).await;
        v.as_array()
            .map(|a| a.iter().map(Cookie::from_json).collect())
            .unwrap_or_default()
    }

    pub async fn cookie(&self, name: &str) -> Option<Cookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    pub async fn delete_all_cookies(&self) {
        let r = self.wd.cmd(Method::DELETE, "/cookie", None).await;
        self.ok(r, "delete all cookies", None).await;
    }

    /// The text of the open `alert`/`confirm`/`prompt`, if any.
    pub async fn alert_text(&self) -> Option<String> {
        match self.wd.get("/alert/text").await {
            Ok(v) => Some(v.as_str().unwrap_or("").to_string()),
            Err(e) if e.is("no such alert") => None,
            Err(e) => self.ok(Err(e), "alert text", None).await,
        }
    }

    /// Accepts the open dialog (OK on a `confirm`), waiting up to the find timeout for it.
    pub async fn accept_alert(&self) {
        self.dialog("/alert/accept").await
    }

    /// Dismisses the open dialog (Cancel on a `confirm`), waiting up to the find timeout.
    pub async fn dismiss_alert(&self) {
        self.dialog("/alert/dismiss").await
    }

    async fn dialog(&self, path: &str) {
        let deadline = Instant::now() + self.find_timeout;
        loop {
            match self.wd.post(path, json!({})).await {
                Err(e) if e.is("no such alert") && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await
                }
                r => return self.ok(r.map(drop), path, None).await,
            }
        }
    }

    /// Waits for a finished download whose file name ends with `suffix`; returns its path.
    pub async fn wait_for_download(&self, suffix: &str, timeout: Duration) -> PathBuf {
        let dir = self.downloads_dir();
        let deadline = Instant::now() + timeout;
        loop {
            let done = std::fs::read_dir(&dir).ok().and_then(|entries| {
                entries.flatten().map(|e| e.path()).find(|p| {
                    let name = p.file_name().unwrap_or_default().to_string_lossy();
                    name.ends_with(suffix) && !name.ends_with(".crdownload")
                })
            });
            if let Some(path) = done {
                return path;
            }
            if Instant::now() >= deadline {
                panic!(
                    "browser: no download ending in {suffix:?} within {timeout:?} in {}{}",
                    dir.display(),
                    self.wd.context().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn decode_png(v: &Value) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let b64 = v.as_str().ok_or("the answer is not a string")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("not base64: {e}"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        let marker = self.profile.path().to_string_lossy().to_string();
        // Before the session ends: afterwards its processes are orphans, then zombies.
        let known = self
            .driver
            .as_ref()
            .map(|d| browser_processes(d, &marker))
            .unwrap_or_default();
        // The WebDriver calls need a runtime, and Drop may run inside (or outside) one: use a
        // fresh client on a fresh thread. On a panic, keep what the page looked like.
        let wd = Wd {
            http: http_client(Duration::from_secs(15)),
            ..self.wd.clone()
        };
        let panicking = std::thread::panicking();
        let dir = self.dir.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if panicking {
                    if let Ok(v) = wd.get("/screenshot").await
                        && let Ok(png) = decode_png(&v)
                    {
                        let _ = std::fs::write(dir.join("failure.png"), png);
                    }
                    if let Ok(v) = wd.get("/source").await {
                        let _ = std::fs::write(dir.join("failure.html"), v.as_str().unwrap_or(""));
                    }
                    eprintln!("browser: failure screenshot and page in {}", dir.display());
                }
                // chromedriver closes chromium and waits for it.
                let _ = wd.cmd(Method::DELETE, "", None).await;
            });
        })
        .join();

        if let Some(mut child) = self.driver.take() {
            stop_driver(&mut child, &marker, known);
        }
    }
}

/// Starts a browser for the test, or returns from the test when chromium is not installed
/// (and `LETHE_TEST_REQUIRE_BROWSER` is not `1`).
#[macro_export]
macro_rules! require_browser {
    ($test_name:expr) => {
        match $crate::browser::Browser::start($test_name).await {
            Some(b) => b,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The harness's own test: a tiny axum page with a form, driven end to end.

mod smoke {
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, HeaderValue, header};
    use axum::response::{Html, IntoResponse};
    use axum::routing::get;

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    const FORM: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Harness smoke</title></head>
<body>
<h1>Smoke form</h1>
<form method="post" action="/submit" enctype="multipart/form-data">
  <label>Name <input id="name" name="name" placeholder="Your name"></label>
  <label>Colour <select id="colour" name="colour">
    <option value="red">Red</option>
    <option value="green">Green</option>
    <option value="blue">Blue</option>
  </select></label>
  <label>Size <select id="size" name="size">
    <option value="s">Small</option>
    <option value="l">Large</option>
  </select></label>
  <label>File <input id="file" type="file" name="file"></label>
  <button id="send" type="submit">Send</button>
</form>
<p><a id="dl" href="/download">Download</a></p>
</body></html>"#;

    /// (field name, file name, content) of each part of a multipart/form-data body.
    fn parse_multipart(headers: &HeaderMap, body: &[u8]) -> Vec<(String, Option<String>, String)> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(boundary) = ct.split("boundary=").nth(1) else {
            return Vec::new();
        };
        let delim = format!("--{}", boundary.trim_matches('"'));
        let body = String::from_utf8_lossy(body);
        let mut parts = Vec::new();
        for part in body.split(delim.as_str()).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix("\r\n").unwrap_or(part);
            let Some((head, content)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            let param = |key: &str| {
                head.split(&format!("{key}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .map(str::to_string)
            };
            let name = param(" name").unwrap_or_default();
            parts.push((name, param("filename"), content.to_string()));
        }
        parts
    }

    async fn submit(headers: HeaderMap, body: Bytes) -> impl IntoResponse {
        let mut items = String::new();
        for (name, filename, content) in parse_multipart(&headers, &body) {
            let line = match filename {
                Some(f) => format!(
                    "{name}: {f} ({} bytes): {}",
                    content.len(),
                    content.trim_end()
                ),
                None => format!("{name}: {content}"),
            };
            items.push_str(&format!("<li>{}</li>\n", esc(&line)));
        }
        let page = format!(
            "<!doctype html><html><head><title>Received</title></head><body>\
             <h1>Received</h1><ul id=\"got\">\n{items}</ul>\
             <p id=\"hidden\" style=\"display:none\">invisible text</p></body></html>"
        );
        let mut resp = Html(page).into_response();
        let h = resp.headers_mut();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("smoke=1; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("plain=2; Path=/; SameSite=Lax"),
        );
        resp
    }

    async fn download() -> impl IntoResponse {
        (
            [
                (header::CONTENT_TYPE, "text/csv"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"export.csv\"",
                ),
            ],
            "id,name\n1,Ada\n",
        )
    }

    async fn serve() -> String {
        let app = Router::new()
            .route("/", get(|| async { Html(FORM) }))
            .route("/submit", axum::routing::post(submit))
            .route("/download", get(download));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn browser_harness_smoke() {
        let Some(b) = Browser::start("browser_harness_smoke").await else {
            return;
        };
        let base = serve().await;

        b.goto(&format!("{base}/")).await;
        assert_eq!(b.title().await, "Harness smoke");
        assert_eq!(b.text("h1").await, "Smoke form");
        assert_eq!(
            b.attr("#name", "placeholder").await.as_deref(),
            Some("Your name")
        );
        assert_eq!(b.attr("#name", "no-such-attr").await, None);
        assert_eq!(b.find_all("#colour option").await.len(), 3);
        assert!(b.find("#send").await.is_displayed().await);
        assert!(
            b.try_find("#missing", Duration::from_millis(200))
                .await
                .is_none()
        );

        // fill replaces what was there.
        b.fill("#name", "placeholder text").await;
        b.fill("#name", "Ada <Lovelace> & Co").await;
        assert_eq!(
            b.property("#name", "value").await,
            json!("Ada <Lovelace> & Co")
        );
        b.select("#colour", "Green").await; // by visible text
        b.select("#size", "l").await; // by value
        assert_eq!(b.property("#colour", "value").await, json!("green"));
        let upload = tempfile::tempdir().unwrap();
        let file = upload.path().join("hello.txt");
        std::fs::write(&file, "hello from the harness\n").unwrap();
        b.upload("#file", &file).await;
        let shot = b.screenshot("filled form").await;
        assert!(shot.ends_with("01-filled_form.png"), "{}", shot.display());

        b.click("#send").await;
        let body = b.wait_for_text("Received", Duration::from_secs(10)).await;
        assert!(body.contains("name: Ada <Lovelace> & Co"), "{body}");
        assert!(body.contains("colour: green"), "{body}");
        assert!(body.contains("size: l"), "{body}");
        assert!(
            body.contains("file: hello.txt (23 bytes): hello from the harness"),
            "{body}"
        );
        assert!(!body.contains("invisible text"), "{body}");
        assert!(b.current_url().await.ends_with("/submit"));
        assert_eq!(b.find_all("#got li").await.len(), 4);
        assert!(b.page_source().await.contains("<h1>Received</h1>"));
        let shot = b.screenshot("received").await;
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000);

        // Cookie flags as the browser stored them; HttpOnly hides the cookie from scripts.
        let smoke = b.cookie("smoke").await.expect("the smoke cookie");
        assert_eq!(smoke.value, "1");
        assert!(smoke.http_only);
        assert_eq!(smoke.same_site.as_deref(), Some("Strict"));
        assert!(smoke.expiry.is_some());
        let plain = b.cookie("plain").await.expect("the plain cookie");
        assert!(!plain.http_only);
        assert_eq!(plain.same_site.as_deref(), Some("Lax"));
        assert_eq!(plain.expiry, None);
        let js_cookies = b.execute("return document.cookie;", vec![]).await;
        assert_eq!(js_cookies, json!("plain=2"));
        assert_eq!(
            b.execute(
                "return arguments[0] + arguments[1];",
                vec![json!(2), json!(3)]
            )
            .await,
            json!(5)
        );

        // Downloads land in the profile's download directory.
        b.back().await;
        b.wait_for_text("Smoke form", Duration::from_secs(5)).await;
        assert!(
            !b.wait_for_url("", Duration::ZERO)
                .await
                .ends_with("/submit")
        );
        b.click("#dl").await;
        let csv = b
            .wait_for_download("export.csv", Duration::from_secs(10))
            .await;
        assert_eq!(std::fs::read_to_string(csv).unwrap(), "id,name\n1,Ada\n");
    }
}
