//! The identity of an Avro schema in the registry: the text Java Avro's `Schema.toString()`
//! writes for it, which is what Confluent's Schema Registry stores, serves and compares
//! (`AvroSchema.canonicalString()`; a registration or lookup is matched by that text).
//!
//! So spellings of one schema share an id: a primitive written as its name (`"string"` and
//! `{"type":"string"}`), a full name split into name and namespace or not, a namespace written
//! where it is inherited anyway, named types referred to by full or short name, whitespace and
//! the order of the known attributes. Everything else is kept, so schemas that differ in it are
//! different schemas: `doc`, defaults, `order`, aliases, logical types and every other property
//! (in the order the schema writes them, as Java keeps them).
//!
//! The text is written from the schema's JSON (with object members in document order), after
//! `apache_avro` has accepted the schema; `tests/registry_java_oracle.rs` compares it with Java
//! Avro's own output.

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// JSON with the members of objects in document order (`serde_json::Value` sorts them).
#[derive(Debug, Clone)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object (the last one when the key repeats, as Jackson reads it).
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// [`get`](Self::get), mutable.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(members) => members
                .iter_mut()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets the member `key` of an object (every earlier one with that key replaced).
    pub(crate) fn set(&mut self, key: &str, value: Json) {
        if let Json::Object(members) = self {
            members.retain(|(k, _)| k != key);
            members.push((key.to_owned(), value));
        }
    }

    /// Removes the member `key` of an object.
    pub(crate) fn remove(&mut self, key: &str) {
        if let Json::Object(members) = self {
            members.retain(|(k, _)| k != key);
        }
    }

    /// The same JSON as a `serde_json` value (object members sorted).
    pub(crate) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(_) => Value::Object(
                self.members()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }

    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The members of an object in document order, a repeated key once (first place, last
    /// value).
    fn members(&self) -> Vec<(&str, &Json)> {
        let Json::Object(members) = self else {
            return Vec::new();
        };
        let mut out: Vec<(&str, &Json)> = Vec::with_capacity(members.len());
        for (k, v) in members {
            match out.iter_mut().find(|(seen, _)| *seen == k.as_str()) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        out
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            members.push((k, v));
        }
        Ok(Json::Object(members))
    }
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];
/// Attributes of a schema that are not properties (Java Avro's `SCHEMA_RESERVED`: `default`
/// is a property but for an enum).
const SCHEMA_RESERVED: [&str; 10] = [
    "doc",
    "fields",
    "items",
    "name",
    "namespace",
    "size",
    "symbols",
    "values",
    "type",
    "aliases",
];
/// What an enum does not keep as a property.
const ENUM_RESERVED: [&str; 11] = [
    "doc",
    "fields",
    "items",
    "name",
    "namespace",
    "size",
    "symbols",
    "values",
    "type",
    "aliases",
    "default",
];
/// Attributes of a record field that are not properties (Java Avro's `FIELD_RESERVED`).
const FIELD_RESERVED: [&str; 6] = ["default", "doc", "name", "order", "type", "aliases"];

/// The canonical text of the schema in `text` (see the module documentation).
#[cfg(test)]
fn canonical_text(text: &str) -> Result<String, String> {
    let json: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    canonical_of(&json, std::iter::empty())
}

/// The canonical text of the schema `json` (see the module documentation), where the named
/// types `referenced` (full names) are the top-level types of the schemas it references:
/// those are written by name, as Java Avro writes a schema parsed after its references
/// (`toString(referenced, false)`).
///
/// # Errors
/// What is malformed, for a schema `apache_avro` accepted but this writer cannot follow (the
/// caller then falls back to another form).
pub(crate) fn canonical_of(
    json: &Json,
    referenced: impl IntoIterator<Item = String>,
) -> Result<String, String> {
    let mut writer = Writer {
        known: referenced.into_iter().collect(),
        out: String::new(),
    };
    writer.schema(json, None)?;
    Ok(writer.out)
}

