//! The grocery application's local stack: [`local_stack`] configured with the grocery topics
//! (created with their partitions), the services' identities and their least-privilege ACLs
//! (as `terraform/` grants them on Confluent Cloud), and sample grocery records ([`sample`]).
//! `local-stack` itself knows no application; the services' tests, `xtask` and the demo start
//! the stack through here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), local_stack::StackError> {
//! let stack = grocery_stack::start().await?; // the mock cluster, the grocery topics created
//! println!("{}", stack.client_properties());
//! # Ok(()) }
//! ```

pub mod sample;

use grocery_events::topics;
pub use local_stack::real_broker::ADMIN;
use local_stack::{
    Stack, StackError, StackOptions, StackSchema,
    broker::{AclOperation as Op, AclResource as Res, AclRule},
};

/// The grocery topics with their partition counts: [`topics::ALL`], [`topics::PARTITIONS`] each.
pub fn topics() -> Vec<(String, i32)> {
    topics::ALL
        .iter()
        .map(|topic| ((*topic).to_owned(), topics::PARTITIONS))
        .collect()
}

/// [`StackOptions::default`] with the grocery topics, and on a real broker the services'
/// identities and ACLs: start from it and change what a test needs
/// (`StackOptions { broker, ..grocery_stack::options() }`).
pub fn options() -> StackOptions {
    StackOptions {
        topics: topics(),
        schemas: schemas(),
        identities: SERVICES.iter().map(|id| (*id).to_owned()).collect(),
        acls: service_acls(),
        ..StackOptions::default()
    }
}

/// The schemas registered at start, as `terraform/main.tf` registers them with their
/// contracts: the order schema under `grocery.orders.v1-value` with the order contract
/// (`schemas/grocery.orders.v1.contract.json`, rule `order_has_lines`), which order-producer
/// writes orders with. The other subjects are registered by the services' first sends.
pub fn schemas() -> Vec<StackSchema> {
    vec![StackSchema {
        subject: format!("{}-value", topics::ORDERS),
        schema: <grocery_events::Order as grocery_events::Event>::SCHEMA.to_owned(),
        contract: Some(grocery_events::contracts::order_contract()),
    }]
}

/// Starts the stack with [`options`]: the mock cluster with the grocery topics.
///
/// # Errors
/// When the broker or the registry cannot start.
pub async fn start() -> Result<Stack, StackError> {
    Stack::start_with(options()).await
}

/// The identity order-producer uses: may write orders.
pub const ORDER_PRODUCER: &str = "order-producer";
/// The identity fulfillment-service uses: reads orders, writes pick lists and the orders' DLQ.
pub const FULFILLMENT: &str = "fulfillment-service";
/// The identity picklist-consumer uses: reads pick lists.
pub const PICKLIST_CONSUMER: &str = "picklist-consumer";
/// The services' identities, which a real-broker stack registers (besides the stack's own
/// [`ADMIN`], allowed everything).
pub const SERVICES: [&str; 3] = [ORDER_PRODUCER, FULFILLMENT, PICKLIST_CONSUMER];
/// Every identity a real-broker grocery stack has: the services' and [`ADMIN`].
pub const IDENTITIES: [&str; 4] = [ORDER_PRODUCER, FULFILLMENT, PICKLIST_CONSUMER, ADMIN];

