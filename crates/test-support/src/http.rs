//! Small helpers around the services' HTTP endpoints and configuration files.

use std::{
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
    // reqwest's blocking client refuses to run on a thread inside an async runtime (many
    // callers are `#[tokio::test]`s): one client for the process, built and used on threads of
    // their own, never dropped.
    static CLIENT: OnceLock<Result<reqwest::blocking::Client, String>> = OnceLock::new();
    let client = CLIENT
        .get_or_init(|| {
            std::thread::spawn(|| {
                reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| format!("building the HTTP client: {e}"))
            })
            .join()
            .unwrap_or_else(|_| Err("building the HTTP client panicked".to_owned()))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = format!("http://{addr}{path}");
    let (status, body) = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<_> {
                let response = client
                    .get(&url)
                    .send()
                    .with_context(|| format!("GET {url}"))?;
                let status = response.status();
                let body = response
                    .text()
                    .with_context(|| format!("reading the body of GET {url}"))?;
                Ok((status, body))
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("GET {url} panicked")))
    })?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers are often async tests: a GET from inside a runtime must not panic (reqwest's
    /// blocking client panics when it is dropped there).
    #[tokio::test(flavor = "multi_thread")]
    async fn get_works_inside_an_async_runtime_and_names_a_refused_address() {
        let port = crate::FreePorts::default().pick().unwrap();
        let error = http_get(&format!("127.0.0.1:{port}"), "/health")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("GET http://127.0.0.1:{port}/health")),
            "{error}"
        );
    }
}
