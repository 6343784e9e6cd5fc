//! The guard in front of every web server of the services and of the control room: what stops a
//! web site the user has open from driving a page on `127.0.0.1`.
//!
//! [`WebGuard::protect`] wraps a router with a layer that checks each request before its
//! route sees it:
//! - **`Host`** (or, over HTTP/2, the URI's authority) must name this server: a loopback
//!   address (`127.0.0.0/8`, `::1`, also IPv4-mapped), `localhost` (or a name under
//!   `.localhost`), or one of the names or IP addresses given with `--allowed-hosts` /
//!   `GROCERY_ALLOWED_HOSTS` ([`WebGuardArgs`]). A page that reaches the server through DNS
//!   rebinding does so under its own DNS name, so reading `/api/state` or `/events` that way is
//!   refused. Other IP addresses are refused unless listed: `0.0.0.0` (which browsers on Linux
//!   and macOS send to the local machine, so any web site could use it) and the machine's LAN
//!   addresses (reachable from every page the user has open); a server meant to be reached
//!   under its LAN address lists that address.
//! - **`Origin`**, when the request has one, must be this server's own origin (the same host
//!   and port as `Host`) or one of the allowed names; `Origin: null` is refused.
//! - **State-changing requests** (`POST`, `PUT`, `PATCH`, `DELETE`) must carry
//!   `Content-Type: application/json` (or `application/*+json`) or an `X-Requested-With`
//!   header. A cross-site HTML form can send neither, and a cross-site `fetch` that sends one
//!   needs a CORS preflight, which these servers never grant.
//!
//! A refused request is answered `403 Forbidden` with problem JSON ([`crate::problem`]) whose
//! `code` is the [`Refusal::code`] and whose `detail` says why, and logged at `warn` with the
//! method, path and reason.

use std::{net::IpAddr, sync::Arc};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};

/// The header a page's own script may send instead of a JSON body (a cross-site form cannot
/// send it, and a cross-site script cannot without a CORS preflight).
pub const REQUESTED_WITH: &str = "x-requested-with";

/// The command-line setting of the guard, flattened into each service's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebGuardArgs {
    /// Host names or IP addresses (besides loopback addresses and `localhost`) under which the
    /// web server may be reached, comma-separated, e.g. `picklist.store.internal,10.0.0.7`;
    /// requests naming any other host are refused (403), so are state-changing requests from
    /// pages of other origins.
    #[arg(
        long = "allowed-hosts",
        env = "GROCERY_ALLOWED_HOSTS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_hosts: Vec<String>,
}

/// Why the guard refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The request names no host.
    #[error("the request has no Host header")]
    MissingHost,
    /// The `Host` is not one this server answers to.
    #[error(
        "Host {0:?} is not a name of this server (loopback addresses, localhost and the names \
         and addresses in --allowed-hosts / GROCERY_ALLOWED_HOSTS are)"
    )]
    HostNotAllowed(String),
    /// The request comes from a page of another origin.
    #[error(
        "a page of origin {0:?} may not use this server: only its own pages (and those of the \
         names in --allowed-hosts / GROCERY_ALLOWED_HOSTS) may"
    )]
    OriginNotAllowed(String),
    /// A state-changing request with neither a JSON body nor `X-Requested-With`.
    #[error(
        "a {method} request must have a JSON body (Content-Type: application/json) or an \
         X-Requested-With header, which a form of another site cannot send; it has \
         Content-Type {content_type:?}"
    )]
    NotJson {
        /// The request's method.
        method: String,
        /// The request's content type (empty when none).
        content_type: String,
    },
}

impl Refusal {
    /// A short code for the refusal: `missing_host`, `host_not_allowed`,
    /// `origin_not_allowed` or `json_required`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHost => "missing_host",
            Self::HostNotAllowed(_) => "host_not_allowed",
            Self::OriginNotAllowed(_) => "origin_not_allowed",
            Self::NotJson { .. } => "json_required",
        }
    }
}

/// The checks of the module documentation, with the names and addresses allowed besides
/// loopback addresses and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct WebGuard {
    names: Arc<[String]>,
}

