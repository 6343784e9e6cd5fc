//! Checks that the Terraform in `terraform/` agrees with the Rust code and the schema files:
//! topic names and partition counts with `grocery_events::topics`, subjects and schema files
//! with `schemas/*.avsc` (TopicNameStrategy), the grants of each service (identity pool or
//! service account) with what it reads and writes, and which outputs are sensitive. Topics,
//! subjects and grants are data in `locals` that the resources iterate over with `for_each`;
//! what the plan makes of them (every CRN, every partition count) is checked by `tofu test`
//! in `terraform/tests/` (.ci/terraform-check).
//!
//! The `.tf` files are parsed with `hcl-rs`. Attribute values are evaluated just far enough to
//! compare names: string literals, numbers, lists, `${...}` interpolation, `local.x` (also
//! `local.x.y` into an object), `path.module`, and attributes of other resources that are
//! written in the configuration (`confluent_kafka_topic.orders.topic_name`). Whatever only
//! Terraform can know (`local.kafka.id`, `confluent_identity_pool.x.id`, function calls) is
//! rendered as a placeholder `<...>` naming the reference, so that failure messages show it.

mod terraform_hcl;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use grocery_events::topics::{self, ORDER_STATE, ORDER_STATUS, ORDERS, PARTITIONS, PICKLISTS};
use hcl::{Body, Expression, TraversalOperator, Value};
use terraform_hcl::{Config, repo_root};

/// Consumer group of fulfillment-service (reads orders).
const FULFILLMENT_GROUP: &str = "fulfillment-service";
/// Consumer group of picklist-consumer (reads pick lists).
const PICKLIST_GROUP: &str = "picklist-consumer";
/// Consumer group of the Order API's history view.
const ORDER_API_GROUP: &str = "order-api";
/// The Order API's latest-state writer's transactional id (one for every instance).
const ORDER_API_STATE_TRANSACTIONAL_ID: &str = service_kit::order_state::DEFAULT_TRANSACTIONAL_ID;
/// Prefix of fulfillment-service's transactional ids; the binding covers `<prefix>*`.
const FULFILLMENT_TRANSACTIONAL_ID_PREFIX: &str = "fulfillment-service-";
/// Prefix of the Order API's transactional ids (`order-producer serve --transactional-id`,
/// default `order-api-0`); the binding covers `<prefix>*`.
const ORDER_API_TRANSACTIONAL_ID_PREFIX: &str = "order-api-";
/// Prefix of the consumer groups of the operators' dead-letter readers; the binding covers
/// `<prefix>*`.
const DLQ_READER_GROUP_PREFIX: &str = "grocery-events-dlq-reader";

/// Value subject of `topic` under TopicNameStrategy.
/// The `[subjects]` entries of `schemas/compatibility.toml` (`"subject" = "LEVEL"` lines), the
/// levels `cargo xtask schemas check` applies offline and Terraform must set.
fn compatibility_levels(path: &Path) -> BTreeMap<String, String> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .skip_while(|line| line.trim() != "[subjects]")
        .filter_map(|line| {
            let (subject, level) = line.split_once('=')?;
            let unquote = |s: &str| s.trim().trim_matches('"').to_owned();
            Some((unquote(subject), unquote(level)))
        })
        .collect()
}

fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

fn config() -> Config {
    Config::load(&repo_root().join("terraform"))
}

fn fail_if_any(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "terraform/ disagrees with the Rust code or the schema files:\n  - {}\n",
        problems.join("\n  - ")
    );
}

/// Drops `.` and resolves `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `local.<name>` evaluated to an object, by key.
fn local_object(config: &Config, name: &str) -> Result<hcl::Map<String, Value>, String> {
    match config.locals.get(name).map(|e| config.eval(e, 0)) {
        Some(Ok(Value::Object(o))) => Ok(o),
        Some(Ok(other)) => Err(format!("local.{name} is not an object: {other:?}")),
        Some(Err(e)) => Err(format!("local.{name}: {e}")),
        None => Err(format!("local.{name} is not defined")),
    }
}

/// Field `key` of `entry` (an element of a local object or list) as a string.
fn field(what: &str, entry: &Value, key: &str) -> Result<String, String> {
    match entry {
        Value::Object(o) => match o.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(format!("{what}.{key} is not a string: {other:?}")),
            None => Err(format!("{what} has no `{key}`")),
        },
        other => Err(format!("{what} is not an object: {other:?}")),
    }
}

