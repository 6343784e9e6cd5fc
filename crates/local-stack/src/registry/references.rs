//! Schema references: resolving a registration's references to the schemas they name
//! (recursively, each reference name once, dependencies first, as Confluent's
//! `AbstractSchemaProvider.resolveReferences` does), and building from a schema that uses
//! referenced named types one self-contained schema (each referenced definition written out
//! where it is first used), which is what the registry parses and checks compatibility on.

use std::collections::{HashMap, HashSet};

use super::canonical::Json;
use super::contract::Reference;
use super::error::ApiError;

/// At most this many schemas in the transitive closure of one schema's references.
const MAX_REFERENCED: usize = 1_000;

/// At most this many levels of types within types (records in fields, arrays, maps, unions)
/// in a schema with its references written out: as many as the JSON levels a schema's own
/// text may have (serde_json's limit). A chain of schemas each holding the previous one nests
/// one level per link, and the parsers that follow recurse once a level (apache-avro's also
/// copies each nested record once a level, so the work grows with the square of the depth):
/// a deeper schema is refused (42201) rather than overflowing the registry's stack.
pub(crate) const MAX_NESTING: usize = 128;

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

/// The type of a schema object, when it is a name.
fn type_name(schema: &Json) -> Option<&str> {
    match schema.get("type") {
        Some(Json::String(ty)) => Some(ty),
        _ => None,
    }
}

/// The full name a definition declares inside namespace `space`, and its namespace.
fn declared(definition: &Json, space: Option<&str>) -> Option<(String, Option<String>)> {
    let name = definition.str("name")?;
    if let Some((ns, _)) = name.rsplit_once('.') {
        return Some((
            name.to_owned(),
            Some(ns.to_owned()).filter(|s| !s.is_empty()),
        ));
    }
    let ns = definition
        .str("namespace")
        .or(space)
        .filter(|s| !s.is_empty());
    Some(match ns {
        Some(ns) => (format!("{ns}.{name}"), Some(ns.to_owned())),
        None => (name.to_owned(), None),
    })
}

/// What the referenced schemas define.
#[derive(Debug, Default)]
pub(crate) struct Referenced {
    /// Every named type they define, by full name, rewritten to stand anywhere: its name made
    /// full (and a null namespace spelled out).
    pool: HashMap<String, Json>,
    /// The full names of their top-level types: the names a schema using them is written with
    /// (Java Avro's `Schema.toString(referencedSchemas)`, which Confluent's canonical text
    /// is); a type nested in a referenced one is written out where first used.
    pub(crate) top_level: Vec<String>,
}

impl Referenced {
    pub(crate) fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }
}

/// What the referenced schema `texts` define.
pub(crate) fn referenced(texts: &[String]) -> Result<Referenced, ApiError> {
    let mut referenced = Referenced::default();
    for text in texts {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| ApiError::store(format!("a referenced schema is not JSON: {e}")))?;
        if type_name(&json).is_some_and(is_named)
            && let Some((full, _)) = declared(&json, None)
        {
            referenced.top_level.push(full);
        }
        collect(&json, None, &mut referenced.pool);
    }
    Ok(referenced)
}

fn collect(schema: &Json, space: Option<&str>, pool: &mut HashMap<String, Json>) {
    match schema {
        Json::Array(branches) => branches.iter().for_each(|b| collect(b, space, pool)),
        Json::Object(_) => match schema.get("type") {
            Some(Json::String(ty)) if is_named(ty) => {
                let Some((full, ns)) = declared(schema, space) else {
                    return;
                };
                let mut standalone = schema.clone();
                standalone.set("name", Json::String(full.clone()));
                standalone.remove("namespace");
                if ns.is_none() {
                    standalone.set("namespace", Json::String(String::new()));
                }
                pool.entry(full).or_insert(standalone);
                if let Some(Json::Array(fields)) = schema.get("fields") {
                    for field in fields {
                        if let Some(ty) = field.get("type") {
                            collect(ty, ns.as_deref(), pool);
                        }
                    }
                }
            }
            Some(Json::String(ty)) if ty == "array" || ty == "map" => {
                let part = if ty == "array" { "items" } else { "values" };
                if let Some(inner) = schema.get(part) {
                    collect(inner, space, pool);
                }
            }
            Some(nested @ (Json::Object(_) | Json::Array(_))) => collect(nested, space, pool),
            _ => {}
        },
        _ => {}
    }
}

