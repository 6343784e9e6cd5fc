//! Schema references: resolving a registration's references to the schemas they name
//! (recursively, each reference name once, dependencies first, as Confluent's
//! `AbstractSchemaProvider.resolveReferences` does), and building from a schema that uses
//! referenced named types one self-contained schema (each referenced definition written out
//! where it is first used), which is what the registry parses and checks compatibility on.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::contract::Reference;
use super::error::ApiError;

/// At most this many schemas in the transitive closure of one schema's references.
const MAX_REFERENCED: usize = 1_000;

/// A registered subject version as reference resolution needs it.
pub(crate) struct Found {
    /// The version number (a `-1` reference becomes this).
    pub(crate) version: u32,
    pub(crate) text: String,
    pub(crate) references: Vec<Reference>,
}

/// Looks up a subject version: a number, or `-1` for the latest; soft-deleted versions only
/// with `include_deleted`.
pub(crate) trait Versions {
    fn found(&self, subject: &str, version: i32, include_deleted: bool) -> Option<Found>;
}

/// The references with `-1` replaced by the version it named, and the texts of every schema
/// they reach, dependencies first.
///
/// # Errors
/// 42201, as Confluent's registry answers, naming a reference whose subject or version does
/// not exist (or is soft-deleted, without `include_deleted`).
pub(crate) fn resolve(
    store: &impl Versions,
    references: &[Reference],
    include_deleted: bool,
) -> Result<(Vec<Reference>, Vec<String>), ApiError> {
    let mut pinned = Vec::with_capacity(references.len());
    let mut texts = Vec::new();
    let mut visited = HashSet::new();
    for reference in references {
        let found = walk(store, reference, include_deleted, &mut visited, &mut texts)?;
        pinned.push(Reference {
            version: i32::try_from(found).unwrap_or(i32::MAX),
            ..reference.clone()
        });
    }
    Ok((pinned, texts))
}

fn walk(
    store: &impl Versions,
    reference: &Reference,
    include_deleted: bool,
    visited: &mut HashSet<String>,
    texts: &mut Vec<String>,
) -> Result<u32, ApiError> {
    let found = store
        .found(&reference.subject, reference.version, include_deleted)
        .ok_or_else(|| {
            ApiError::invalid_schema(format!(
                "No schema reference found for subject \"{}\" and version {}",
                reference.subject, reference.version
            ))
        })?;
    if visited.insert(reference.name.clone()) {
        if visited.len() > MAX_REFERENCED {
            return Err(ApiError::invalid_schema(format!(
                "more than {MAX_REFERENCED} schemas referenced"
            )));
        }
        for inner in &found.references {
            walk(store, inner, include_deleted, visited, texts)?;
        }
        texts.push(found.text);
    }
    Ok(found.version)
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

fn is_named(ty: &str) -> bool {
    matches!(ty, "record" | "error" | "enum" | "fixed")
}

/// The full name a definition `object` declares inside namespace `space`, and its namespace.
fn declared(object: &Map<String, Value>, space: Option<&str>) -> Option<(String, Option<String>)> {
    let name = object.get("name")?.as_str()?;
    if let Some((ns, _)) = name.rsplit_once('.') {
        return Some((
            name.to_owned(),
            Some(ns.to_owned()).filter(|s| !s.is_empty()),
        ));
    }
    let ns = match object.get("namespace") {
        Some(Value::String(ns)) => Some(ns.as_str()),
        _ => space,
    }
    .filter(|s| !s.is_empty());
    Some(match ns {
        Some(ns) => (format!("{ns}.{name}"), Some(ns.to_owned())),
        None => (name.to_owned(), None),
    })
}

/// The named types the referenced schemas define, by full name, each rewritten to stand
/// anywhere: its name made full (and a null namespace spelled out).
pub(crate) fn definitions(texts: &[String]) -> Result<HashMap<String, Value>, ApiError> {
    let mut pool = HashMap::new();
    for text in texts {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::store(format!("a referenced schema is not JSON: {e}")))?;
        collect(&json, None, &mut pool);
    }
    Ok(pool)
}

