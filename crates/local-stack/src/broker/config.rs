//! The files a broker run needs: `server.properties` (a KRaft node: the single node with both
//! roles, or a controller or a broker of a cluster; four listeners, authorizer) and the log4j2
//! configuration.

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

/// What a node does in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The single-node broker: `broker,controller` in one JVM.
    Combined,
    /// A cluster's KRaft controller (the quorum's only voter; no client listeners).
    Controller,
    /// A cluster's broker.
    Broker,
}

/// One node's place in its cluster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'a> {
    pub(crate) role: Role,
    pub(crate) id: u32,
    /// Its listeners' ports (a controller uses only `controller`, a broker all but it).
    pub(crate) ports: Ports,
    /// `controller.quorum.voters`, e.g. `0@127.0.0.1:9093`.
    pub(crate) voters: &'a str,
    /// Replication factor of the internal topics (and the default of new topics); 1 on a
    /// single node. With more, `min.insync.replicas` is one less (2 for 3, as on Confluent
    /// Cloud).
    pub(crate) replication: u16,
}

/// Renders `server.properties` of `node` for `options` with `data_dir` as `log.dirs`.
pub(crate) fn server_properties(
    options: &KafkaBrokerOptions,
    node: Node<'_>,
    data_dir: &str,
    jwks_url: Option<&str>,
) -> String {
    let Ports {
        plaintext,
        oauth,
        plain,
        controller,
    } = node.ports;
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "{key}={}", escape(value));
    };
    line(
        "process.roles",
        match node.role {
            Role::Combined => "broker,controller",
            Role::Controller => "controller",
            Role::Broker => "broker",
        },
    );
    line("node.id", &node.id.to_string());
    line("controller.quorum.voters", node.voters);
    line("controller.listener.names", CONTROLLER);
    line("log.dirs", data_dir);
    if node.role == Role::Controller {
        // The controller serves only the quorum: no client listeners, no SASL. It keeps the
        // ACLs (the metadata log), so it runs the same authorizer; brokers reach it as
        // User:ANONYMOUS over PLAINTEXT, a super user.
        line(
            "listeners",
            &format!("{CONTROLLER}://127.0.0.1:{controller}"),
        );
        line(
            "listener.security.protocol.map",
            &format!("{CONTROLLER}:PLAINTEXT"),
        );
        line(
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        );
        line("allow.everyone.if.no.acl.found", "false");
        line("super.users", "User:ANONYMOUS");
        return out;
    }
    line("inter.broker.listener.name", PLAINTEXT);
    // The OAuth listener exists only with an identity provider to validate tokens against.
    let oauth_listener = match jwks_url {
        Some(_) => format!(",{OAUTH}://127.0.0.1:{oauth}"),
        None => String::new(),
    };
    let controller_listener = match node.role {
        Role::Combined => format!(",{CONTROLLER}://127.0.0.1:{controller}"),
        _ => String::new(),
    };
    line(
        "listeners",
        &format!(
            "{PLAINTEXT}://127.0.0.1:{plaintext},{APIKEY}://127.0.0.1:{plain}\
             {controller_listener}{oauth_listener}"
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
    line("num.partitions", "1");
    line("auto.create.topics.enable", "false");
    // Every internal topic with the cluster's replication factor (one replica on a single
    // node); writes need all replicas but one in sync.
    let replication = node.replication.max(1);
    let min_isr = replication.saturating_sub(1).max(1).to_string();
    let replication = replication.to_string();
    for prefix in ["offsets.topic", "transaction.state.log"] {
        line(&format!("{prefix}.replication.factor"), &replication);
        line(&format!("{prefix}.num.partitions"), "4");
    }
    line("default.replication.factor", &replication);
    line("transaction.state.log.min.isr", &min_isr);
    line(
        "share.coordinator.state.topic.replication.factor",
        &replication,
    );
    line("share.coordinator.state.topic.min.isr", &min_isr);
    line("min.insync.replicas", &min_isr);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(role: Role, replication: u16) -> String {
        let ports = Ports {
            plaintext: 9001,
            oauth: 9002,
            plain: 9003,
            controller: 9004,
        };
        let node = Node {
            role,
            id: 2,
            ports,
            voters: "0@127.0.0.1:9004",
            replication,
        };
        server_properties(
            &KafkaBrokerOptions::default(),
            node,
            "/data",
            Some("http://127.0.0.1:1/jwks"),
        )
    }

    fn value<'a>(properties: &'a str, key: &str) -> Option<&'a str> {
        properties
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn a_single_node_keeps_one_replica_and_both_roles() {
        let p = render(Role::Combined, 1);
        assert_eq!(value(&p, "process.roles"), Some("broker,controller"));
        assert_eq!(value(&p, "min.insync.replicas"), Some("1"));
        assert_eq!(value(&p, "offsets.topic.replication.factor"), Some("1"));
        assert!(
            value(&p, "listeners")
                .unwrap()
                .contains("CONTROLLER://127.0.0.1:9004")
        );
    }

    #[test]
    fn cluster_brokers_replicate_three_times_and_need_two_in_sync() {
        let p = render(Role::Broker, 3);
        assert_eq!(value(&p, "process.roles"), Some("broker"));
        assert_eq!(value(&p, "node.id"), Some("2"));
        assert_eq!(
            value(&p, "controller.quorum.voters"),
            Some("0@127.0.0.1:9004")
        );
        for key in [
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "default.replication.factor",
        ] {
            assert_eq!(value(&p, key), Some("3"), "{key}");
        }
        assert_eq!(value(&p, "min.insync.replicas"), Some("2"));
        assert_eq!(value(&p, "transaction.state.log.min.isr"), Some("2"));
        let listeners = value(&p, "listeners").unwrap();
        assert!(!listeners.contains("CONTROLLER"), "{listeners}");
        assert!(listeners.contains("OAUTH://127.0.0.1:9002"), "{listeners}");
        assert!(p.contains("StandardAuthorizer") && p.contains("OAUTHBEARER"));
    }

    #[test]
    fn the_controller_serves_only_the_quorum() {
        let p = render(Role::Controller, 3);
        assert_eq!(value(&p, "process.roles"), Some("controller"));
        assert_eq!(value(&p, "listeners"), Some("CONTROLLER://127.0.0.1:9004"));
        assert!(value(&p, "advertised.listeners").is_none());
        assert!(
            p.contains("StandardAuthorizer"),
            "ACLs live in the metadata log"
        );
    }
}
