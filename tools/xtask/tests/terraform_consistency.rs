//! Checks that the Terraform in `terraform/` agrees with the Rust code and the schema files:
//! topic names and partition counts with `grocery_events::topics`, subjects and schema files
//! with `schemas/*.avsc` (TopicNameStrategy), and the role bindings of each identity pool with
//! what each service reads and writes.
//!
//! The `.tf` files are parsed with `hcl-rs`. Attribute values are evaluated just far enough to
//! compare names: string literals, numbers, lists, `${...}` interpolation, `local.x` (also
//! `local.x.y` into an object), `path.module`, and attributes of other resources that are
//! written in the configuration (`confluent_kafka_topic.orders.topic_name`). Whatever only
//! Terraform can know (`local.kafka.id`, `confluent_identity_pool.x.id`, function calls) is
//! rendered as a placeholder `<...>` naming the reference, so that failure messages show it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};

use grocery_events::topics::{self, ORDERS, PARTITIONS, PICKLISTS};
use hcl::template::Element;
use hcl::{Body, Expression, Template, TraversalOperator, Value};

/// Consumer group of fulfillment-service (reads orders).
const FULFILLMENT_GROUP: &str = "fulfillment-service";
/// Consumer group of picklist-consumer (reads pick lists).
const PICKLIST_GROUP: &str = "picklist-consumer";
/// Prefix of fulfillment-service's transactional ids; the binding covers `<prefix>*`.
const FULFILLMENT_TRANSACTIONAL_ID_PREFIX: &str = "fulfillment-service-";

/// Value subject of `topic` under TopicNameStrategy.
fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .parent()
        .expect("xtask lives in tools/ of the workspace")
        .to_path_buf()
}

/// The parsed Terraform configuration of one directory.
struct Config {
    dir: PathBuf,
    locals: BTreeMap<String, Expression>,
    /// `(resource type, name)` to body, for `resource` blocks; data sources are keyed with the
    /// type prefixed by `data.`.
    resources: BTreeMap<(String, String), Body>,
}

impl Config {
    fn load(dir: &Path) -> Config {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        entries.sort();
        assert!(!entries.is_empty(), "no .tf files in {}", dir.display());

        let mut locals = BTreeMap::new();
        let mut resources = BTreeMap::new();
        for path in entries {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let body: Body = hcl::parse(&text)
                .unwrap_or_else(|e| panic!("{} is not valid HCL: {e}", path.display()));
            for block in body.blocks() {
                let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
                match (block.identifier.as_str(), labels.as_slice()) {
                    ("locals", []) => {
                        for attr in block.body.attributes() {
                            let old = locals.insert(attr.key.to_string(), attr.expr.clone());
                            assert!(
                                old.is_none(),
                                "local.{} is defined twice",
                                attr.key.as_str()
                            );
                        }
                    }
                    ("resource", [kind, name]) => {
                        resources.insert((kind.to_string(), name.to_string()), block.body.clone());
                    }
                    ("data", [kind, name]) => {
                        resources.insert(
                            (format!("data.{kind}"), name.to_string()),
                            block.body.clone(),
                        );
                    }
                    _ => {}
                }
            }
        }
        Config {
            dir: dir.to_path_buf(),
            locals,
            resources,
        }
    }

