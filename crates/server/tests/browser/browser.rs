//! One headless Chromium per test, driven through its own `chromedriver`: started in a fresh
//! process group on a free port of 127.0.0.1 with a fresh profile, and killed as a group when
//! the test ends (a failing test leaves no browser behind).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tempfile::TempDir;

/// Where Debian's packages put them; `HOOKLINE_CHROMIUM` / `HOOKLINE_CHROMEDRIVER` override.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver may take to listen, and a page or element to appear.
const START_DEADLINE: Duration = Duration::from_secs(30);
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

fn program(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "the browser tests need {path} (Debian's chromium and chromium-driver): \
         run `apt-get install -y --no-install-recommends chromium chromium-driver` \
         (.ci/run does), or set {var}"
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Browser {
    pub async fn start() -> Browser {
        let chromium = program("HOOKLINE_CHROMIUM", CHROMIUM);
        let chromedriver = program("HOOKLINE_CHROMEDRIVER", CHROMEDRIVER);
        let profile = tempfile::tempdir().expect("a temporary browser profile");
        let port = free_port();
        let mut command = Command::new(chromedriver);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().expect("starting chromedriver");
        let deadline = Instant::now() + START_DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port} in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = serde_json::json!([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session in headless chromium");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigating");
    }

    /// The text of the first element matching `css`, waiting for it to appear.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => {
                let url = self.client.current_url().await.map(|u| u.to_string());
                self.screenshot("failed-find").await;
                panic!("no element {css:?} on {url:?}: {error}");
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("clicking");
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clearing a field");
        field.send_keys(value).await.expect("typing");
    }

    /// Waits until the page's title is `expected` (a click that navigates returns before the
    /// new page is there).
    pub async fn wait_for_title(&self, expected: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let title = self.title().await;
            if title == expected {
                return;
            }
            if Instant::now() > deadline {
                self.screenshot("failed-title").await;
                panic!("the page title stayed {title:?}, expected {expected:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn title(&self) -> String {
        self.client.title().await.expect("the page title")
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("the page source")
    }

    /// Reloads `url` until an element matching `css` is there (the page shows a state that the
    /// server reaches asynchronously, such as a delivery).
    pub async fn reload_until(&self, url: &str, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.goto(url).await;
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            if Instant::now() > deadline {
                self.screenshot("failed-wait").await;
                panic!("{url} never showed {css:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in through the form, as a person would.
    pub async fn sign_in(&self, base_url: &str, auth_id: &str, auth_token: &str) {
        self.goto(&format!("{base_url}/ui/")).await;
        assert_eq!(
            self.title().await,
            "Sign in · Hookline",
            "an unsigned visit lands on the sign-in page"
        );
        self.screenshot("sign-in").await;
        self.fill("#auth_id", auth_id).await;
        self.fill("#auth_token", auth_token).await;
        // Submitted from the keyboard (Enter in the token field), as many people do.
        self.find("#auth_token")
            .await
            .send_keys("\u{E007}")
            .await
            .expect("pressing Enter");
        self.find("nav[aria-label=Main]").await;
    }

    /// Checks the page's basic accessibility rules: a `lang`, a title, one `h1`, every visible
    /// form control labelled (a `<label for>`, a wrapping label or `aria-label`), buttons as
    /// real buttons with text.
    pub async fn assert_accessible(&self) {
        let problems = self
            .client
            .execute(
                r#"
                const problems = [];
                if (!document.documentElement.lang) problems.push("no lang");
                if (!document.title) problems.push("no title");
                if (document.querySelectorAll("h1").length !== 1) problems.push("not one h1");
                for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
                  const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`))
                    || el.closest("label") || el.getAttribute("aria-label");
                  if (!labelled) problems.push("unlabelled " + el.outerHTML);
                }
                for (const el of document.querySelectorAll("button")) {
                  if (!el.textContent.trim() && !el.getAttribute("aria-label")) problems.push("empty button " + el.outerHTML);
                }
                for (const el of document.querySelectorAll("[onclick], a:not([href])")) problems.push("not a real control " + el.outerHTML);
                return problems;
                "#,
                Vec::new(),
            )
            .await
            .expect("running the accessibility check");
        let url = self.client.current_url().await.map(|u| u.to_string());
        assert_eq!(
            problems,
            serde_json::json!([]),
            "accessibility problems on {url:?}"
        );
    }

    /// Saves the page as `target/ui-screenshots/NAME.png`, after checking its accessibility
    /// rules (`assert_accessible`): every main page that is screenshotted is checked.
    pub async fn screenshot(&self, name: &str) {
        if !name.starts_with("failed") {
            self.assert_accessible().await;
        }
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("creating the screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("writing a screenshot");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.kill();
    }

    fn kill(&mut self) {
        // The group holds chromedriver and the browser it started (process_group(0) above).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.driver.try_wait().ok().flatten().is_none() {
            self.kill();
        }
    }
}

/// `target/ui-screenshots` of this workspace (or of `CARGO_TARGET_DIR` when the build set it).
pub fn screenshot_dir() -> PathBuf {
    let target = option_env!("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("ui-screenshots")
}
