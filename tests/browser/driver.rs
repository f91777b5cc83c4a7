//! Headless Chromium through chromedriver (WebDriver), one browser per test, one test at a
//! time (two cores do not run two Chromiums well).
use std::{
    io::Write,
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

static TURN: Mutex<()> = Mutex::const_new(());

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);

/// The viewport a test browses with.
#[derive(Clone, Copy)]
pub enum Window {
    Desktop,
    /// A phone (390×844 CSS pixels, touch, mobile layout: the viewport tag applies).
    Phone,
}

pub struct Chromium {
    pub client: Client,
    driver: Child,
    _turn: MutexGuard<'static, ()>,
}

/// `name` on the `PATH`, if installed.
fn installed(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Chromium {
    /// A fresh headless Chromium, or `None` (said on stderr) where Chromium or chromedriver is
    /// not installed, so the suite stays green on a machine without them.
    pub async fn start(window: Window) -> Option<Self> {
        let (Some(chromium), Some(chromedriver)) =
            (installed("chromium"), installed("chromedriver"))
        else {
            // Once, and past the test harness's capture (which hides a passing test's
            // `eprintln!`), so the run says what it skipped.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "browser tests not run: chromium/chromedriver not installed \
                     (Debian: apt-get install chromium chromium-driver)"
                );
            });
            return None;
        };
        let turn = TURN.lock().await;
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        for _ in 0..100 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut options = json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--no-first-run", "--hide-scrollbars"],
        });
        if let Window::Phone = window {
            options["mobileEmulation"] = json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2, "touch": true}});
        }
        let capabilities = match json!({"browserName": "chrome", "goog:chromeOptions": options}) {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let browser = Self {
            client,
            driver,
            _turn: turn,
        };
        if let Window::Desktop = window {
            // A viewport of 1280×800: the window is that plus the browser's own frame.
            let frame = browser
                .run("return window.outerHeight - window.innerHeight")
                .await;
            let frame = u32::try_from(frame.as_u64().unwrap_or(0)).unwrap_or(0);
            browser
                .client
                .set_window_size(1280, 800 + frame)
                .await
                .expect("window resized");
        }
        Some(browser)
    }

    /// Waits for the element `css` to be there.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    /// Waits for the element `xpath` to be there.
    pub async fn find_xpath(&self, xpath: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("{xpath}: {e}"))
    }

    /// Clicks the element `css` once it is there.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks the element `xpath` once it is there.
    pub async fn click_xpath(&self, xpath: &str) {
        let element = self.find_xpath(xpath).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {xpath}: {e}"));
    }

    /// Waits until the page at `url` shows `text` in its body; returns the body's text.
    pub async fn wait_for_text(&self, url: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let here = self
                .client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = self.body_text().await;
            if here == url && body.contains(text) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {text:?} at {url}; at {here:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Runs `script` in the page and returns its result.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Ends the browser session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // After a failed assertion: the driver takes its browser with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