/// Checks that resource `kind.name` exists and that its attribute `key` evaluates to `want`
/// (for example `topic_name` to `<each.value.name>`).
fn expect_attr(config: &Config, kind: &str, name: &str, key: &str, want: &str) -> Option<String> {
    let what = format!("{kind}.{name}");
    let Some(body) = config.resources.get(&(kind.to_string(), name.to_string())) else {
        return Some(format!("resource {what} is missing"));
    };
    match config.string_attr(&what, body, key) {
        Ok(got) if got == want => None,
        Ok(got) => Some(format!("{what}.{key} is \"{got}\", expected \"{want}\"")),
        Err(e) => Some(e),
    }
}

/// Checks that resource `kind.name` exists and iterates with `for_each = local.<local>`.
fn expect_for_each(config: &Config, kind: &str, name: &str, local: &str) -> Option<String> {
    let what = format!("{kind}.{name}");
    let Some(body) = config.resources.get(&(kind.to_string(), name.to_string())) else {
        return Some(format!("resource {what} is missing"));
    };
    match Config::attr(body, "for_each") {
        Some(Expression::Traversal(t))
            if matches!(&t.expr, Expression::Variable(v) if v.as_str() == "local")
                && matches!(t.operators.as_slice(), [TraversalOperator::GetAttr(id)] if id.as_str() == local) =>
        {
            None
        }
        _ => Some(format!("{what} must have `for_each = local.{local}`")),
    }
}

#[test]
fn topics_agree_with_grocery_events_topics() {
    let config = config();
    let mut problems = Vec::new();

    // Key of local.topics (the confluent_kafka_topic.this instance) -> the topic it creates.
    let expected: BTreeMap<&str, String> = [
        ("orders", ORDERS.to_string()),
        ("picklist", PICKLISTS.to_string()),
        ("order_status", ORDER_STATUS.to_string()),
        ("orders_dlq", topics::dead_letter(ORDERS)),
        ("picklist_dlq", topics::dead_letter(PICKLISTS)),
        ("order_status_dlq", topics::dead_letter(ORDER_STATUS)),
        ("order_state", ORDER_STATE.to_string()),
    ]
    .into_iter()
    .collect();
    let all: BTreeSet<String> = topics::ALL.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        expected.values().cloned().collect::<BTreeSet<_>>(),
        all,
        "this test's list of topics is out of date with grocery_events::topics::ALL"
    );

    // One resource, for_each over local.topics, every instance with the same partition count.
    problems.extend(expect_for_each(
        &config,
        "confluent_kafka_topic",
        "this",
        "topics",
    ));
    match config.locals.get("topics") {
        Some(Expression::Object(_)) => {}
        _ => problems.push(
            "local.topics must be an object literal (the for_each of confluent_kafka_topic.this)"
                .into(),
        ),
    }
    problems.extend(expect_attr(
        &config,
        "confluent_kafka_topic",
        "this",
        "topic_name",
        "<each.value.name>",
    ));
    problems.extend(expect_attr(
        &config,
        "confluent_kafka_topic",
        "this",
        "partitions_count",
        &PARTITIONS.to_string(),
    ));
    let others: Vec<String> = config
        .resources_of("confluent_kafka_topic")
        .keys()
        .filter(|name| **name != "this")
        .map(|name| format!("confluent_kafka_topic.{name}"))
        .collect();
    if !others.is_empty() {
        problems.push(format!(
            "{others:?}: every topic is an entry of local.topics (confluent_kafka_topic.this)"
        ));
    }

    match local_object(&config, "topics") {
        Ok(declared) => {
            let mut declared_names = BTreeSet::new();
            for (key, entry) in &declared {
                let what = format!("local.topics.{key}");
                match field(&what, entry, "name") {
                    Ok(topic) => {
                        match expected.get(key.as_str()) {
                            Some(want) if *want != topic => problems.push(format!(
                                "{what}.name is \"{topic}\", grocery_events::topics says \"{want}\""
                            )),
                            None => problems.push(format!(
                                "{what} (topic \"{topic}\") is not a topic of grocery_events::topics::ALL"
                            )),
                            _ => {}
                        }
                        declared_names.insert(topic);
                    }
                    Err(e) => problems.push(e),
                }
            }
            for missing in all.difference(&declared_names) {
                problems.push(format!(
                    "topic \"{missing}\" of grocery_events::topics::ALL is not in local.topics"
                ));
            }
        }
        Err(e) => problems.push(e),
    }

    // The listing local must be the same list as grocery_events::topics::ALL.
    match config.locals.get("topic_names").map(|e| config.eval(e, 0)) {
        Some(Ok(Value::Array(items))) => {
            let listed: Vec<String> = items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => s,
                    other => format!("{other:?}"),
                })
                .collect();
            if listed != topics::ALL {
                problems.push(format!(
                    "local.topic_names is {listed:?}, grocery_events::topics::ALL is {:?}",
                    topics::ALL
                ));
            }
        }
        Some(Ok(other)) => problems.push(format!("local.topic_names is not a list: {other:?}")),
        Some(Err(e)) => problems.push(format!("local.topic_names: {e}")),
        None => problems.push("local.topic_names is not defined".into()),
    }

    fail_if_any(problems);
}