    /// Bodies of every resource of `kind`, by resource name.
    fn resources_of(&self, kind: &str) -> BTreeMap<&str, &Body> {
        self.resources
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, name), body)| (name.as_str(), body))
            .collect()
    }

    fn attr<'b>(body: &'b Body, key: &str) -> Option<&'b Expression> {
        body.attributes()
            .find(|a| a.key.as_str() == key)
            .map(|a| &a.expr)
    }

    /// Evaluates attribute `key` of `body` to a string (numbers are rendered in decimal).
    fn string_attr(&self, what: &str, body: &Body, key: &str) -> Result<String, String> {
        let expr = Self::attr(body, key).ok_or_else(|| format!("{what} has no `{key}`"))?;
        match self.eval(expr, 0)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("{what}.{key} is not a string: {other:?}")),
        }
    }

    fn eval(&self, expr: &Expression, depth: usize) -> Result<Value, String> {
        if depth > 32 {
            return Err("references nest too deep (a cycle between locals?)".into());
        }
        Ok(match expr {
            Expression::Null => Value::Null,
            Expression::Bool(b) => Value::Bool(*b),
            Expression::Number(n) => Value::Number(*n),
            Expression::String(s) => Value::String(s.clone()),
            Expression::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|e| self.eval(e, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Expression::Object(object) => {
                let mut out = hcl::Map::new();
                for (key, value) in object {
                    let key = match key {
                        hcl::ObjectKey::Identifier(id) => id.to_string(),
                        hcl::ObjectKey::Expression(e) => match self.eval(e, depth + 1)? {
                            Value::String(s) => s,
                            other => return Err(format!("object key {other:?} is not a string")),
                        },
                        other => return Err(format!("unsupported object key {other:?}")),
                    };
                    out.insert(key, self.eval(value, depth + 1)?);
                }
                Value::Object(out)
            }
            Expression::TemplateExpr(template) => {
                let template = Template::from_expr(template)
                    .map_err(|e| format!("cannot parse template: {e}"))?;
                let mut out = String::new();
                for element in template.elements() {
                    match element {
                        Element::Literal(s) => out.push_str(s),
                        Element::Interpolation(i) => match self.eval(&i.expr, depth + 1)? {
                            Value::String(s) => out.push_str(&s),
                            Value::Number(n) => {
                                write!(out, "{n}").expect("writing to a String");
                            }
                            other => return Err(format!("cannot interpolate {other:?}")),
                        },
                        Element::Directive(_) => {
                            return Err("template directives are not supported here".into());
                        }
                    }
                }
                Value::String(out)
            }
            Expression::Parenthesis(inner) => self.eval(inner, depth + 1)?,
            Expression::Traversal(traversal) => self.eval_traversal(traversal, depth)?,
            Expression::FuncCall(call) => {
                Value::String(format!("<{}(...)>", call.name.name.as_str()))
            }
            Expression::Variable(v) => return Err(format!("bare variable `{}`", v.as_str())),
            _ => Value::String("<expression>".into()),
        })
    }

    fn eval_traversal(&self, traversal: &hcl::Traversal, depth: usize) -> Result<Value, String> {
        let Expression::Variable(root) = &traversal.expr else {
            return Ok(Value::String("<expression>".into()));
        };
        let mut path = vec![root.as_str().to_string()];
        for op in &traversal.operators {
            match op {
                TraversalOperator::GetAttr(id) => path.push(id.to_string()),
                _ => return Ok(Value::String(format!("<{}[...]>", path.join(".")))),
            }
        }
        let placeholder = || Value::String(format!("<{}>", path.join(".")));
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        match names.as_slice() {
            ["path", "module"] => Ok(Value::String(self.dir.display().to_string())),
            ["local", name, rest @ ..] => {
                let expr = self
                    .locals
                    .get(*name)
                    .ok_or_else(|| format!("local.{name} is not defined"))?;
                let mut value = self.eval(expr, depth + 1)?;
                for key in rest {
                    value = match value {
                        Value::Object(mut o) => match o.swap_remove(*key) {
                            Some(v) => v,
                            None => return Err(format!("{} is not defined", path.join("."))),
                        },
                        // An unknown object (a function call): its attributes are unknown too.
                        Value::String(s) if s.starts_with('<') => return Ok(placeholder()),
                        other => return Err(format!("{} indexes {other:?}", path.join("."))),
                    };
                }
                // A value made of unknown parts is named by the reference that reached it.
                match value {
                    Value::String(s) if s.starts_with('<') && s.ends_with("(...)>") => {
                        Ok(placeholder())
                    }
                    v => Ok(v),
                }
            }
            ["var", ..] | ["each", ..] | ["count", ..] => Ok(placeholder()),
            ["data", kind, name, attr, ..] => {
                self.resource_attr(&format!("data.{kind}"), name, attr, depth, placeholder)
            }
            [kind, name, attr, ..] => self.resource_attr(kind, name, attr, depth, placeholder),
            _ => Ok(placeholder()),
        }
    }

    fn resource_attr(
        &self,
        kind: &str,
        name: &str,
        attr: &str,
        depth: usize,
        placeholder: impl Fn() -> Value,
    ) -> Result<Value, String> {
        let body = self
            .resources
            .get(&(kind.to_string(), name.to_string()))
            .ok_or_else(|| format!("{kind}.{name} is referenced but not defined"))?;
        match Self::attr(body, attr) {
            // An argument written in the configuration: its value is known.
            Some(expr) => self.eval(expr, depth + 1),
            // An attribute computed by the provider (id, rbac_crn, resource_name, ...).
            None => Ok(placeholder()),
        }
    }
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

#[test]
fn topics_agree_with_grocery_events_topics() {
    let config = config();
    let mut problems = Vec::new();

    // Resource name in terraform/ -> the topic it must create.
    let expected: BTreeMap<&str, String> = [
        ("orders", ORDERS.to_string()),
        ("picklist", PICKLISTS.to_string()),
        ("orders_dlq", topics::dead_letter(ORDERS)),
        ("picklist_dlq", topics::dead_letter(PICKLISTS)),
    ]
    .into_iter()
    .collect();
    let all: BTreeSet<String> = topics::ALL.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        expected.values().cloned().collect::<BTreeSet<_>>(),
        all,
        "this test's list of topics is out of date with grocery_events::topics::ALL"
    );

    let declared = config.resources_of("confluent_kafka_topic");
    let mut declared_names = BTreeSet::new();
    for (name, body) in &declared {
        let what = format!("confluent_kafka_topic.{name}");
        match config.string_attr(&what, body, "topic_name") {
            Ok(topic) => {
                match expected.get(name) {
                    Some(want) if *want != topic => problems.push(format!(
                        "{what}.topic_name is \"{topic}\", grocery_events::topics says \"{want}\""
                    )),
                    None => problems.push(format!(
                        "{what} (topic \"{topic}\") is not a topic of grocery_events::topics::ALL"
                    )),
                    _ => {}
                }
                if !all.contains(&topic) {
                    problems.push(format!(
                        "{what} creates topic \"{topic}\", which is not in grocery_events::topics::ALL {:?}",
                        topics::ALL
                    ));
                }
                declared_names.insert(topic);
            }
            Err(e) => problems.push(e),
        }
        match config.string_attr(&what, body, "partitions_count") {
            Ok(count) if count == PARTITIONS.to_string() => {}
            Ok(count) => problems.push(format!(
                "{what}.partitions_count is {count}, grocery_events::topics::PARTITIONS is {PARTITIONS}"
            )),
            Err(e) => problems.push(e),
        }
    }
    for missing in all.difference(&declared_names) {
        problems.push(format!(
            "topic \"{missing}\" of grocery_events::topics::ALL has no confluent_kafka_topic"
        ));
    }
    for name in expected.keys() {
        if !declared.contains_key(name) {
            problems.push(format!(
                "resource confluent_kafka_topic.{name} (topic \"{}\") is missing",
                expected[name]
            ));
        }
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
    ]
    .into_iter()
    .collect();
    let expected_subjects: BTreeSet<String> = expected.keys().map(|t| value_subject(t)).collect();

    let mut subjects = BTreeSet::new();
    let mut files = BTreeSet::new();
    for (name, body) in config.resources_of("confluent_schema") {
        let what = format!("confluent_schema.{name}");
        let subject = match config.string_attr(&what, body, "subject_name") {
            Ok(s) => s,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        subjects.insert(subject.clone());
        let topic = subject.strip_suffix("-value");
        let Some((topic, record)) = topic.and_then(|t| expected.get_key_value(t)) else {
            problems.push(format!(
                "{what}.subject_name is \"{subject}\", expected one of {expected_subjects:?} \
                 (TopicNameStrategy value subjects of grocery_events::topics)"
            ));
            continue;
        };
        match config.string_attr(&what, body, "format") {
            Ok(f) if f == "AVRO" => {}
            Ok(f) => problems.push(format!("{what}.format is \"{f}\", expected \"AVRO\"")),
            Err(e) => problems.push(e),
        }

        // schema = file("<path>")
        let path = match Config::attr(body, "schema") {
            Some(Expression::FuncCall(call))
                if call.name.name.as_str() == "file" && call.args.len() == 1 =>
            {
                match config.eval(&call.args[0], 0) {
                    Ok(Value::String(p)) => PathBuf::from(p),
                    Ok(other) => {
                        problems.push(format!("{what}.schema: file() of {other:?}"));
                        continue;
                    }
                    Err(e) => {
                        problems.push(format!("{what}.schema: {e}"));
                        continue;
                    }
                }
            }
            _ => {
                problems.push(format!(
                    "{what}.schema must be file(\"...\") of a schema file"
                ));
                continue;
            }
        };
        let path = normalize(&path);
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
    for missing in expected_subjects.difference(&subjects) {
        problems.push(format!("subject \"{missing}\" has no confluent_schema"));
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

    // Every subject has its compatibility set to BACKWARD before the schema is registered.
    let mut configured = BTreeSet::new();
    for (name, body) in config.resources_of("confluent_subject_config") {
        let what = format!("confluent_subject_config.{name}");
        match config.string_attr(&what, body, "subject_name") {
            Ok(s) => {
                if !expected_subjects.contains(&s) {
                    problems.push(format!(
                        "{what}.subject_name is \"{s}\", expected one of {expected_subjects:?}"
                    ));
                }
                configured.insert(s);
            }
            Err(e) => problems.push(e),
        }
        match config.string_attr(&what, body, "compatibility_level") {
            Ok(level) if level == "BACKWARD" => {}
            Ok(level) => problems.push(format!(
                "{what}.compatibility_level is \"{level}\", expected \"BACKWARD\""
            )),
            Err(e) => problems.push(e),
        }
    }
    for missing in expected_subjects.difference(&configured) {
        problems.push(format!(
            "subject \"{missing}\" has no confluent_subject_config"
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

/// Splits a CRN pattern into `(kind, name)`, checking its shape:
/// `<cluster.rbac_crn>/kafka=<cluster.id>/{topic,group,transactional-id}=NAME` or
/// `<schema_registry.resource_name>/subject=NAME`.
fn parse_crn(crn: &str) -> Result<(String, String), String> {
    let segments: Vec<&str> = crn.split('/').collect();
    match segments.as_slice() {
        [cluster, kafka, resource] => {
            if !(cluster.starts_with('<') && cluster.ends_with(".rbac_crn>")) {
                return Err(format!(
                    "\"{crn}\" does not start with a Kafka cluster's rbac_crn"
                ));
            }
            match kafka.strip_prefix("kafka=") {
                Some(id) if id.starts_with('<') && id.ends_with(".id>") => {}
                _ => return Err(format!("\"{crn}\" lacks \"/kafka=<cluster id>/\"")),
            }
            let (kind, name) = resource
                .split_once('=')
                .ok_or_else(|| format!("\"{crn}\" names no resource"))?;
            if !["topic", "group", "transactional-id"].contains(&kind) {
                return Err(format!(
                    "\"{crn}\" names an unexpected resource kind \"{kind}\""
                ));
            }
            Ok((kind.to_string(), name.to_string()))
        }
        [registry, subject] => {
            if !(registry.starts_with('<') && registry.ends_with(".resource_name>")) {
                return Err(format!(
                    "\"{crn}\" does not start with the Schema Registry cluster's resource_name"
                ));
            }
            let name = subject
                .strip_prefix("subject=")
                .ok_or_else(|| format!("\"{crn}\" names no subject"))?;
            Ok(("subject".to_string(), name.to_string()))
        }
        _ => Err(format!(
            "\"{crn}\" is not a topic, group, transactional-id or subject CRN"
        )),
    }
}

#[test]
fn role_bindings_grant_each_service_what_it_uses() {
    let config = config();
    let mut problems = Vec::new();

    let orders_subject = value_subject(ORDERS);
    let picklist_subject = value_subject(PICKLISTS);
    let orders_dlq = topics::dead_letter(ORDERS);
    let picklist_dlq = topics::dead_letter(PICKLISTS);
    let transactional_ids = format!("{FULFILLMENT_TRANSACTIONAL_ID_PREFIX}*");

    // Identity pool resource name -> exactly the grants its role needs.
    let expected: BTreeMap<&str, BTreeSet<Grant>> = [
        (
            "order_producer",
            [
                grant("DeveloperWrite", "topic", ORDERS),
                grant("DeveloperRead", "subject", &orders_subject),
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
            ]
            .into(),
        ),
    ]
    .into_iter()
    .collect();

    let pools = config.resources_of("confluent_identity_pool");
    for pool in pools.keys() {
        if !expected.contains_key(pool) {
            problems.push(format!(
                "confluent_identity_pool.{pool} is not one of the roles this test knows: {:?}",
                expected.keys().collect::<Vec<_>>()
            ));
        }
    }
    for pool in expected.keys() {
        if !pools.contains_key(pool) {
            problems.push(format!("confluent_identity_pool.{pool} is missing"));
        }
    }

    let mut actual: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for (name, body) in config.resources_of("confluent_role_binding") {
        let what = format!("confluent_role_binding.{name}");
        let principal = match config.string_attr(&what, body, "principal") {
            Ok(p) => p,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        // Only the services' identity pools are checked; the manager service account that
        // Terraform itself uses is not a service.
        let Some(pool) = principal
            .strip_prefix("User:<confluent_identity_pool.")
            .and_then(|p| p.strip_suffix(".id>"))
        else {
            continue;
        };
        let role = match config.string_attr(&what, body, "role_name") {
            Ok(r) => r,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let crn = match config.string_attr(&what, body, "crn_pattern") {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        match parse_crn(&crn) {
            Ok((kind, resource)) => {
                let new = actual.entry(pool.to_string()).or_default().insert((
                    role.clone(),
                    kind.clone(),
                    resource.clone(),
                ));
                if !new {
                    problems.push(format!(
                        "{what} repeats {role} on {kind} \"{resource}\" for identity pool {pool}"
                    ));
                }
            }
            Err(e) => problems.push(format!("{what}.crn_pattern: {e}")),
        }
    }

    for (pool, want) in &expected {
        let got = actual.remove(*pool).unwrap_or_default();
        for (role, kind, name) in want.difference(&got) {
            problems.push(format!(
                "identity pool {pool} lacks {role} on {kind} \"{name}\""
            ));
        }
        for (role, kind, name) in got.difference(want) {
            problems.push(format!(
                "identity pool {pool} has {role} on {kind} \"{name}\", which its role does not need \
                 (or the name disagrees with grocery_events)"
            ));
        }
    }
    for (pool, grants) in actual {
        problems.push(format!(
            "role bindings name identity pool {pool}, which is not a known role: {grants:?}"
        ));
    }

    fail_if_any(problems);
}

#[test]
fn outputs_contain_no_secret() {
    let dir = repo_root().join("terraform");
    let text = fs::read_to_string(dir.join("outputs.tf")).expect("terraform/outputs.tf exists");
    let body: Body = hcl::parse(&text).expect("outputs.tf is valid HCL");
    let mut problems = Vec::new();
    for block in body.blocks().filter(|b| b.identifier.as_str() == "output") {
        let name = block.labels.first().map(|l| l.as_str()).unwrap_or("?");
        let value = Config::attr(&block.body, "value")
            .map(|e| format!("{e:?}"))
            .unwrap_or_default();
        if value.contains("secret") || Config::attr(&block.body, "sensitive").is_some() {
            problems.push(format!("output \"{name}\" exposes a secret"));
        }
    }
    fail_if_any(problems);
}
