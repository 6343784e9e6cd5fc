//! Small helpers around the services' HTTP endpoints and configuration files.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use anyhow::{Context as _, bail};

/// `GET http://addr/path` and the body of a 200 answer.
///
/// # Errors
/// When the server cannot be reached within 5 s or answers with another status (named, with
/// the body).
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    let client = match CLIENT.get() {
        Some(client) => client,
        None => {
            let built = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .context("building the HTTP client")?;
            CLIENT.get_or_init(|| built)
        }
    };
    let url = format!("http://{addr}{path}");
    let response = client
        .get(&url)
        .send()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response
        .text()
        .with_context(|| format!("reading the body of GET {url}"))?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a child to bind next).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Writes `properties` to `client.properties` in `dir` and returns its path.
///
/// # Errors
/// When the file cannot be written.
pub fn write_config(dir: &Path, properties: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("client.properties");
    std::fs::write(&path, properties).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