#[test]
fn subjects_and_schema_files_agree_with_schemas_dir() {
    let config = config();
    let root = repo_root();
    let schemas_dir = root.join("schemas");
    let mut problems = Vec::new();

    // Topic -> full name of the record its value schema must define.
    let expected: BTreeMap<&str, &str> = [
        (ORDERS, "io.groceryevents.Order"),
        (PICKLISTS, "io.groceryevents.PickList"),
        (ORDER_STATUS, "io.groceryevents.OrderStatus"),
        (ORDER_STATE, "io.groceryevents.OrderLatestState"),
    ]
    .into_iter()
    .collect();
    let expected_subjects: BTreeSet<String> = expected.keys().map(|t| value_subject(t)).collect();

    // confluent_subject_config.this and confluent_schema.this: for_each over local.subjects,
    // every attribute from the entry.
    for kind in ["confluent_subject_config", "confluent_schema"] {
        problems.extend(expect_for_each(&config, kind, "this", "subjects"));
        problems.extend(expect_attr(
            &config,
            kind,
            "this",
            "subject_name",
            "<each.value.name>",
        ));
        let others: Vec<&str> = config
            .resources_of(kind)
            .into_keys()
            .filter(|name| *name != "this")
            .collect();
        if !others.is_empty() {
            problems.push(format!(
                "{kind} {others:?}: every subject is an entry of local.subjects ({kind}.this)"
            ));
        }
    }
    problems.extend(expect_attr(
        &config,
        "confluent_subject_config",
        "this",
        "compatibility_level",
        "<each.value.compatibility>",
    ));
    problems.extend(expect_attr(
        &config,
        "confluent_schema",
        "this",
        "format",
        "AVRO",
    ));

    // schema = file("${path.module}/../schemas/${each.value.schema_file}")
    let schema_dir_of_resource = config
        .resources
        .get(&("confluent_schema".to_string(), "this".to_string()))
        .and_then(|body| match Config::attr(body, "schema") {
            Some(Expression::FuncCall(call))
                if call.name.name.as_str() == "file" && call.args.len() == 1 =>
            {
                match config.eval(&call.args[0], 0) {
                    Ok(Value::String(p)) => p
                        .strip_suffix("/<each.value.schema_file>")
                        .map(|dir| normalize(Path::new(dir))),
                    _ => None,
                }
            }
            _ => None,
        });
    if schema_dir_of_resource.as_deref() != Some(schemas_dir.as_path()) {
        problems.push(format!(
            "confluent_schema.this.schema must be file(\"${{path.module}}/../schemas/${{each.value.schema_file}}\"), reading {}",
            schemas_dir.display()
        ));
    }

    let levels = compatibility_levels(&schemas_dir.join("compatibility.toml"));
    let mut subjects = BTreeSet::new();
    let mut files = BTreeSet::new();
    match local_object(&config, "subjects") {
        Ok(declared) => {
            for (key, entry) in &declared {
                let what = format!("local.subjects.{key}");
                let subject = match field(&what, entry, "name") {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push(e);
                        continue;
                    }
                };
                subjects.insert(subject.clone());
                let expected_level = levels.get(&subject).map_or("BACKWARD", String::as_str);
                match field(&what, entry, "compatibility") {
                    Ok(level) if level == expected_level => {}
                    Ok(level) => problems.push(format!(
                        "{what}.compatibility is \"{level}\", expected \"{expected_level}\" \
                         (schemas/compatibility.toml)"
                    )),
                    Err(e) => problems.push(e),
                }
                let topic = subject.strip_suffix("-value");
                let Some((topic, record)) = topic.and_then(|t| expected.get_key_value(t)) else {
                    problems.push(format!(
                        "{what}.name is \"{subject}\", expected one of {expected_subjects:?} \
                         (TopicNameStrategy value subjects of grocery_events::topics)"
                    ));
                    continue;
                };
                let file = match field(&what, entry, "schema_file") {
                    Ok(f) => f,
                    Err(e) => {
                        problems.push(e);
                        continue;
                    }
                };
                let path = schemas_dir.join(&file);
                let want_path = schemas_dir.join(format!("{topic}.avsc"));
                if path != want_path {
                    problems.push(format!(
                        "{what} (subject \"{subject}\") reads {}, expected {}",
                        path.display(),
                        want_path.display()
                    ));
                }
                files.insert(path.clone());
                let text = match fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(format!(
                            "{what} reads {}, which cannot be read: {e}",
                            path.display()
                        ));
                        continue;
                    }
                };
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(schema) => {
                        let name = schema["name"].as_str().unwrap_or_default();
                        let full = match schema["namespace"].as_str() {
                            Some(ns) if !name.contains('.') => format!("{ns}.{name}"),
                            _ => name.to_string(),
                        };
                        if full != *record {
                            problems.push(format!(
                                "{} defines record \"{full}\", but subject \"{subject}\" carries {record}",
                                path.display()
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("{} is not JSON: {e}", path.display())),
                }
            }
        }
        Err(e) => problems.push(e),
    }
    for missing in expected_subjects.difference(&subjects) {
        problems.push(format!("subject \"{missing}\" is not in local.subjects"));
    }

    // Every schema file in schemas/ is registered by Terraform.
    let mut on_disk = BTreeSet::new();
    for entry in fs::read_dir(&schemas_dir).expect("schemas/ exists") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|x| x == "avsc") {
            on_disk.insert(path);
        }
    }
    for unused in on_disk.difference(&files) {
        problems.push(format!(
            "{} is not registered by any confluent_schema",
            unused.display()
        ));
    }

    fail_if_any(problems);
}

