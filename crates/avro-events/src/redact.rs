//! URLs as the library shows them: without the credentials a URL may carry.

/// `url` without its userinfo (`https://KEY:SECRET@host` → `https://[REDACTED]@host`) and query
/// (`?…` → `?[REDACTED]`), for errors and logs. A URL with neither is returned unchanged.
pub(crate) fn redact_url(url: &str) -> String {
    let (head, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("[REDACTED]@{host}"),
        None => authority.to_owned(),
    };
    let path = match tail.find(['?', '#']) {
        Some(at) if tail[at..].starts_with('?') => format!("{}?[REDACTED]", &tail[..at]),
        Some(at) => tail[..at].to_owned(),
        None => tail.to_owned(),
    };
    format!("{head}{authority}{path}")
}

/// The userinfo of `url` (`KEY:SECRET` of `https://KEY:SECRET@host`), percent-decoded, and the
/// URL without it.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<(String, String)>) {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return (url.to_owned(), None);
    };
    if parsed.username().is_empty() && parsed.password().is_none() {
        return (url.to_owned(), None);
    }
    let user = percent_decode(parsed.username());
    let password = parsed.password().map(percent_decode).unwrap_or_default();
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let mut bare = parsed.to_string();
    if !url.trim_end().ends_with('/') && parsed.path() == "/" && bare.ends_with('/') {
        bare.pop();
    }
    (bare, Some((user, password)))
}

/// Whether `url` names a loopback host ([`is_loopback_host`]): the only hosts to which the
/// library sends credentials over `http://`.
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

/// Whether `host` (a name or an address, IPv6 with or without brackets) is loopback:
/// `localhost`, `127.0.0.0/8`, `::1` or an IPv4-mapped loopback address (`::ffff:127.0.0.1`),
/// a trailing dot allowed (`localhost.`). The one loopback check of the library: credentials
/// over `http://` and SASL_PLAINTEXT brokers (`config::plaintext`) both ask it.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_userinfo_and_query() {
        assert_eq!(
            redact_url("https://KEY:S3CRET@psrc.example/path?token=x#f"),
            "https://[REDACTED]@psrc.example/path?[REDACTED]"
        );
        assert_eq!(redact_url("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(
            redact_url("https://idp.example/oauth2/token"),
            "https://idp.example/oauth2/token"
        );
        assert_eq!(redact_url("u:p@host:1"), "[REDACTED]@host:1");
    }

    /// One check for credentials over `http://` and for SASL_PLAINTEXT brokers: the two used
    /// to differ on IPv4-mapped loopback addresses and a trailing dot.
    #[test]
    fn loopback_hosts_are_this_machine_only() {
        for url in [
            "http://localhost:8081",
            "http://LOCALHOST.:8081",
            "http://127.0.0.1",
            "http://127.9.8.7:1",
            "http://[::1]:8081",
            "http://[::ffff:127.0.0.1]:8081",
        ] {
            assert!(is_loopback(&url.parse().unwrap()), "{url}");
        }
        for url in [
            "http://10.0.0.1",
            "http://0.0.0.0:8081",
            "http://[::]:8081",
            "http://[::ffff:10.0.0.1]",
            "http://localhost.example",
            "http://psrc.example",
        ] {
            assert!(!is_loopback(&url.parse().unwrap()), "{url}");
        }
    }

    #[test]
    fn splits_userinfo_into_credentials() {
        let (bare, creds) = split_userinfo("https://KEY:S3%40CRET@psrc.example");
        assert_eq!(bare, "https://psrc.example");
        assert_eq!(creds, Some(("KEY".into(), "S3@CRET".into())));
        let (bare, creds) = split_userinfo("http://127.0.0.1:8081/sr/");
        assert_eq!(bare, "http://127.0.0.1:8081/sr/");
        assert_eq!(creds, None);
    }
}
