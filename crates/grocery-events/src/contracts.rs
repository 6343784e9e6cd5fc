//! The grocery data contracts: metadata and rule sets registered with the schemas
//! (`schemas/<topic>.contract.json`, also what Terraform registers with `confluent_schema`'s
//! `metadata` and `ruleset` blocks).
//!
//! The order contract has one rule, `order_has_lines`: a `CONDITION` in `WRITE` mode that an
//! order has at least one line and that every line's quantity is positive. Its failures go to
//! `grocery.orders.v1.dlq` (the `DLQ` action): a producer writing with the registered
//! contract (`use.latest.version=true`, or `use.latest.with.metadata=contract=order-lines`)
//! gets [`Error::RuleFailed`](crate::Error::RuleFailed) for such an order, and the order, as
//! JSON with Confluent's `__rule.*` headers, is on the dead-letter topic.

use avro_events::{Result, registry::RegistryClient, rules::Contract};

/// The order contract's text (`schemas/grocery.orders.v1.contract.json`).
pub const ORDER_CONTRACT_JSON: &str = include_str!("../schemas/grocery.orders.v1.contract.json");

/// The order contract.
///
/// # Panics
/// Never: the file is checked by this crate's tests (`contracts::tests`).
pub fn order_contract() -> Contract {
    Contract::from_json(
        ORDER_CONTRACT_JSON,
        "schemas/grocery.orders.v1.contract.json",
    )
    .expect("schemas/grocery.orders.v1.contract.json is a contract")
}

/// Registers the order schema under `subject` with the order contract; returns its id.
///
/// # Errors
/// Registry errors ([`RegistryClient::register_contract`]).
pub async fn register_order_contract(registry: &RegistryClient, subject: &str) -> Result<u32> {
    let contract = order_contract();
    registry
        .register_contract(
            subject,
            <crate::Order as avro_events::Event>::SCHEMA,
            contract.metadata.as_ref(),
            contract.rule_set.as_ref(),
            false,
        )
        .await
}

#[cfg(test)]
mod tests {
    use avro_events::rules::{RuleKind, RuleMode};

    #[test]
    fn the_order_contract_parses_with_its_dlq_condition() {
        let contract = super::order_contract();
        let rules = contract.rule_set.unwrap().domain_rules;
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].name, "order_has_lines");
        assert_eq!(
            (rules[0].kind, rules[0].mode),
            (RuleKind::Condition, RuleMode::Write)
        );
        assert_eq!(rules[0].on_failure.as_deref(), Some("DLQ"));
        assert_eq!(
            rules[0].params.get("dlq.topic").map(String::as_str),
            Some("grocery.orders.v1.dlq")
        );
        let properties = contract.metadata.unwrap().properties;
        assert_eq!(
            properties.get("contract").map(String::as_str),
            Some("order-lines")
        );
    }
}