/// One role binding as `(role, resource kind, resource name)`, for example
/// `("DeveloperRead", "group", "fulfillment-service")`.
type Grant = (String, String, String);

fn grant(role: &str, kind: &str, name: &str) -> Grant {
    (role.to_string(), kind.to_string(), name.to_string())
}

/// A list of `{ role, kind, name }` objects as grants.
fn grants(what: &str, value: &Value, problems: &mut Vec<String>) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    let Value::Array(items) = value else {
        problems.push(format!("{what} is not a list: {value:?}"));
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let what = format!("{what}[{i}]");
        match (
            field(&what, item, "role"),
            field(&what, item, "kind"),
            field(&what, item, "name"),
        ) {
            (Ok(role), Ok(kind), Ok(name)) => {
                if !["topic", "group", "transactional-id", "subject"].contains(&kind.as_str()) {
                    problems.push(format!(
                        "{what}.kind \"{kind}\" is not a topic, group, transactional-id or subject"
                    ));
                }
                let new = out.insert((role.clone(), kind.clone(), name.clone()));
                if !new {
                    problems.push(format!("{what} repeats {role} on {kind} \"{name}\""));
                }
            }
            (r, k, n) => problems.extend([r.err(), k.err(), n.err()].into_iter().flatten()),
        }
    }
    out
}

