//! Avro values as CEL sees them, and CEL values written back as Avro in a schema.

use std::{collections::HashMap, sync::Arc};

use apache_avro::{
    Schema,
    schema::{NamesRef, UnionSchema},
    types::Value as Avro,
};
use cel::objects::{Key, Map, Value};

use crate::binary;

/// Deepest nesting written (the value came from a body read within the same bound).
const MAX_DEPTH: usize = 128;

/// `value` as a CEL value: records and maps as maps, arrays as lists, integers as `int`,
/// floating point as `double`, strings, enum symbols and UUIDs as `string`, bytes and fixed as
/// `bytes`, a union as its branch's value.
pub(super) fn to_cel(value: &Avro) -> Value {
    match value {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(*b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => Value::Int(i64::from(*i)),
        Avro::Long(i)
        | Avro::TimeMicros(i)
        | Avro::TimestampMillis(i)
        | Avro::TimestampMicros(i)
        | Avro::TimestampNanos(i)
        | Avro::LocalTimestampMillis(i)
        | Avro::LocalTimestampMicros(i)
        | Avro::LocalTimestampNanos(i) => Value::Int(*i),
        Avro::Float(f) => Value::Float(f64::from(*f)),
        Avro::Double(f) => Value::Float(*f),
        Avro::String(s) | Avro::Enum(_, s) => Value::String(Arc::new(s.clone())),
        Avro::Uuid(u) => Value::String(Arc::new(u.to_string())),
        Avro::Bytes(b) | Avro::Fixed(_, b) => Value::Bytes(Arc::new(b.clone())),
        Avro::Union(_, inner) => to_cel(inner),
        Avro::Array(items) => Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Avro::Map(entries) => map(entries.iter().map(|(k, v)| (k.clone(), to_cel(v)))),
        Avro::Record(fields) => map(fields.iter().map(|(k, v)| (k.clone(), to_cel(v)))),
        // Not produced by the codec's reader (decimals stay bytes or fixed there).
        other => Value::String(Arc::new(format!("{other:?}"))),
    }
}

pub(super) fn map(entries: impl Iterator<Item = (String, Value)>) -> Value {
    Value::Map(Map {
        map: Arc::new(
            entries
                .map(|(k, v)| (Key::String(Arc::new(k)), v))
                .collect::<HashMap<_, _>>(),
        ),
    })
}

/// A field default (JSON) as a CEL value.
fn default_to_cel(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or_default())),
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(default_to_cel).collect()))
        }
        serde_json::Value::Object(entries) => {
            map(entries.iter().map(|(k, v)| (k.clone(), default_to_cel(v))))
        }
    }
}

/// The CEL type name of a value, for messages.
pub(super) fn type_of(value: &Value) -> String {
    value.type_of().to_string()
}