#[derive(Default)]
struct Writer {
    /// Full names of the named types written so far: later uses are references.
    known: HashSet<String>,
    out: String,
}

/// A full name split as Java Avro splits it: the part after the last dot, and the namespace
/// (`None` for the null namespace).
fn split_name(name: &str, space: Option<&str>) -> (String, Option<String>) {
    match name.rsplit_once('.') {
        Some((ns, short)) => (
            short.to_owned(),
            Some(ns.to_owned()).filter(|s| !s.is_empty()),
        ),
        None => (
            name.to_owned(),
            space.map(str::to_owned).filter(|s| !s.is_empty()),
        ),
    }
}

fn full_name(short: &str, space: Option<&str>) -> String {
    match space {
        Some(ns) => format!("{ns}.{short}"),
        None => short.to_owned(),
    }
}

/// A name as written where `current` is the namespace: short when its namespace is the
/// current one or null, full otherwise (Java Avro's `Name.getQualified`).
fn qualified(short: &str, space: Option<&str>, current: Option<&str>) -> String {
    match space {
        Some(ns) if Some(ns) != current => format!("{ns}.{short}"),
        _ => short.to_owned(),
    }
}

/// A double as Java writes it (`Double.toString`, which Jackson uses): plain decimal with at
/// least one fraction digit from 10^-3 up to 10^7, else `d.dddE±n`; the shortest digits that
/// read back to the same value, as Rust's formatting gives them.
fn java_double(x: f64) -> String {
    let magnitude = x.abs();
    if x == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = format!("{x}");
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_owned()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

impl Writer {
    fn string(&mut self, s: &str) {
        // Serialising a string cannot fail.
        self.out
            .push_str(&serde_json::to_string(s).unwrap_or_default());
    }

    fn key(&mut self, key: &str) {
        self.out.push(',');
        self.string(key);
        self.out.push(':');
    }

    fn json(&mut self, value: &Json) {
        match value {
            Json::Null => self.out.push_str("null"),
            Json::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
                Some(x) => self.out.push_str(&java_double(x)),
                None => {
                    let _ = write!(self.out, "{n}");
                }
            },
            Json::String(s) => self.string(s),
            Json::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.json(item);
                }
                self.out.push(']');
            }
            Json::Object(_) => {
                self.out.push('{');
                for (i, (k, v)) in value.members().into_iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(k);
                    self.out.push(':');
                    self.json(v);
                }
                self.out.push('}');
            }
        }
    }

    /// The properties of `schema`: its members that are not `reserved`, in document order.
    fn props(&mut self, schema: &Json, reserved: &[&str]) {
        for (k, v) in schema.members() {
            if !reserved.contains(&k) {
                self.key(k);
                self.json(v);
            }
        }
    }

    fn schema(&mut self, schema: &Json, space: Option<&str>) -> Result<(), String> {
        match schema {
            Json::String(name) => self.reference(name, space),
            Json::Array(branches) => {
                self.out.push('[');
                for (i, branch) in branches.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.schema(branch, space)?;
                }
                self.out.push(']');
                Ok(())
            }
            Json::Object(_) => match schema.get("type") {
                Some(Json::String(ty)) => self.complex(schema, ty, space),
                Some(nested @ (Json::Object(_) | Json::Array(_))) => self.schema(nested, space),
                _ => Err("a schema object without a type".into()),
            },
            _ => Err("a schema is a string, an object or an array".into()),
        }
    }

    /// A type name: a primitive, or a named type defined before.
    fn reference(&mut self, name: &str, space: Option<&str>) -> Result<(), String> {
        if PRIMITIVES.contains(&name) {
            self.string(name);
            return Ok(());
        }
        let (short, ns) = split_name(name, space);
        let (short, ns) = if self.known.contains(&full_name(&short, ns.as_deref())) {
            (short, ns)
        } else if !name.contains('.') && self.known.contains(name) {
            // Java Avro looks a short name up in the null namespace too.
            (name.to_owned(), None)
        } else {
            return Err(format!("'{name}' is not a defined type"));
        };
        let shown = qualified(&short, ns.as_deref(), space);
        self.string(&shown);
        Ok(())
    }

    fn complex(&mut self, schema: &Json, ty: &str, space: Option<&str>) -> Result<(), String> {
        match ty {
            "record" | "error" => self.record(schema, ty, space),
            "enum" => self.named(schema, "enum", space, |w, s, _| {
                w.key("symbols");
                w.json(s.get("symbols").unwrap_or(&Json::Array(Vec::new())));
                if let Some(default) = s.str("default") {
                    w.key("default");
                    w.string(default);
                }
                Ok(())
            }),
            "fixed" => self.named(schema, "fixed", space, |w, s, _| {
                w.key("size");
                w.json(s.get("size").unwrap_or(&Json::Null));
                Ok(())
            }),
            "array" | "map" => {
                let part = if ty == "array" { "items" } else { "values" };
                self.out.push_str("{\"type\":");
                self.string(ty);
                self.key(part);
                let inner = schema
                    .get(part)
                    .ok_or_else(|| format!("an {ty} without {part}"))?;
                self.schema(inner, space)?;
                self.props(schema, &SCHEMA_RESERVED);
                self.out.push('}');
                Ok(())
            }
            primitive if PRIMITIVES.contains(&primitive) => {
                let has_props = schema
                    .members()
                    .iter()
                    .any(|(k, _)| !SCHEMA_RESERVED.contains(k));
                if has_props {
                    self.out.push_str("{\"type\":");
                    self.string(primitive);
                    self.props(schema, &SCHEMA_RESERVED);
                    self.out.push('}');
                } else {
                    self.string(primitive);
                }
                Ok(())
            }
            // `{"type": "Name"}`: a reference to a named type.
            name => self.reference(name, space),
        }
    }

    /// A named type's definition: type, name (and namespace when it is not the enclosing one),
    /// doc, what `body` writes, properties, aliases.
    fn named(
        &mut self,
        schema: &Json,
        ty: &str,
        space: Option<&str>,
        body: impl FnOnce(&mut Self, &Json, Option<&str>) -> Result<(), String>,
    ) -> Result<(), String> {
        let reserved: &[&str] = if ty == "enum" {
            &ENUM_RESERVED
        } else {
            &SCHEMA_RESERVED
        };
        let name = schema
            .str("name")
            .ok_or_else(|| format!("a {ty} without a name"))?;
        let declared = schema.str("namespace").or(space);
        let (short, ns) = split_name(name, declared);
        self.known.insert(full_name(&short, ns.as_deref()));
        self.out.push_str("{\"type\":");
        self.string(ty);
        self.key("name");
        self.string(&short);
        match (&ns, space) {
            (Some(ns), current) if Some(ns.as_str()) != current => {
                self.key("namespace");
                self.string(ns);
            }
            (None, Some(_)) => {
                self.key("namespace");
                self.string("");
            }
            _ => {}
        }
        if let Some(doc) = schema.str("doc") {
            self.key("doc");
            self.string(doc);
        }
        body(self, schema, ns.as_deref())?;
        self.props(schema, reserved);
        if let Some(Json::Array(aliases)) = schema.get("aliases") {
            let mut seen = Vec::new();
            for alias in aliases {
                if let Json::String(alias) = alias {
                    let (a_short, a_ns) = split_name(alias, ns.as_deref());
                    let full = full_name(&a_short, a_ns.as_deref());
                    if !seen.iter().any(|(f, _)| *f == full) {
                        seen.push((full, qualified(&a_short, a_ns.as_deref(), ns.as_deref())));
                    }
                }
            }
            if !seen.is_empty() {
                self.key("aliases");
                self.out.push('[');
                for (i, (_, shown)) in seen.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(shown);
                }
                self.out.push(']');
            }
        }
        self.out.push('}');
        Ok(())
    }

    fn record(&mut self, schema: &Json, ty: &str, space: Option<&str>) -> Result<(), String> {
        self.named(schema, ty, space, |w, s, ns| {
            w.key("fields");
            w.out.push('[');
            let fields = match s.get("fields") {
                Some(Json::Array(fields)) => fields.as_slice(),
                _ => return Err("a record without fields".into()),
            };
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    w.out.push(',');
                }
                w.field(field, ns)?;
            }
            w.out.push(']');
            Ok(())
        })
    }

    fn field(&mut self, field: &Json, space: Option<&str>) -> Result<(), String> {
        let name = field.str("name").ok_or("a field without a name")?;
        self.out.push_str("{\"name\":");
        self.string(name);
        self.key("type");
        self.schema(field.get("type").ok_or("a field without a type")?, space)?;
        if let Some(doc) = field.str("doc") {
            self.key("doc");
            self.string(doc);
        }
        if let Some(default) = field.get("default") {
            self.key("default");
            self.json(default);
        }
        if let Some(order) = field.str("order") {
            let order = order.to_ascii_lowercase();
            if order != "ascending" {
                self.key("order");
                self.string(&order);
            }
        }
        if let Some(Json::Array(aliases)) = field.get("aliases") {
            let mut seen: Vec<&str> = Vec::new();
            for alias in aliases {
                if let Json::String(alias) = alias
                    && !seen.contains(&alias.as_str())
                {
                    seen.push(alias);
                }
            }
            if !seen.is_empty() {
                self.key("aliases");
                self.out.push('[');
                for (i, alias) in seen.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(alias);
                }
                self.out.push(']');
            }
        }
        self.props(field, &FIELD_RESERVED);
        self.out.push('}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_text;

    #[test]
    fn spellings_of_one_schema_write_one_text() {
        for (spelling, canonical) in [
            (r#"{"type":"string"}"#, r#""string""#),
            (r#" "string" "#, r#""string""#),
            (
                r#"{"type":"string","logicalType":"uuid"}"#,
                r#"{"type":"string","logicalType":"uuid"}"#,
            ),
            (
                r#"{"name":"a.b.R","type":"record","fields":[{"type":{"type":"int"},"name":"x"}]}"#,
                r#"{"type":"record","name":"R","namespace":"a.b","fields":[{"name":"x","type":"int"}]}"#,
            ),
            (
                r#"{"type":"record","name":"R","namespace":"a","fields":[{"name":"e","type":{"type":"enum","name":"a.E","symbols":["X"]}},{"name":"f","type":"a.E"}]}"#,
                r#"{"type":"record","name":"R","namespace":"a","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["X"]}},{"name":"f","type":"E"}]}"#,
            ),
        ] {
            assert_eq!(canonical_text(spelling).unwrap(), canonical, "{spelling}");
        }
    }

    #[test]
    fn doubles_are_written_as_java_writes_them() {
        // What Java Avro 1.12 writes for these defaults (checked with the oracle's program).
        for (written, java) in [
            ("0.1", "0.1"),
            ("1e-7", "1.0E-7"),
            ("1e20", "1.0E20"),
            ("123456789.0", "1.23456789E8"),
            ("1e7", "1.0E7"),
            ("9999999.0", "9999999.0"),
            ("0.001", "0.001"),
            ("0.0001", "1.0E-4"),
            ("1.5e300", "1.5E300"),
            ("-2.5", "-2.5"),
            ("1e3", "1000.0"),
            ("12345678.9", "1.23456789E7"),
            ("7", "7"),
        ] {
            let schema = format!(
                r#"{{"type":"record","name":"D","fields":[{{"name":"d","type":"double","default":{written}}}]}}"#
            );
            let expected = format!(
                r#"{{"type":"record","name":"D","fields":[{{"name":"d","type":"double","default":{java}}}]}}"#
            );
            assert_eq!(canonical_text(&schema).unwrap(), expected, "{written}");
        }
    }
}
