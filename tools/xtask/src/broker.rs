//! The `--broker` and `--auth` flags shared by `demo`, `bench` and `stack`.

use anyhow::Context as _;
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions};

/// Which broker a command runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BrokerArg {
    /// librdkafka's mock cluster (in-process).
    Mock,
    /// A real Apache Kafka broker (needs Java 17 and Maven).
    Kafka,
}

impl BrokerArg {
    /// The stack's broker for this flag and `--auth`; the mock cluster has no SASL.
    ///
    /// # Errors
    /// `--auth` other than `none` with the mock cluster.
    pub(crate) fn kind(self, auth: KafkaAuth) -> anyhow::Result<BrokerKind> {
        match self {
            Self::Mock => {
                anyhow::ensure!(
                    auth == KafkaAuth::None,
                    "--auth needs --broker kafka: the mock cluster has no SASL"
                );
                Ok(BrokerKind::Mock)
            }
            Self::Kafka => Ok(BrokerKind::Kafka { auth }),
        }
    }

    /// How reports name the broker.
    pub(crate) fn label(self, auth: KafkaAuth) -> String {
        match self {
            Self::Mock => "librdkafka mock cluster".to_owned(),
            Self::Kafka => format!(
                "Apache Kafka 4.1.1 (KRaft, 1 node, {})",
                match auth {
                    KafkaAuth::OAuth => "SASL OAUTHBEARER",
                    KafkaAuth::Plain => "SASL PLAIN",
                    _ => "PLAINTEXT",
                }
            ),
        }
    }
}

/// Starts the local stack (the application's topics created) on `broker`.
///
/// # Errors
/// A bad flag combination, or the broker or the registry cannot start.
pub(crate) async fn start_stack(broker: BrokerArg, auth: KafkaAuth) -> anyhow::Result<Stack> {
    Stack::start_with(StackOptions {
        broker: broker.kind(auth)?,
        ..grocery_stack::options()
    })
    .await
    .with_context(|| format!("starting the local stack ({})", broker.label(auth)))
}