/// The least-privilege ACLs of the services' identities (as `terraform/access.tf` grants them).
pub fn service_acls() -> Vec<AclRule> {
    let user = |name: &str| format!("User:{name}");
    let dlq = |topic: &str| topics::dead_letter(topic);
    let mut rules = Vec::new();
    let mut topic = |who: &str, name: &str, ops: &[Op]| {
        for op in ops {
            rules.push(AclRule::allow(user(who), Res::Topic, name, *op));
        }
    };
    // The Order API writes orders (in transactions of its transactional id `order-api-*`),
    // reads them back on start for its idempotency keys, and rebuilds its order-history view
    // from the status changes, as a replay: a status record it cannot read is passed over and
    // counted, never dead-lettered (no write on the status dead-letter topic, as in
    // terraform/access.tf).
    topic(
        ORDER_PRODUCER,
        topics::ORDERS,
        &[Op::Write, Op::Read, Op::Describe],
    );
    topic(
        ORDER_PRODUCER,
        topics::ORDER_STATUS,
        &[Op::Read, Op::Describe],
    );
    // An order the order contract's rule (order_has_lines) refuses goes to the orders'
    // dead-letter topic, written by the producer (the rule's `DLQ` action).
    topic(
        ORDER_PRODUCER,
        &dlq(topics::ORDERS),
        &[Op::Write, Op::Describe],
    );
    // The latest state of each order: the Order API writes it (transactional id
    // `order-api-state`, within the `order-api-` prefix below) and starts its view from it;
    // picklist-consumer starts its restore from it.
    topic(
        ORDER_PRODUCER,
        topics::ORDER_STATE,
        &[Op::Write, Op::Read, Op::Describe],
    );
    topic(
        PICKLIST_CONSUMER,
        topics::ORDER_STATE,
        &[Op::Read, Op::Describe],
    );
    // Fulfillment writes RECEIVED and PICKLIST_CREATED, store staff (picklist-consumer) the
    // picking states.
    topic(
        FULFILLMENT,
        topics::ORDER_STATUS,
        &[Op::Write, Op::Describe],
    );
    // Store staff's steps, read back with the pick lists on start (the page's lists not yet
    // ready) as a replay: status records it cannot read are passed over, never dead-lettered.
    topic(
        PICKLIST_CONSUMER,
        topics::ORDER_STATUS,
        &[Op::Write, Op::Read, Op::Describe],
    );
    topic(FULFILLMENT, topics::ORDERS, &[Op::Read, Op::Describe]);
    topic(FULFILLMENT, topics::PICKLISTS, &[Op::Write, Op::Describe]);
    topic(
        FULFILLMENT,
        &dlq(topics::ORDERS),
        &[Op::Write, Op::Describe],
    );
    topic(
        PICKLIST_CONSUMER,
        topics::PICKLISTS,
        &[Op::Read, Op::Describe],
    );
    topic(
        PICKLIST_CONSUMER,
        &dlq(topics::PICKLISTS),
        &[Op::Write, Op::Describe],
    );
    let prefixed = |who: &str, resource: Res, prefix: &str, op: Op| {
        AclRule::allow(user(who), resource, prefix, op).prefixed()
    };
    rules.push(prefixed(FULFILLMENT, Res::Group, "fulfillment", Op::Read));
    rules.push(prefixed(
        FULFILLMENT,
        Res::Group,
        "fulfillment",
        Op::Describe,
    ));
    for op in [Op::Write, Op::Describe] {
        rules.push(prefixed(
            FULFILLMENT,
            Res::TransactionalId,
            "fulfillment",
            op,
        ));
    }
    rules.push(prefixed(
        PICKLIST_CONSUMER,
        Res::Group,
        "picklist",
        Op::Read,
    ));
    rules.push(prefixed(
        PICKLIST_CONSUMER,
        Res::Group,
        "picklist",
        Op::Describe,
    ));
    for op in [Op::Read, Op::Describe] {
        rules.push(prefixed(ORDER_PRODUCER, Res::Group, "order-api", op));
    }
    for op in [Op::Write, Op::Describe] {
        rules.push(prefixed(
            ORDER_PRODUCER,
            Res::TransactionalId,
            "order-api-",
            op,
        ));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_name_every_grocery_topic_and_service() {
        let options = options();
        assert_eq!(options.topics.len(), topics::ALL.len());
        assert!(options.topics.iter().all(|(_, p)| *p == topics::PARTITIONS));
        assert_eq!(options.identities, SERVICES);
        // Every service's ACLs name it; none is the stack's admin's.
        for service in SERVICES {
            let principal = format!("User:{service}");
            assert!(
                options.acls.iter().any(|rule| rule.principal == principal),
                "{service}"
            );
        }
        assert!(
            !options
                .acls
                .iter()
                .any(|rule| rule.principal == format!("User:{ADMIN}"))
        );
    }
}