fn collect(schema: &Value, space: Option<&str>, pool: &mut HashMap<String, Value>) {
    match schema {
        Value::Array(branches) => branches.iter().for_each(|b| collect(b, space, pool)),
        Value::Object(object) => match object.get("type") {
            Some(Value::String(ty)) if is_named(ty) => {
                let Some((full, ns)) = declared(object, space) else {
                    return;
                };
                let mut standalone = object.clone();
                standalone.insert("name".into(), Value::String(full.clone()));
                standalone.remove("namespace");
                if ns.is_none() {
                    standalone.insert("namespace".into(), Value::String(String::new()));
                }
                pool.entry(full).or_insert(Value::Object(standalone));
                if let Some(Value::Array(fields)) = object.get("fields") {
                    for field in fields {
                        if let Some(ty) = field.get("type") {
                            collect(ty, ns.as_deref(), pool);
                        }
                    }
                }
            }
            Some(Value::String(ty)) if ty == "array" => {
                if let Some(items) = object.get("items") {
                    collect(items, space, pool);
                }
            }
            Some(Value::String(ty)) if ty == "map" => {
                if let Some(values) = object.get("values") {
                    collect(values, space, pool);
                }
            }
            Some(nested @ (Value::Object(_) | Value::Array(_))) => collect(nested, space, pool),
            _ => {}
        },
        _ => {}
    }
}

/// `schema` with each referenced type written out where it is first used.
pub(crate) fn inline(schema: &Value, pool: &HashMap<String, Value>) -> Value {
    let mut out = schema.clone();
    if !pool.is_empty() {
        let mut inliner = Inliner {
            pool,
            defined: HashSet::new(),
        };
        inliner.walk(&mut out, None, false);
    }
    out
}

struct Inliner<'a> {
    pool: &'a HashMap<String, Value>,
    defined: HashSet<String>,
}

impl Inliner<'_> {
    /// The full name a type name refers to inside `space`, if it is a known one.
    fn known(&self, name: &str, space: Option<&str>) -> Option<String> {
        let qualified = match space {
            Some(ns) if !name.contains('.') => format!("{ns}.{name}"),
            _ => name.to_owned(),
        };
        [qualified, name.to_owned()]
            .into_iter()
            .find(|full| self.defined.contains(full) || self.pool.contains_key(full))
    }

    /// A type name: a referenced type not written out yet is replaced by its definition.
    fn name(&mut self, slot: &mut Value, name: &str, space: Option<&str>) {
        if PRIMITIVES.contains(&name) {
            return;
        }
        if let Some(full) = self.known(name, space)
            && !self.defined.contains(&full)
            && let Some(definition) = self.pool.get(&full)
        {
            *slot = definition.clone();
            self.walk(slot, space, true);
        }
    }

    fn walk(&mut self, schema: &mut Value, space: Option<&str>, inlined: bool) {
        match schema {
            Value::String(name) => {
                let name = name.clone();
                self.name(schema, &name, space);
            }
            Value::Array(branches) => {
                for branch in branches {
                    self.walk(branch, space, inlined);
                }
            }
            Value::Object(object) => {
                let ty = object.get("type").cloned();
                match ty {
                    Some(Value::String(ty)) if is_named(&ty) => {
                        let Some((full, ns)) = declared(object, space) else {
                            return;
                        };
                        if inlined && self.defined.contains(&full) {
                            // Written out before (by the schema or another reference).
                            *schema = Value::String(full);
                            return;
                        }
                        self.defined.insert(full);
                        if let Some(Value::Array(fields)) = object.get_mut("fields") {
                            for field in fields {
                                if let Some(ty) = field.get_mut("type") {
                                    self.walk(ty, ns.as_deref(), inlined);
                                }
                            }
                        }
                    }
                    Some(Value::String(ty)) if ty == "array" || ty == "map" => {
                        let part = if ty == "array" { "items" } else { "values" };
                        if let Some(inner) = object.get_mut(part) {
                            self.walk(inner, space, inlined);
                        }
                    }
                    Some(Value::String(name)) => {
                        // `{"type": "Name"}`.
                        if let Some(slot) = object.get_mut("type") {
                            self.name(slot, &name, space);
                        }
                    }
                    Some(Value::Object(_) | Value::Array(_)) => {
                        if let Some(nested) = object.get_mut("type") {
                            self.walk(nested, space, inlined);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_referenced_type_is_written_out_where_first_used() {
        let product = r#"{"type":"record","name":"Product","namespace":"shop","fields":[{"name":"sku","type":"string"}]}"#;
        let pool = definitions(&[product.to_owned()]).unwrap();
        let order: Value = serde_json::from_str(
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[
                {"name":"a","type":"Product"},{"name":"b","type":"shop.Product"}]}"#,
        )
        .unwrap();
        let inlined = inline(&order, &pool);
        assert_eq!(inlined["fields"][0]["type"]["name"], "shop.Product");
        assert_eq!(inlined["fields"][1]["type"], "shop.Product");
        apache_avro::Schema::parse(&inlined).expect("self-contained");
    }
}