#[test]
fn role_bindings_grant_each_service_what_it_uses() {
    let config = config();
    let mut problems = Vec::new();

    let orders_subject = value_subject(ORDERS);
    let picklist_subject = value_subject(PICKLISTS);
    let orders_dlq = topics::dead_letter(ORDERS);
    let picklist_dlq = topics::dead_letter(PICKLISTS);
    let status_subject = value_subject(ORDER_STATUS);
    let status_dlq = topics::dead_letter(ORDER_STATUS);
    let state_subject = value_subject(ORDER_STATE);
    let transactional_ids = format!("{FULFILLMENT_TRANSACTIONAL_ID_PREFIX}*");
    let dlq_reader_groups = format!("{DLQ_READER_GROUP_PREFIX}*");
    let order_api_transactional_ids = format!("{ORDER_API_TRANSACTIONAL_ID_PREFIX}*");
    // The latest-state writer's id is covered by the Order API's transactional-id binding.
    assert!(
        ORDER_API_STATE_TRANSACTIONAL_ID.starts_with(ORDER_API_TRANSACTIONAL_ID_PREFIX),
        "{ORDER_API_STATE_TRANSACTIONAL_ID} is outside {order_api_transactional_ids}"
    );

    // Service (key of local.services and local.service_grants) -> exactly the grants it needs.
    let expected: BTreeMap<&str, BTreeSet<Grant>> = [
        (
            "order_producer",
            [
                grant("DeveloperWrite", "topic", ORDERS),
                grant("DeveloperRead", "subject", &orders_subject),
                // An order the order contract's rule refuses goes to the orders' DLQ.
                grant("DeveloperWrite", "topic", &orders_dlq),
                // Each order in a transaction of the instance's transactional id, and the
                // idempotency keys of the accepted orders read back on start.
                grant(
                    "DeveloperWrite",
                    "transactional-id",
                    &order_api_transactional_ids,
                ),
                grant("DeveloperRead", "topic", ORDERS),
                // The Order API's history view is rebuilt from the status topic on start.
                grant("DeveloperRead", "topic", ORDER_STATUS),
                grant("DeveloperRead", "group", ORDER_API_GROUP),
                grant("DeveloperRead", "subject", &status_subject),
                // No write on the status dead-letter topic: the view reads as a replay, which
                // never dead-letters.
                // The view starts from each order's latest state and writes it, under one
                // transactional id.
                grant("DeveloperWrite", "topic", ORDER_STATE),
                grant("DeveloperRead", "topic", ORDER_STATE),
                grant("DeveloperRead", "subject", &state_subject),
            ]
            .into(),
        ),
        (
            "fulfillment",
            [
                grant("DeveloperRead", "topic", ORDERS),
                grant("DeveloperRead", "group", FULFILLMENT_GROUP),
                grant("DeveloperWrite", "topic", PICKLISTS),
                grant("DeveloperWrite", "topic", &orders_dlq),
                grant("DeveloperWrite", "transactional-id", &transactional_ids),
                grant("DeveloperRead", "subject", &orders_subject),
                // Schemas are registered by Terraform only (auto-registration is off), so
                // reading the pick-list subject is enough to produce pick lists.
                grant("DeveloperRead", "subject", &picklist_subject),
                grant("DeveloperWrite", "topic", ORDER_STATUS),
                grant("DeveloperRead", "subject", &status_subject),
            ]
            .into(),
        ),
        (
            "picklist_consumer",
            [
                grant("DeveloperRead", "topic", PICKLISTS),
                grant("DeveloperRead", "group", PICKLIST_GROUP),
                grant("DeveloperRead", "subject", &picklist_subject),
                grant("DeveloperWrite", "topic", &picklist_dlq),
                // Store staff's picking states, from the pick-list page, read back on start
                // (the lists not yet ready are put back on the page).
                grant("DeveloperWrite", "topic", ORDER_STATUS),
                grant("DeveloperRead", "topic", ORDER_STATUS),
                grant("DeveloperRead", "subject", &status_subject),
                // Read back as a replay: no write on the status dead-letter topic.
                // The restore starts from each order's latest state.
                grant("DeveloperRead", "topic", ORDER_STATE),
                grant("DeveloperRead", "subject", &state_subject),
            ]
            .into(),
        ),
        (
            // Operators' tools: read the dead-letter topics and decode their records with
            // the original subjects (dead-lettered records keep their schema ids).
            "dlq_reader",
            [
                grant("DeveloperRead", "topic", &orders_dlq),
                grant("DeveloperRead", "topic", &picklist_dlq),
                grant("DeveloperRead", "topic", &status_dlq),
                grant("DeveloperRead", "group", &dlq_reader_groups),
                grant("DeveloperRead", "subject", &orders_subject),
                grant("DeveloperRead", "subject", &picklist_subject),
                grant("DeveloperRead", "subject", &status_subject),
            ]
            .into(),
        ),
    ]
    .into_iter()
    .collect();
    let expected_services: BTreeSet<&str> = expected.keys().copied().collect();

    match local_object(&config, "services") {
        Ok(services) => {
            let got: BTreeSet<&str> = services.keys().map(String::as_str).collect();
            if got != expected_services {
                problems.push(format!(
                    "local.services is {got:?}, the services are {expected_services:?}"
                ));
            }
        }
        Err(e) => problems.push(e),
    }

    match local_object(&config, "service_grants") {
        Ok(declared) => {
            for (service, value) in &declared {
                let what = format!("local.service_grants.{service}");
                let got = grants(&what, value, &mut problems);
                let Some(want) = expected.get(service.as_str()) else {
                    problems.push(format!(
                        "{what}: {service} is not one of the services this test knows: {expected_services:?}"
                    ));
                    continue;
                };
                for (role, kind, name) in want.difference(&got) {
                    problems.push(format!("{service} lacks {role} on {kind} \"{name}\""));
                }
                for (role, kind, name) in got.difference(want) {
                    problems.push(format!(
                        "{service} has {role} on {kind} \"{name}\", which it does not need \
                         (or the name disagrees with grocery_events)"
                    ));
                }
            }
            for service in &expected_services {
                if !declared.contains_key(*service) {
                    problems.push(format!("local.service_grants has no entry for {service}"));
                }
            }
        }
        Err(e) => problems.push(e),
    }

    // Both auth variants give every service its principal, and the bindings are built from
    // local.service_grants (tofu test checks every CRN in the plan).
    problems.extend(expect_for_each(
        &config,
        "confluent_role_binding",
        "service",
        "service_role_bindings",
    ));
    for kind in ["confluent_identity_pool", "confluent_service_account"] {
        if !config
            .resources
            .contains_key(&(kind.to_string(), "service".to_string()))
        {
            problems.push(format!(
                "resource {kind}.service (one per service) is missing"
            ));
        }
    }

    // The manager owns the project's prefix and nothing else; every topic and subject is
    // under it.
    let prefix = match config
        .locals
        .get("manager_prefix")
        .map(|e| config.eval(e, 0))
    {
        Some(Ok(Value::String(p))) => p,
        other => {
            problems.push(format!("local.manager_prefix is not a string: {other:?}"));
            String::new()
        }
    };
    match config
        .locals
        .get("manager_grants")
        .map(|e| config.eval(e, 0))
    {
        Some(Ok(value)) => {
            let got = grants("local.manager_grants", &value, &mut problems);
            let want: BTreeSet<Grant> = [
                grant("ResourceOwner", "topic", &format!("{prefix}*")),
                grant("ResourceOwner", "subject", &format!("{prefix}*")),
            ]
            .into();
            if got != want {
                problems.push(format!(
                    "local.manager_grants is {got:?}, expected ResourceOwner on the topics and subjects \"{prefix}*\" only"
                ));
            }
        }
        Some(Err(e)) => problems.push(format!("local.manager_grants: {e}")),
        None => problems.push("local.manager_grants is not defined".into()),
    }
    for name in topics::ALL
        .iter()
        .map(|t| t.to_string())
        .chain([orders_subject.clone(), picklist_subject.clone()])
    {
        if prefix.is_empty() || !name.starts_with(&prefix) {
            problems.push(format!(
                "\"{name}\" is not under the manager's prefix \"{prefix}\": Terraform could not manage it"
            ));
        }
    }

    fail_if_any(problems);
}