/// Appends `value` written in `schema` to `out`.
///
/// # Errors
/// A message naming where `value` does not fit `schema`.
pub(super) fn write(
    out: &mut Vec<u8>,
    value: &Value,
    schema: &Schema,
    names: &NamesRef<'_>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("values nested deeper than {MAX_DEPTH} levels"));
    }
    let mismatch = || {
        format!(
            "a CEL {} does not fit the Avro type {}",
            type_of(value),
            schema.canonical_form()
        )
    };
    match (schema, value) {
        (Schema::Null, Value::Null) => {}
        (Schema::Boolean, Value::Bool(b)) => binary::put_bool(out, *b),
        (Schema::Int | Schema::Date | Schema::TimeMillis, Value::Int(i)) => {
            binary::put_int(out, i32::try_from(*i).map_err(|_| mismatch())?)
        }
        (
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos,
            Value::Int(i),
        ) => binary::put_long(out, *i),
        #[allow(clippy::cast_possible_truncation)]
        (Schema::Float, Value::Float(f)) => binary::put_float(out, *f as f32),
        #[allow(clippy::cast_precision_loss)]
        (Schema::Float, Value::Int(i)) => binary::put_float(out, *i as f32),
        (Schema::Double, Value::Float(f)) => binary::put_double(out, *f),
        #[allow(clippy::cast_precision_loss)]
        (Schema::Double, Value::Int(i)) => binary::put_double(out, *i as f64),
        (Schema::String, Value::String(s)) => binary::put_str(out, s),
        (Schema::Uuid(apache_avro::schema::UuidSchema::String), Value::String(s)) => {
            let id = uuid::Uuid::parse_str(s).map_err(|_| mismatch())?;
            binary::put_str(out, &id.to_string());
        }
        (Schema::Bytes, Value::Bytes(b)) => binary::put_bytes(out, b),
        (Schema::Fixed(fixed), Value::Bytes(b)) if b.len() == fixed.size => {
            out.extend_from_slice(b);
        }
        (Schema::Enum(e), Value::String(s)) => {
            let index = e
                .symbols
                .iter()
                .position(|sym| sym == s.as_str())
                .ok_or_else(|| format!("'{s}' is not a symbol of enum {}", e.name))?;
            binary::put_int(out, i32::try_from(index).map_err(|_| mismatch())?);
        }
        (Schema::Array(array), Value::List(items)) => {
            if !items.is_empty() {
                binary::put_long(out, i64::try_from(items.len()).map_err(|_| mismatch())?);
                for item in items.iter() {
                    write(out, item, &array.items, names, depth + 1)?;
                }
            }
            binary::put_long(out, 0);
        }
        (Schema::Map(m), Value::Map(entries)) => {
            if !entries.map.is_empty() {
                binary::put_long(
                    out,
                    i64::try_from(entries.map.len()).map_err(|_| mismatch())?,
                );
                let mut sorted: Vec<_> = entries.map.iter().collect();
                sorted.sort_by_key(|(k, _)| key_text(k));
                for (key, item) in sorted {
                    binary::put_str(out, &key_text(key));
                    write(out, item, &m.types, names, depth + 1)?;
                }
            }
            binary::put_long(out, 0);
        }
        (Schema::Record(record), Value::Map(entries)) => {
            for field in &record.fields {
                let key = Key::String(Arc::new(field.name.clone()));
                let written = match (entries.map.get(&key), &field.default) {
                    (Some(v), _) => write(out, v, &field.schema, names, depth + 1),
                    (None, Some(default)) => write(
                        out,
                        &default_to_cel(default),
                        &field.schema,
                        names,
                        depth + 1,
                    ),
                    (None, None) => Err("no value and no default".to_owned()),
                };
                written.map_err(|reason| format!("{}.{}: {reason}", record.name, field.name))?;
            }
        }
        (Schema::Union(union), value) => {
            let (index, branch) = branch_for(union, value, names)
                .ok_or_else(|| format!("a CEL {} fits no branch of the union", type_of(value)))?;
            binary::put_long(out, i64::try_from(index).map_err(|_| mismatch())?);
            write(out, value, branch, names, depth + 1)?;
        }
        (Schema::Ref { name }, value) => {
            let target = names
                .get(name)
                .ok_or_else(|| format!("unknown type name '{name}'"))?;
            write(out, value, target, names, depth)?;
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

fn key_text(key: &Key) -> String {
    match key {
        Key::String(s) => s.to_string(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

/// The union branch (index and schema) `value` is written with: the first that takes it, as
/// Confluent's Python client (fastavro) picks one for a plain value.
pub(super) fn branch_for<'s>(
    union: &'s UnionSchema,
    value: &Value,
    names: &NamesRef<'s>,
) -> Option<(usize, &'s Schema)> {
    union
        .variants()
        .iter()
        .enumerate()
        .find(|(_, branch)| fits(value, branch, names, 0))
}

/// Whether `value` can be written in `schema` (checked as deep as a record's fields).
fn fits(value: &Value, schema: &Schema, names: &NamesRef<'_>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (schema, value) {
        (Schema::Ref { name }, _) => names
            .get(name)
            .is_some_and(|target| fits(value, target, names, depth + 1)),
        (Schema::Record(record), Value::Map(entries)) => record.fields.iter().all(|field| {
            match entries.map.get(&Key::String(Arc::new(field.name.clone()))) {
                Some(v) => fits(v, &field.schema, names, depth + 1),
                None => field.default.is_some(),
            }
        }),
        (Schema::Int | Schema::Date | Schema::TimeMillis, Value::Int(i)) => {
            i32::try_from(*i).is_ok()
        }
        (Schema::Enum(e), Value::String(s)) => e.symbols.iter().any(|sym| sym == s.as_str()),
        (Schema::Fixed(f), Value::Bytes(b)) => f.size == b.len(),
        (Schema::Array(a), Value::List(items)) => {
            items.iter().all(|i| fits(i, &a.items, names, depth + 1))
        }
        (Schema::Map(m), Value::Map(entries)) => entries
            .map
            .values()
            .all(|v| fits(v, &m.types, names, depth + 1)),
        (Schema::Union(u), v) => branch_for(u, v, names).is_some(),
        _ => {
            let mut scratch = Vec::new();
            write(&mut scratch, value, schema, names, depth).is_ok()
        }
    }
}