impl WebGuard {
    /// A guard allowing, besides loopback addresses and `localhost`, the host names or IP
    /// addresses `allowed` (names compared without case, a trailing dot ignored; IPv6 with or
    /// without brackets).
    ///
    /// # Errors
    /// [`crate::BadConfig`] naming an entry that is neither a host name nor an IP address (a
    /// URL, a path, a port, a space).
    pub fn new<I>(allowed: I) -> Result<Self, crate::BadConfig>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut names = Vec::new();
        for entry in allowed {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let bare = entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .unwrap_or(entry);
            let valid = bare.parse::<IpAddr>().is_ok()
                || entry
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !valid {
                return Err(crate::BadConfig(format!(
                    "--allowed-hosts / GROCERY_ALLOWED_HOSTS: {entry:?} is neither a host name \
                     (letters, digits, '.', '-', '_') nor an IP address; no scheme, port or path"
                )));
            }
            names.push(normalise(bare));
        }
        Ok(Self {
            names: names.into(),
        })
    }

    /// The guard set by `args`.
    ///
    /// # Errors
    /// As [`WebGuard::new`].
    pub fn from_args(args: &WebGuardArgs) -> Result<Self, crate::BadConfig> {
        Self::new(&args.allowed_hosts)
    }

    /// `router` with every request checked first.
    pub fn protect<S>(self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(axum::middleware::from_fn_with_state(self, guard))
    }

    /// Checks a request's method and headers (`authority`: the URI's, used when there is no
    /// `Host` header).
    ///
    /// # Errors
    /// The first check the request fails.
    pub fn check(
        &self,
        method: &Method,
        authority: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .or_else(|| authority.map(str::to_owned))
            .ok_or(Refusal::MissingHost)?;
        let (host_name, host_port) =
            split_authority(&host).ok_or_else(|| Refusal::HostNotAllowed(host.clone()))?;
        if !self.host_allowed(&host_name) {
            return Err(Refusal::HostNotAllowed(host));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            if !self.origin_allowed(&origin, &host_name, host_port) {
                return Err(Refusal::OriginNotAllowed(origin));
            }
        }
        let safe = matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        if !safe && !headers.contains_key(REQUESTED_WITH) && !is_json(headers) {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(Refusal::NotJson {
                method: method.to_string(),
                content_type,
            });
        }
        Ok(())
    }

    fn host_allowed(&self, name: &str) -> bool {
        name.parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.iter().any(|allowed| allowed == name)
    }

    /// Whether `origin` is the server's own (same host and port as the request's `Host`) or
    /// an allowed name's.
    fn origin_allowed(&self, origin: &str, host_name: &str, host_port: Option<u16>) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some((name, port)) = split_authority(authority) else {
            return false;
        };
        let same =
            name == host_name && port.unwrap_or(default_port) == host_port.unwrap_or(default_port);
        same || self.names.contains(&name)
    }

    fn refuse(&self, refusal: &Refusal) -> Response {
        crate::problem::problem(StatusCode::FORBIDDEN, refusal.code(), refusal)
    }
}

async fn guard(State(guard): State<WebGuard>, request: Request, next: Next) -> Response {
    let checked = guard.check(
        request.method(),
        request.uri().authority().map(|a| a.as_str()),
        request.headers(),
    );
    match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(
                method = %request.method(),
                path = %request.uri().path(),
                reason = %refusal.code(),
                "request refused: {refusal}"
            );
            guard.refuse(&refusal)
        }
    }
}

/// Whether the request's content type is JSON (`application/json`, `application/*+json`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
}

