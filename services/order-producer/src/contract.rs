//! Orders are written with the order contract: the schema registered under
//! `grocery.orders.v1-value` with its metadata and rule set
//! (`schemas/grocery.orders.v1.contract.json`, registered by `terraform/` and by the local
//! stack). Confluent's serializers run a schema's WRITE rules only when they write with a
//! registered schema (`use.latest.version`, `use.latest.with.metadata`, `use.schema.id`), not
//! when they register or look up their own, so the orders' client writes with the latest
//! registered version: `order_has_lines` (at least one line, every quantity positive) then runs
//! in the producer, and an order it refuses goes to `grocery.orders.v1.dlq` (the rule's `DLQ`
//! action) instead of the orders topic.

use grocery_events::{Client, Config, Error, topics};

/// The orders' client configuration: `config` writing with the latest registered order schema
/// and its contract (`use.latest.version=true`, `auto.register.schemas=false`), whatever
/// `config` says of those two, unless it picks the registered schema itself
/// (`use.latest.with.metadata` or `use.schema.id`), which runs the contract's rules too.
pub(crate) fn orders_config(config: &Config) -> Config {
    let picks_its_own = ["use.latest.with.metadata", "use.schema.id"]
        .iter()
        .any(|key| {
            config
                .get(key)
                .is_some_and(|value| !value.trim().is_empty())
        });
    if picks_its_own {
        return config.clone();
    }
    config
        .clone()
        .set("use.latest.version", "true")
        .set("auto.register.schemas", "false")
}

/// Checks at start that the order schema is registered: without it no order could be sent
/// (a configuration error, exit status 2). One registered without a rule set is logged: its
/// orders are written unchecked. A registry that cannot be asked now is left to the producer,
/// which waits for it as for any schema.
///
/// # Errors
/// [`service_kit::BadConfig`] when the subject does not exist.
pub(crate) async fn check_registered(client: &Client) -> anyhow::Result<()> {
    let subject = format!("{}-value", topics::ORDERS);
    match client.codec().registry().latest(&subject).await {
        Ok(latest) => {
            let rules: Vec<&str> = latest
                .rule_set
                .iter()
                .flat_map(|set| set.domain_rules.iter().map(|rule| rule.name.as_str()))
                .collect();
            if rules.is_empty() {
                tracing::warn!(%subject, schema_id = latest.id, "the order schema is registered without a contract: orders are written unchecked");
            } else {
                tracing::info!(%subject, schema_id = latest.id, rules = %rules.join(","), "orders are written with the registered order contract");
            }
            Ok(())
        }
        Err(Error::SubjectNotFound { subject, registry }) => Err(service_kit::BadConfig(format!(
            "the order schema is not registered under '{subject}' at {registry}: orders are \
             written with the registered schema and its contract (order_has_lines); register \
             it with schemas/grocery.orders.v1.contract.json (terraform apply does, the local \
             stack does at start)"
        ))
        .into()),
        Err(error) => {
            tracing::warn!(%subject, %error, "cannot check the order schema now; the producer waits for the registry");
            Ok(())
        }
    }
}