/// `schema` with each referenced type written out where it is first used, but for those in
/// `keep` (left as names).
///
/// # Errors
/// 42201 when the result would nest types deeper than [`MAX_NESTING`] levels.
pub(crate) fn inline(
    schema: &Json,
    referenced: &Referenced,
    keep: &[String],
) -> Result<Json, ApiError> {
    let mut out = schema.clone();
    if !referenced.pool.is_empty() {
        let mut inliner = Inliner {
            pool: &referenced.pool,
            defined: keep.iter().cloned().collect(),
            too_deep: false,
        };
        inliner.walk(&mut out, None, false, 0);
        if inliner.too_deep {
            return Err(ApiError::invalid_schema(format!(
                "with its references written out the schema is nested deeper than \
                 {MAX_NESTING} levels (records, arrays, maps and unions within each other)"
            )));
        }
    }
    Ok(out)
}

struct Inliner<'a> {
    pool: &'a HashMap<String, Json>,
    defined: HashSet<String>,
    /// A type lay deeper than [`MAX_NESTING`]: the walk went no further.
    too_deep: bool,
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

    /// A type name at nesting level `depth`: a referenced type not written out yet is
    /// replaced by its definition.
    fn name(&mut self, slot: &mut Json, name: &str, space: Option<&str>, depth: usize) {
        if PRIMITIVES.contains(&name) {
            return;
        }
        if let Some(full) = self.known(name, space)
            && !self.defined.contains(&full)
            && let Some(definition) = self.pool.get(&full)
        {
            *slot = definition.clone();
            self.walk(slot, space, true, depth);
        }
    }

    /// Writes out the referenced types in `schema`, which lies `depth` levels deep.
    fn walk(&mut self, schema: &mut Json, space: Option<&str>, inlined: bool, depth: usize) {
        if depth > MAX_NESTING {
            self.too_deep = true;
            return;
        }
        if self.too_deep {
            return;
        }
        let inner = depth + 1;
        match schema {
            Json::String(name) => {
                let name = name.clone();
                self.name(schema, &name, space, depth);
            }
            Json::Array(branches) => {
                for branch in branches {
                    self.walk(branch, space, inlined, inner);
                }
            }
            Json::Object(_) => match schema.get("type").cloned() {
                Some(Json::String(ty)) if is_named(&ty) => {
                    let Some((full, ns)) = declared(schema, space) else {
                        return;
                    };
                    if self.defined.contains(&full) && (inlined || self.pool.contains_key(&full)) {
                        // Written out before, by the schema or a reference (Java Avro takes a
                        // referenced type defined again, as Confluent's canonical text can
                        // define a type nested in a referenced one).
                        *schema = Json::String(full);
                        return;
                    }
                    self.defined.insert(full);
                    if let Some(Json::Array(fields)) = schema.get_mut("fields") {
                        for field in fields {
                            if let Some(ty) = field.get_mut("type") {
                                self.walk(ty, ns.as_deref(), inlined, inner);
                            }
                        }
                    }
                }
                Some(Json::String(ty)) if ty == "array" || ty == "map" => {
                    let part = if ty == "array" { "items" } else { "values" };
                    if let Some(items) = schema.get_mut(part) {
                        self.walk(items, space, inlined, inner);
                    }
                }
                Some(Json::String(name)) => {
                    // `{"type": "Name"}`.
                    if let Some(slot) = schema.get_mut("type") {
                        self.name(slot, &name, space, depth);
                    }
                }
                Some(Json::Object(_) | Json::Array(_)) => {
                    if let Some(nested) = schema.get_mut("type") {
                        self.walk(nested, space, inlined, inner);
                    }
                }
                _ => {}
            },
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
        let pool = referenced(&[product.to_owned()]).unwrap();
        let order: Json = serde_json::from_str(
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[
                {"name":"a","type":"Product"},{"name":"b","type":"shop.Product"}]}"#,
        )
        .unwrap();
        let inlined = inline(&order, &pool, &[]).unwrap().to_value();
        assert_eq!(inlined["fields"][0]["type"]["name"], "shop.Product");
        assert_eq!(inlined["fields"][1]["type"], "shop.Product");
        apache_avro::Schema::parse(&inlined).expect("self-contained");
    }

    #[test]
    fn a_referenced_type_in_the_null_namespace_keeps_it() {
        let money = r#"{"type":"fixed","name":"Money","size":8}"#;
        let pool = referenced(&[money.to_owned()]).unwrap();
        let order: Json = serde_json::from_str(
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"m","type":"Money"}]}"#,
        )
        .unwrap();
        let inlined = inline(&order, &pool, &[]).unwrap().to_value();
        assert_eq!(inlined["fields"][0]["type"]["namespace"], "");
        let parsed = apache_avro::Schema::parse(&inlined).expect("self-contained");
        let apache_avro::Schema::Record(record) = parsed else {
            panic!("a record: {parsed:?}");
        };
        let apache_avro::Schema::Fixed(fixed) = &record.fields[0].schema else {
            panic!("a fixed: {:?}", record.fields[0].schema);
        };
        assert_eq!(fixed.name.fullname(None), "Money");
    }
}