/// A host name in the form names are compared in: lower case, no trailing dot; an IP address
/// in its canonical text (so `0:0::1` and `::1` compare equal).
fn normalise(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// `host[:port]` (IPv6 in brackets) as its name (brackets removed, normalised) and port;
/// `None` when it is not one (userinfo, a path, a bad port).
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.contains(['@', '/', ' ', '?', '#']) {
        return None;
    }
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (inside, port)
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    if name.is_empty() {
        return None;
    }
    Some((normalise(name), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn hosts_origins_and_bodies_are_checked() {
        let guard = WebGuard::new(["Screens.Store.Internal."]).unwrap();
        let get = |pairs: &[(&'static str, &str)]| guard.check(&Method::GET, None, &headers(pairs));
        let post =
            |pairs: &[(&'static str, &str)]| guard.check(&Method::POST, None, &headers(pairs));
        for host in [
            "127.0.0.1:8080",
            "[::1]:80",
            "127.1.2.3",
            "localhost:1",
            "app.localhost",
            "screens.store.internal:9000",
        ] {
            assert_eq!(get(&[("host", host)]), Ok(()), "{host}");
        }
        for host in ["evil.example:8080", "127.0.0.1.nip.io", "a@127.0.0.1", ""] {
            assert!(
                matches!(get(&[("host", host)]), Err(Refusal::HostNotAllowed(_))),
                "{host}"
            );
        }
        assert_eq!(get(&[]), Err(Refusal::MissingHost));
        assert_eq!(
            guard.check(&Method::GET, Some("127.0.0.1:1"), &HeaderMap::new()),
            Ok(())
        );

        let json = ("content-type", "application/json; charset=utf-8");
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(post(&[host, json]), Ok(()));
        assert_eq!(
            post(&[host, ("content-type", "application/merge-patch+json")]),
            Ok(())
        );
        assert_eq!(post(&[host, (REQUESTED_WITH, "fetch")]), Ok(()));
        for bad in [&[host][..], &[host, ("content-type", "text/plain")]] {
            assert!(matches!(post(bad), Err(Refusal::NotJson { .. })), "{bad:?}");
        }
        assert_eq!(
            guard.check(
                &Method::GET,
                None,
                &headers(&[host, ("content-type", "text/plain")])
            ),
            Ok(())
        );

        for origin in [
            "http://127.0.0.1:8080",
            "HTTP://127.0.0.1:8080",
            "https://screens.store.internal",
        ] {
            assert_eq!(post(&[host, json, ("origin", origin)]), Ok(()), "{origin}");
        }
        assert_eq!(
            post(&[
                ("host", "localhost"),
                json,
                ("origin", "http://localhost:80")
            ]),
            Ok(())
        );
        for origin in [
            "http://evil.example",
            "http://127.0.0.2:8080",
            "http://127.0.0.1:8081",
            "null",
            "file://",
        ] {
            assert!(
                matches!(
                    post(&[host, json, ("origin", origin)]),
                    Err(Refusal::OriginNotAllowed(_))
                ),
                "{origin}"
            );
        }
    }

    #[test]
    fn only_loopback_addresses_pass_unless_an_address_is_listed() {
        let host = |guard: &WebGuard, host: &str| {
            guard.check(&Method::GET, None, &headers(&[("host", host)]))
        };
        let default = WebGuard::default();
        // 0.0.0.0 reaches the local machine from a browser; LAN addresses reach it from every
        // page open on the network's machines.
        for refused in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.1.2.3",
            "192.168.1.20:8080",
            "[fe80::1]:80",
            "[::ffff:10.0.0.1]",
        ] {
            assert_eq!(
                host(&default, refused),
                Err(Refusal::HostNotAllowed(refused.to_owned())),
                "{refused}"
            );
        }
        for allowed in [
            "127.0.0.1",
            "127.255.0.9:1",
            "[::1]",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert_eq!(host(&default, allowed), Ok(()), "{allowed}");
        }
        let listed = WebGuard::new(["192.168.1.20", "[fe80::1]", "FE80:0:0::2"]).unwrap();
        for allowed in ["192.168.1.20:8080", "[fe80::1]:80", "[fe80::2]"] {
            assert_eq!(host(&listed, allowed), Ok(()), "{allowed}");
        }
        assert!(host(&listed, "192.168.1.21").is_err());
        assert_eq!(
            listed.check(
                &Method::POST,
                None,
                &headers(&[
                    ("host", "192.168.1.20:8080"),
                    ("content-type", "application/json"),
                    ("origin", "http://192.168.1.20:8080"),
                ])
            ),
            Ok(())
        );
    }

    #[test]
    fn names_that_are_not_host_names_are_bad_configuration() {
        for bad in [
            "http://a.example",
            "a.example/x",
            "a b",
            "a.example:80",
            "10.0.0.1:80",
            "[fe80::1]:80",
        ] {
            let error = WebGuard::new([bad]).unwrap_err();
            assert!(error.0.contains("GROCERY_ALLOWED_HOSTS"), "{error}");
        }
        assert!(WebGuard::new(["", " a.example "]).is_ok());
    }
}