#[test]
fn only_outputs_with_secrets_are_sensitive_and_they_are() {
    let dir = repo_root().join("terraform");
    let text = fs::read_to_string(dir.join("outputs.tf")).expect("terraform/outputs.tf exists");
    let body: Body = hcl::parse(&text).expect("outputs.tf is valid HCL");
    // What an output's value may reference only when the output is sensitive.
    let secret_sources = ["secret", "confluent_api_key", "client_properties"];
    let mut problems = Vec::new();
    let mut sensitive_outputs = BTreeSet::new();
    for block in body.blocks().filter(|b| b.identifier.as_str() == "output") {
        let name = block.labels.first().map(|l| l.as_str()).unwrap_or("?");
        let value = Config::attr(&block.body, "value")
            .map(|e| format!("{e:?}"))
            .unwrap_or_default();
        let sensitive = matches!(
            Config::attr(&block.body, "sensitive"),
            Some(Expression::Bool(true))
        );
        let secret = secret_sources.iter().any(|s| value.contains(s));
        if sensitive {
            sensitive_outputs.insert(name.to_string());
        }
        if secret && !sensitive {
            problems.push(format!(
                "output \"{name}\" carries a secret and must be sensitive = true"
            ));
        }
        if !secret && Config::attr(&block.body, "sensitive").is_some() {
            problems.push(format!(
                "output \"{name}\" carries no secret: leave it readable (no `sensitive`)"
            ));
        }
    }
    let want: BTreeSet<String> = ["client_properties", "service_api_keys"]
        .map(String::from)
        .into();
    if sensitive_outputs != want {
        problems.push(format!(
            "sensitive outputs are {sensitive_outputs:?}, expected {want:?}"
        ));
    }
    fail_if_any(problems);
}
