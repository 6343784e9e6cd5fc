//! The files a broker run needs: `server.properties` (KRaft single node, four listeners,
//! authorizer) and the log4j2 configuration.

use std::fmt::Write as _;

use super::KafkaBrokerOptions;

/// The ports of the broker's listeners, all on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ports {
    pub(crate) plaintext: u16,
    pub(crate) oauth: u16,
    pub(crate) plain: u16,
    pub(crate) controller: u16,
}

/// Listener names as they appear in `server.properties` (and in broker log lines).
pub(crate) const PLAINTEXT: &str = "PLAINTEXT";
pub(crate) const OAUTH: &str = "OAUTH";
pub(crate) const APIKEY: &str = "APIKEY";
const CONTROLLER: &str = "CONTROLLER";

/// Renders `server.properties` for `options` with `data_dir` as `log.dirs`.
pub(crate) fn server_properties(
    options: &KafkaBrokerOptions,
    ports: Ports,
    data_dir: &str,
    jwks_url: Option<&str>,
) -> String {
    let Ports {
        plaintext,
        oauth,
        plain,
        controller,
    } = ports;
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "{key}={}", escape(value));
    };
    line("process.roles", "broker,controller");
    line("node.id", "1");
    line(
        "controller.quorum.voters",
        &format!("1@127.0.0.1:{controller}"),
    );
    line("controller.listener.names", CONTROLLER);
    line("inter.broker.listener.name", PLAINTEXT);
    // The OAuth listener exists only with an identity provider to validate tokens against.
    let oauth_listener = match jwks_url {
        Some(_) => format!(",{OAUTH}://127.0.0.1:{oauth}"),
        None => String::new(),
    };
    line(
        "listeners",
        &format!(
            "{PLAINTEXT}://127.0.0.1:{plaintext},{APIKEY}://127.0.0.1:{plain},\
             {CONTROLLER}://127.0.0.1:{controller}{oauth_listener}"
        ),
    );
    line(
        "advertised.listeners",
        &format!(
            "{PLAINTEXT}://127.0.0.1:{plaintext},{APIKEY}://127.0.0.1:{plain}{oauth_listener}"
        ),
    );
    line(
        "listener.security.protocol.map",
        &format!(
            "{PLAINTEXT}:PLAINTEXT,{CONTROLLER}:PLAINTEXT,{OAUTH}:SASL_PLAINTEXT,\
             {APIKEY}:SASL_PLAINTEXT"
        ),
    );
    line("log.dirs", data_dir);
    line("num.partitions", "1");
    line("auto.create.topics.enable", "false");
    // Single node: every internal topic with one replica.
    for prefix in ["offsets.topic", "transaction.state.log"] {
        line(&format!("{prefix}.replication.factor"), "1");
        line(&format!("{prefix}.num.partitions"), "4");
    }
    line("transaction.state.log.min.isr", "1");
    line("share.coordinator.state.topic.replication.factor", "1");
    line("share.coordinator.state.topic.min.isr", "1");
    line("min.insync.replicas", "1");
    line("group.initial.rebalance.delay.ms", "0");
    // KIP-848 (`group.protocol=consumer`) beside the classic protocol; Kafka 4's default,
    // stated so a reader sees it.
    line("group.coordinator.rebalance.protocols", "classic,consumer");
    // Short sessions so tests that kill consumers see their partitions move quickly.
    line("group.consumer.min.session.timeout.ms", "6000");
    line("group.consumer.session.timeout.ms", "10000");
    line("group.consumer.min.heartbeat.interval.ms", "500");
    line("group.consumer.heartbeat.interval.ms", "1000");
    line(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "5000",
    );

    // Authorization: ACLs, denied unless allowed; PLAINTEXT (tests, admin) and the controller
    // connect as User:ANONYMOUS and are super users.
    line(
        "authorizer.class.name",
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    );
    line("allow.everyone.if.no.acl.found", "false");
    line("super.users", "User:ANONYMOUS");

    // SASL: OAUTHBEARER (JWTs checked by Kafka's own validator) and PLAIN (API keys).
    line(
        "connections.max.reauth.ms",
        &options.max_reauth.as_millis().to_string(),
    );
    let oauth_l = OAUTH.to_ascii_lowercase();
    if let Some(jwks) = jwks_url {
        line(
            &format!("listener.name.{oauth_l}.sasl.enabled.mechanisms"),
            "OAUTHBEARER",
        );
        line(
            &format!("listener.name.{oauth_l}.oauthbearer.sasl.jaas.config"),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
        );
        line(
            &format!("listener.name.{oauth_l}.oauthbearer.sasl.server.callback.handler.class"),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        );
        line("sasl.oauthbearer.jwks.endpoint.url", jwks);
        // Kafka 4.1's default `DefaultJwtValidator`, built by the callback handler without a key
        // resolver, falls back to `ClientJwtValidator`, which checks claims only: no signature,
        // no audience. `BrokerJwtValidator` checks both against the JWKS.
        line(
            "sasl.oauthbearer.jwt.validator.class",
            "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator",
        );
        line("sasl.oauthbearer.expected.audience", &options.audience);
        line("sasl.oauthbearer.sub.claim.name", "sub");
        if let Some(issuer) = &options.expected_issuer {
            line("sasl.oauthbearer.expected.issuer", issuer);
        }
    }
    let apikey_l = APIKEY.to_ascii_lowercase();
    line(
        &format!("listener.name.{apikey_l}.sasl.enabled.mechanisms"),
        "PLAIN",
    );
    let mut jaas = String::from("org.apache.kafka.common.security.plain.PlainLoginModule required");
    for (user, password) in &options.plain_users {
        let _ = write!(jaas, " user_{user}=\"{}\"", password.replace('"', "\\\""));
    }
    jaas.push_str(" ;");
    line(
        &format!("listener.name.{apikey_l}.plain.sasl.jaas.config"),
        &jaas,
    );
    out
}

/// Escapes a value for a Java properties file (backslashes; leading spaces are not produced).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

/// log4j2 configuration: everything to stdout (captured by the broker handle), Kafka at INFO,
/// authentication and token validation at DEBUG so (re-)authentications can be counted and
/// refused tokens show why.
pub(crate) const LOG4J2: &str = "\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.auth.name = org.apache.kafka.common.security.authenticator.SaslServerAuthenticator
logger.auth.level = DEBUG
logger.oauth.name = org.apache.kafka.common.security.oauthbearer
logger.oauth.level = DEBUG
logger.authz.name = kafka.authorizer.logger
logger.authz.level = INFO
";
