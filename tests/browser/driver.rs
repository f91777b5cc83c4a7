//! Headless Chromium through chromedriver (WebDriver), one browser per test, one test at a
//! time (two cores do not run two Chromiums well).
//!
//! chromedriver picks its own free port (`--port=0`) and says which on its standard output, so
//! no port is chosen here and then taken by someone else. It runs in a process group of its
//! own, with the Chromium it starts: a test that fails mid-way still ends both (the group is
//! killed on drop), and a test that passes also closes its WebDriver session first.
use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex as StdMutex, mpsc},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

static TURN: Mutex<()> = Mutex::const_new(());

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);
/// How long chromedriver may take to say it listens.
const DRIVER_START: Duration = Duration::from_secs(10);

/// The viewport a test browses with.
#[derive(Clone, Copy)]
pub enum Window {
    Desktop,
    /// A phone (390×844 CSS pixels, touch, mobile layout: the viewport tag applies).
    Phone,
}

pub struct Chromium {
    pub client: Client,
    driver: Driver,
    _turn: MutexGuard<'static, ()>,
}

/// `name` on the `PATH`, if installed.
fn installed(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// `name` on the `PATH`, or a panic saying how to install it: these tests are asked for by
/// name (`--ignored`), so a missing browser is a failure, never a silent pass.
fn required(name: &str) -> PathBuf {
    installed(name).unwrap_or_else(|| {
        panic!(
            "{name} is not installed, so the browser tests cannot run \
             (Debian: apt-get install chromium chromium-driver)"
        )
    })
}

/// A running chromedriver, its port, and everything it has printed.
struct Driver {
    child: Child,
    port: u16,
    log: Arc<StdMutex<String>>,
}

/// What chromedriver prints once it listens.
const STARTED: &str = "ChromeDriver was started successfully on port ";

impl Driver {
    fn start(chromedriver: PathBuf) -> Self {
        let mut command = Command::new(chromedriver);
        command
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().expect("chromedriver starts");
        let log = Arc::new(StdMutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        // Read both streams to their end, so chromedriver never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .strip_prefix(STARTED)
                    .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
                {
                    let _ = port_tx.send(port);
                }
                push_line(&stdout_log, &line);
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr_log = log.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            push_line(&stderr_log, &text);
        });
        let mut driver = Self {
            child,
            port: 0,
            log,
        };
        match port_rx.recv_timeout(DRIVER_START) {
            Ok(port) => driver.port = port,
            Err(_) => {
                let exited = driver.child.try_wait().ok().flatten();
                panic!(
                    "chromedriver did not say it listens within {DRIVER_START:?} (exit: {exited:?}); \
                     its output:\n{}",
                    driver.log()
                );
            }
        }
        driver
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Ends chromedriver and every process it started (the browser and its helpers).
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: a plain signal to the process group this test created for chromedriver.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push_line(log: &StdMutex<String>, line: &str) {
    if let Ok(mut log) = log.lock() {
        log.push_str(line);
        log.push('\n');
    }
}

impl Chromium {
    /// A fresh headless Chromium. Panics, with what to install or what chromedriver said,
    /// where it cannot start.
    pub async fn start(window: Window) -> Self {
        let chromium = required("chromium");
        let chromedriver = required("chromedriver");
        let turn = TURN.lock().await;
        let driver = Driver::start(chromedriver);
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
        let client = match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => client,
            Err(e) => panic!(
                "no Chromium session: {e}; chromedriver said:\n{}",
                driver.log()
            ),
        };
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
        browser
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
        self.wait_until_shown(Some(url), text).await
    }

    /// Waits until whatever page the browser is on shows `text` in its body (after a click
    /// that navigates, an element found too early may belong to the page being left).
    pub async fn wait_for_body(&self, text: &str) -> String {
        self.wait_until_shown(None, text).await
    }

    async fn wait_until_shown(&self, url: Option<&str>, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let here = self
                .client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = self.body_text().await;
            if url.is_none_or(|url| here == url) && body.contains(text) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {text:?} at {url:?}; at {here:?}: {body}"
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

    /// Ends the WebDriver session (Chromium quits), then the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.driver.kill();
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // After a failed assertion, when `close` never ran: the whole group goes, Chromium too.
        self.driver.kill();
    }
}
