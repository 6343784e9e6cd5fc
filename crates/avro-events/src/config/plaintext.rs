//! `security.protocol=SASL_PLAINTEXT` only towards loopback brokers: SASL over plain TCP sends
//! the credentials (a PLAIN password, an OAuth token) and every record in clear text, so it is
//! refused for any other broker unless `sasl.plaintext.allow.remote=true` says the network is
//! trusted.

use crate::{Error, Result};

use super::Config;

/// The property that allows `SASL_PLAINTEXT` towards brokers that are not on loopback.
pub(super) const ALLOW_REMOTE_KEY: &str = "sasl.plaintext.allow.remote";

impl Config {
    /// Checks that `security.protocol=SASL_PLAINTEXT` names only loopback brokers in
    /// `bootstrap.servers` (`localhost`, `127.0.0.0/8`, `::1`), unless
    /// `sasl.plaintext.allow.remote=true`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `security.protocol` and the first broker that is not on
    /// loopback, or naming `sasl.plaintext.allow.remote` when it is neither `true` nor `false`.
    pub(super) fn check_sasl_plaintext(&self) -> Result<()> {
        let allow_remote = self.flag(ALLOW_REMOTE_KEY, false)?;
        let sasl_plaintext = self
            .get("security.protocol")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("SASL_PLAINTEXT"));
        if !sasl_plaintext || allow_remote {
            return Ok(());
        }
        let servers = self.get("bootstrap.servers").unwrap_or_default();
        let remote = servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .find(|server| !is_loopback_server(server));
        match remote {
            None => Ok(()),
            Some(server) => Err(Error::Config {
                key: "security.protocol".into(),
                reason: format!(
                    "SASL_PLAINTEXT would send the SASL credentials (a password, an OAuth token) \
                     and every record in clear text to broker '{server}', which is not a \
                     loopback host (localhost, 127.0.0.0/8, ::1); use SASL_SSL, or set \
                     {ALLOW_REMOTE_KEY}=true where the network is trusted"
                ),
            }),
        }
    }
}

/// Whether a `bootstrap.servers` entry (`[proto://]host[:port]`, IPv6 in brackets) names a
/// loopback host.
fn is_loopback_server(server: &str) -> bool {
    let authority = server.split_once("://").map_or(server, |(_, rest)| rest);
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(inside, _)| inside)
    } else if authority.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        authority
    } else {
        authority
            .split_once(':')
            .map_or(authority, |(host, _)| host)
    };
    crate::redact::is_loopback_host(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(text: &str) -> Result<()> {
        let registry = "schema.registry.url=http://127.0.0.1:8081\n";
        Config::from_properties_str(&format!("{registry}{text}"))
            .unwrap()
            .validate()
    }

    fn refused(text: &str) -> bool {
        matches!(validate(text), Err(Error::Config { ref key, .. }) if key == "security.protocol")
    }

    #[test]
    fn sasl_plaintext_is_refused_for_a_broker_off_loopback() {
        let sasl = "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\n\
                    sasl.username=key\nsasl.password=hunter2-s3cret\n";
        for servers in [
            "pkc-1.eu-west-1.aws.confluent.cloud:9092",
            "127.0.0.1:9092,broker-2:9092",
            "10.0.0.7:9092",
            "[fe80::1]:9092",
            "SASL_PLAINTEXT://kafka.internal:9092",
        ] {
            let err = validate(&format!("bootstrap.servers={servers}\n{sasl}")).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, Error::Config { ref key, .. } if key == "security.protocol"),
                "{servers}: {text}"
            );
            assert!(text.contains("not a loopback host"), "{text}");
            assert!(text.contains(ALLOW_REMOTE_KEY), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        for servers in [
            "127.0.0.1:9092",
            "localhost:9092,127.0.0.2:9093",
            "[::1]:9092",
            "::1",
            "LOCALHOST",
            "PLAINTEXT://127.0.0.1:9092",
        ] {
            let checked = validate(&format!("bootstrap.servers={servers}\n{sasl}"));
            assert!(checked.is_ok(), "{servers}: {checked:?}");
        }
        // Allowed explicitly; other protocols are not concerned.
        let remote = "bootstrap.servers=broker-2:9092\n";
        assert!(validate(&format!("{remote}{sasl}{ALLOW_REMOTE_KEY}=true\n")).is_ok());
        assert!(refused(&format!(
            "{remote}{sasl}{ALLOW_REMOTE_KEY}=false\n"
        )));
        assert!(validate(&format!("{remote}security.protocol=SASL_SSL\n")).is_ok());
        assert!(refused(&format!(
            "{remote}security.protocol=sasl_plaintext\n"
        )));
        let err = validate(&format!("{remote}{sasl}{ALLOW_REMOTE_KEY}=yes\n")).unwrap_err();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == ALLOW_REMOTE_KEY),
            "{err}"
        );
    }
}
