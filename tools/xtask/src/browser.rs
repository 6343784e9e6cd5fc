//! Headless Chromium driven over the DevTools protocol, to check what a web page shows.
//!
//! Uses Debian's `chromium` package (`/usr/bin/chromium`, or `$CHROMIUM`). When it is missing
//! and the process runs as root with `apt-get` available, it is installed.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Command, ExitStatus},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use test_support::{Output, Process};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

/// A headless Chromium with one page open. Killed when dropped.
pub struct Browser {
    child: Process,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: PathBuf,
}

/// The Chromium executable, installing Debian's package when it is missing and possible.
///
/// # Errors
/// When Chromium is not installed and cannot be.
pub fn chromium() -> anyhow::Result<PathBuf> {
    let found = || {
        std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .into_iter()
            .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
            .find(|p| p.exists())
    };
    if let Some(path) = found() {
        return Ok(path);
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success())
        || (Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("apt-get")
                .args(["install", "-y", "-qq", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success()));
    match found() {
        Some(path) if installed => Ok(path),
        _ => bail!(
            "Chromium is needed for the web page test: install Debian's `chromium` package \
             or set CHROMIUM to its path"
        ),
    }
}

impl Browser {
    /// Starts headless Chromium showing `url`.
    ///
    /// # Errors
    /// When Chromium cannot be started or its DevTools endpoint not reached.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with(url, &[])
    }

    /// Starts headless Chromium showing `url`, with `extra` command-line switches (e.g.
    /// `--host-resolver-rules=MAP rebind.test 127.0.0.1`, to reach a server under a name of
    /// another site).
    ///
    /// # Errors
    /// When Chromium cannot be started or its DevTools endpoint not reached.
    pub fn open_with(url: &str, extra: &[&str]) -> anyhow::Result<Self> {
        static OPENED: AtomicU64 = AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "xtask-chromium-{}-{}",
            std::process::id(),
            OPENED.fetch_add(1, Ordering::Relaxed)
        ));
        let mut command = Command::new(chromium()?);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url);
        let output = Output {
            echo: false,
            ..Output::default()
        };
        let mut child = Process::start("chromium", &mut command, output)?;
        // Chromium reports its DevTools port on stderr (the harness drains the rest).
        const LISTENING: &str = "DevTools listening on ws://127.0.0.1:";
        let line = child
            .stderr()
            .wait_for(Duration::from_secs(30), |l| l.starts_with(LISTENING))
            .context("chromium did not report its DevTools port")?;
        let port = line[LISTENING.len()..]
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        let ws_url = loop {
            let targets = crate::services::http_get(&format!("127.0.0.1:{port}"), "/json/list")
                .ok()
                .and_then(|body| serde_json::from_str::<Value>(&body).ok());
            let page = targets.as_ref().and_then(|t| {
                t.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
                    .as_str()
                    .map(str::to_owned)
            });
            if let Some(url) = page {
                break url;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("chromium opened no page");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let (socket, _) = tungstenite::connect(ws_url.as_str()).context("DevTools websocket")?;
        Ok(Self {
            child,
            socket,
            next_id: 1,
            _profile: profile,
        })
    }

    /// Calls DevTools method `method` with `params` and returns its result.
    ///
    /// # Errors
    /// When the protocol fails or the method answers with an error.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket.send(Message::text(request.to_string()))?;
        loop {
            let Message::Text(text) = self.socket.read()? else {
                continue;
            };
            let mut answer: Value = serde_json::from_str(text.as_str())?;
            if answer["id"] == id {
                if let Some(error) = answer.get("error") {
                    bail!("{method} failed: {error}");
                }
                return Ok(answer["result"].take());
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    ///
    /// # Errors
    /// When the protocol fails or the expression throws.
    pub fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let mut result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("page threw: {exception}");
        }
        Ok(result["result"]["value"].take())
    }

    /// Opens `url` in the page and waits (up to 30 s) until it has loaded; returns the HTTP
    /// status it was answered with.
    ///
    /// # Errors
    /// When the navigation fails or the page does not load in time.
    pub fn navigate(&mut self, url: &str) -> anyhow::Result<u16> {
        let navigated = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = navigated.get("errorText") {
            bail!("opening {url}: {error}");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let loaded = "document.readyState === 'complete' && \
                      performance.getEntriesByType('navigation').length > 0 ? \
                      performance.getEntriesByType('navigation')[0].responseStatus : 0";
        loop {
            // Evaluated in the old document until the new one replaces it: check its URL too.
            let here = self.eval("location.href")?;
            if here.as_str() == Some(url)
                && let Some(status) = self.eval(loaded)?.as_u64().filter(|s| *s > 0)
            {
                return u16::try_from(status).context("HTTP status");
            }
            if Instant::now() > deadline {
                bail!("{url} did not load within 30 s (the page is at {here})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The whole page as a PNG image (`Page.captureScreenshot`).
    ///
    /// # Errors
    /// When the protocol fails or the image is not base64.
    pub fn screenshot(&mut self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine as _;
        let result = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )?;
        let data = result["data"].as_str().context("no image in the answer")?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("the screenshot is not base64")
    }

    /// Closes the browser (`Browser.close`) and returns Chromium's exit status.
    ///
    /// # Errors
    /// When it does not exit within 30 s (it is then killed).
    pub fn close(mut self) -> anyhow::Result<ExitStatus> {
        let request = json!({ "id": self.next_id, "method": "Browser.close", "params": {} });
        // Chromium may close the socket before it answers.
        let _ = self.socket.send(Message::text(request.to_string()));
        self.child.wait(Duration::from_secs(30))
    }

    /// The page's visible text.
    ///
    /// # Errors
    /// As [`Browser::eval`].
    pub fn text(&mut self) -> anyhow::Result<String> {
        Ok(self
            .eval("document.body ? document.body.innerText : ''")?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}
