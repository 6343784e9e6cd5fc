//! `client.properties` texts in Confluent's property names, so Confluent's own clients (and this
//! library's [`Config`](avro_events::Config)) use them unchanged.

use std::fmt::Write as _;

/// How a client authenticates to Kafka.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No authentication (a PLAINTEXT listener).
    None,
    /// SASL OAUTHBEARER with client-credentials tokens (`sasl.oauthbearer.method=oidc`).
    OAuth {
        /// `sasl.oauthbearer.token.endpoint.url`.
        token_url: String,
        /// `sasl.oauthbearer.client.id`.
        client_id: String,
        /// `sasl.oauthbearer.client.secret`.
        client_secret: String,
        /// `sasl.oauthbearer.scope`, if any.
        scope: Option<String>,
    },
    /// SASL PLAIN, the API-key style (`sasl.username` / `sasl.password`).
    Plain {
        /// `sasl.username` (the API key).
        username: String,
        /// `sasl.password` (the API secret).
        password: String,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::OAuth {
                token_url,
                client_id,
                scope,
                ..
            } => f
                .debug_struct("OAuth")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .field("scope", scope)
                .finish(),
            Self::Plain { username, .. } => f
                .debug_struct("Plain")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
        }
    }
}

/// A `client.properties` text: `bootstrap` with `auth`, and the Schema Registry at
/// `registry_url`. Secrets are in the text (it is a credentials file): write it with care.
pub fn client_properties(bootstrap: &str, registry_url: &str, auth: &ClientAuth) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "{key}={value}");
    };
    line("bootstrap.servers", bootstrap);
    match auth {
        ClientAuth::None => {}
        ClientAuth::OAuth {
            token_url,
            client_id,
            client_secret,
            scope,
        } => {
            line("security.protocol", "SASL_PLAINTEXT");
            line("sasl.mechanisms", "OAUTHBEARER");
            line("sasl.oauthbearer.method", "oidc");
            line("sasl.oauthbearer.token.endpoint.url", token_url);
            line("sasl.oauthbearer.client.id", client_id);
            line("sasl.oauthbearer.client.secret", client_secret);
            if let Some(scope) = scope {
                line("sasl.oauthbearer.scope", scope);
            }
        }
        ClientAuth::Plain { username, password } => {
            line("security.protocol", "SASL_PLAINTEXT");
            line("sasl.mechanisms", "PLAIN");
            line("sasl.username", username);
            line("sasl.password", password);
        }
    }
    line("schema.registry.url", registry_url);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_properties_use_confluent_names_and_debug_redacts_the_secret() {
        let auth = ClientAuth::OAuth {
            token_url: "http://127.0.0.1:1/token".into(),
            client_id: "svc".into(),
            client_secret: "s3cret".into(),
            scope: Some("kafka".into()),
        };
        let text = client_properties("127.0.0.1:9", "http://127.0.0.1:2", &auth);
        for want in [
            "bootstrap.servers=127.0.0.1:9\n",
            "security.protocol=SASL_PLAINTEXT\n",
            "sasl.mechanisms=OAUTHBEARER\n",
            "sasl.oauthbearer.method=oidc\n",
            "sasl.oauthbearer.client.secret=s3cret\n",
            "schema.registry.url=http://127.0.0.1:2\n",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(!format!("{auth:?}").contains("s3cret"));
        let plain = ClientAuth::Plain {
            username: "k".into(),
            password: "p4ss".into(),
        };
        assert!(!format!("{plain:?}").contains("p4ss"));
        assert!(client_properties("b", "r", &plain).contains("sasl.mechanisms=PLAIN\n"));
    }
}
