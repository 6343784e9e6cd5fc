//! Avro's JSON encoding of values (the specification's "JSON Encoding"), as Confluent's
//! `kafka-avro-console-consumer` prints records and `kafka-avro-console-producer` reads them,
//! and as Java's `JsonEncoder` and fastavro's `json_writer` write them: a union is `null` or a
//! one-key object naming the branch (`{"string": "x"}`, `{"io.example.Line": {…}}`), `bytes`
//! and `fixed` are strings of the code points U+0000–U+00FF, one per byte, and logical types
//! are their underlying type's value (a `date` is its `int`, a `decimal` its bytes).
//!
//! apache-avro converts `Value`s to JSON without a schema, dropping union branches, so it
//! cannot read its own output back; this module follows the schema instead.

use std::collections::HashMap;

use apache_avro::{
    Schema,
    schema::{InnerDecimalSchema, NamesRef, ResolvedSchema, UuidSchema},
    types::Value,
};
use serde_json::{Map, Number, Value as Json};

/// `value`, of `schema`, in Avro's JSON encoding.
///
/// # Errors
/// Why the value does not fit the schema (a path and the mismatch), or a float that JSON
/// cannot hold (NaN, infinities).
pub(crate) fn to_json(value: &Value, schema: &Schema) -> Result<Json, String> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    write(value, schema, resolved.get_names(), "$")
}

/// The value of `schema` that `json`, in Avro's JSON encoding, stands for; logical types as
/// apache-avro's logical values.
///
/// # Errors
/// Why `json` is not a value of the schema, naming the path (`$.lines[2].quantity`).
pub(crate) fn from_json(json: &Json, schema: &Schema) -> Result<Value, String> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    read(json, schema, resolved.get_names(), "$")
}

/// The name a union branch of `schema` goes by: a named type's full name, else its type.
fn branch_name(schema: &Schema, names: &NamesRef<'_>) -> String {
    match schema {
        Schema::Ref { name } => match names.get(name) {
            Some(target) => branch_name(target, names),
            None => name.fullname(None),
        },
        Schema::Record(r) => r.name.fullname(None),
        Schema::Enum(e) => e.name.fullname(None),
        Schema::Fixed(f) | Schema::Duration(f) => f.name.fullname(None),
        Schema::Decimal(d) => match &d.inner {
            InnerDecimalSchema::Fixed(f) => f.name.fullname(None),
            InnerDecimalSchema::Bytes => "bytes".into(),
        },
        Schema::Uuid(UuidSchema::Fixed(f)) => f.name.fullname(None),
        Schema::Uuid(UuidSchema::Bytes) | Schema::Bytes | Schema::BigDecimal => "bytes".into(),
        Schema::Uuid(UuidSchema::String) | Schema::String => "string".into(),
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Union(_) => "union".into(),
    }
}

/// Bytes as a JSON string of code points U+0000–U+00FF.
fn bytes_text(bytes: &[u8]) -> Json {
    Json::String(bytes.iter().map(|&b| char::from(b)).collect())
}

/// The bytes of a JSON string of code points U+0000–U+00FF.
fn text_bytes(json: &Json, path: &str) -> Result<Vec<u8>, String> {
    let text = json
        .as_str()
        .ok_or_else(|| format!("{path}: expected a string of bytes, found {json}"))?;
    text.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                format!("{path}: '{c}' is not a byte (bytes are code points U+0000 to U+00FF)")
            })
        })
        .collect()
}

fn float(f: f64, path: &str) -> Result<Json, String> {
    Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| format!("{path}: {f} has no JSON number"))
}

fn mismatch(path: &str, value: &Value, schema: &Schema) -> String {
    format!(
        "{path}: value {value:?} does not fit schema {}",
        schema.canonical_form()
    )
}

fn write(value: &Value, schema: &Schema, names: &NamesRef<'_>, path: &str) -> Result<Json, String> {
    if let Schema::Ref { name } = schema {
        let target = names
            .get(name)
            .ok_or_else(|| format!("{path}: unknown type name '{name}'"))?;
        return write(value, target, names, path);
    }
    Ok(match (schema, value) {
        (Schema::Union(union), Value::Union(index, inner)) => {
            let branch = union
                .variants()
                .get(*index as usize)
                .ok_or_else(|| format!("{path}: union branch {index} does not exist"))?;
            if matches!(branch, Schema::Null) {
                return Ok(Json::Null);
            }
            let name = branch_name(branch, names);
            let inner = write(inner, branch, names, &format!("{path}<{name}>"))?;
            Json::Object(Map::from_iter([(name, inner)]))
        }
        (_, Value::Null) => Json::Null,
        (_, Value::Boolean(b)) => Json::Bool(*b),
        (_, Value::Int(i) | Value::Date(i) | Value::TimeMillis(i)) => Json::from(*i),
        (
            _,
            Value::Long(l)
            | Value::TimeMicros(l)
            | Value::TimestampMillis(l)
            | Value::TimestampMicros(l)
            | Value::TimestampNanos(l)
            | Value::LocalTimestampMillis(l)
            | Value::LocalTimestampMicros(l)
            | Value::LocalTimestampNanos(l),
        ) => Json::from(*l),
        (_, Value::Float(f)) => float(f64::from(*f), path)?,
        (_, Value::Double(d)) => float(*d, path)?,
        (_, Value::String(s)) => Json::String(s.clone()),
        (_, Value::Enum(_, symbol)) => Json::String(symbol.clone()),
        (_, Value::Bytes(b) | Value::Fixed(_, b)) => bytes_text(b),
        (_, Value::Decimal(d)) => {
            bytes_text(&<Vec<u8>>::try_from(d).map_err(|e| format!("{path}: {e}"))?)
        }
        (_, Value::Duration(d)) => bytes_text(&<[u8; 12]>::from(*d)),
        (Schema::Uuid(UuidSchema::String), Value::Uuid(u)) => Json::String(u.to_string()),
        (_, Value::Uuid(u)) => bytes_text(u.as_bytes()),
        (Schema::Array(array), Value::Array(items)) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| write(item, &array.items, names, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (Schema::Map(map), Value::Map(entries)) => {
            // Sorted, so that a map prints the same every time.
            let mut keys: Vec<_> = entries.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| {
                        write(&entries[k], &map.types, names, &format!("{path}.{k}"))
                            .map(|v| (k.clone(), v))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        (Schema::Record(record), Value::Record(fields)) => Json::Object(
            record
                .fields
                .iter()
                .zip(fields)
                .map(|(field, (_, value))| {
                    write(
                        value,
                        &field.schema,
                        names,
                        &format!("{path}.{}", field.name),
                    )
                    .map(|v| (field.name.clone(), v))
                })
                .collect::<Result<_, _>>()?,
        ),
        (schema, value) => return Err(mismatch(path, value, schema)),
    })
}

fn read(json: &Json, schema: &Schema, names: &NamesRef<'_>, path: &str) -> Result<Value, String> {
    let expected = |what: &str| format!("{path}: expected {what}, found {json}");
    let int = || {
        json.as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| expected("an int"))
    };
    let long = || json.as_i64().ok_or_else(|| expected("a long"));
    Ok(match schema {
        Schema::Ref { name } => {
            let target = names
                .get(name)
                .ok_or_else(|| format!("{path}: unknown type name '{name}'"))?;
            read(json, target, names, path)?
        }
        Schema::Null => match json {
            Json::Null => Value::Null,
            _ => return Err(expected("null")),
        },
        Schema::Boolean => Value::Boolean(json.as_bool().ok_or_else(|| expected("a boolean"))?),
        Schema::Int => Value::Int(int()?),
        Schema::Date => Value::Date(int()?),
        Schema::TimeMillis => Value::TimeMillis(int()?),
        Schema::Long => Value::Long(long()?),
        Schema::TimeMicros => Value::TimeMicros(long()?),
        Schema::TimestampMillis => Value::TimestampMillis(long()?),
        Schema::TimestampMicros => Value::TimestampMicros(long()?),
        Schema::TimestampNanos => Value::TimestampNanos(long()?),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(long()?),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(long()?),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(long()?),
        #[allow(clippy::cast_possible_truncation)]
        Schema::Float => Value::Float(json.as_f64().ok_or_else(|| expected("a float"))? as f32),
        Schema::Double => Value::Double(json.as_f64().ok_or_else(|| expected("a double"))?),
        Schema::String => Value::String(
            json.as_str()
                .ok_or_else(|| expected("a string"))?
                .to_owned(),
        ),
        Schema::Uuid(UuidSchema::String) => Value::Uuid(
            json.as_str()
                .and_then(|s| uuid::Uuid::parse_str(s).ok())
                .ok_or_else(|| expected("a UUID string"))?,
        ),
        Schema::Bytes | Schema::BigDecimal => Value::Bytes(text_bytes(json, path)?),
        Schema::Uuid(UuidSchema::Bytes) => Value::Uuid(
            uuid::Uuid::from_slice(&text_bytes(json, path)?).map_err(|e| format!("{path}: {e}"))?,
        ),
        Schema::Uuid(UuidSchema::Fixed(fixed)) => {
            let bytes = fixed_bytes(json, fixed.size, path)?;
            Value::Uuid(uuid::Uuid::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))?)
        }
        Schema::Fixed(fixed) => Value::Fixed(fixed.size, fixed_bytes(json, fixed.size, path)?),
        Schema::Duration(fixed) => {
            let bytes: [u8; 12] = fixed_bytes(json, fixed.size, path)?
                .try_into()
                .map_err(|_| format!("{path}: a duration is 12 bytes"))?;
            Value::Duration(apache_avro::Duration::from(bytes))
        }
        Schema::Decimal(decimal) => {
            Value::Decimal(apache_avro::Decimal::from(match &decimal.inner {
                InnerDecimalSchema::Fixed(fixed) => fixed_bytes(json, fixed.size, path)?,
                InnerDecimalSchema::Bytes => text_bytes(json, path)?,
            }))
        }
        Schema::Enum(e) => {
            let symbol = json.as_str().ok_or_else(|| expected("an enum symbol"))?;
            let index = e.symbols.iter().position(|s| s == symbol).ok_or_else(|| {
                format!(
                    "{path}: '{symbol}' is not a symbol of {} ({})",
                    e.name.fullname(None),
                    e.symbols.join(", ")
                )
            })?;
            Value::Enum(
                u32::try_from(index).map_err(|e| e.to_string())?,
                symbol.to_owned(),
            )
        }
        Schema::Array(array) => Value::Array(
            json.as_array()
                .ok_or_else(|| expected("an array"))?
                .iter()
                .enumerate()
                .map(|(i, item)| read(item, &array.items, names, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Schema::Map(map) => Value::Map(
            json.as_object()
                .ok_or_else(|| expected("an object (a map)"))?
                .iter()
                .map(|(k, v)| {
                    read(v, &map.types, names, &format!("{path}.{k}")).map(|v| (k.clone(), v))
                })
                .collect::<Result<HashMap<_, _>, _>>()?,
        ),
        Schema::Record(record) => {
            let object = json.as_object().ok_or_else(|| {
                expected(&format!(
                    "an object (record {})",
                    record.name.fullname(None)
                ))
            })?;
            if let Some(unknown) = object.keys().find(|k| !record.lookup.contains_key(*k)) {
                return Err(format!(
                    "{path}: record {} has no field '{unknown}'",
                    record.name.fullname(None)
                ));
            }
            Value::Record(
                record
                    .fields
                    .iter()
                    .map(|field| {
                        let here = format!("{path}.{}", field.name);
                        let value = match object.get(&field.name) {
                            Some(json) => read(json, &field.schema, names, &here)?,
                            None => match &field.default {
                                // A default is in the JSON encoding, with a union's default of
                                // its first branch, unwrapped.
                                Some(default) => {
                                    read_default(default, &field.schema, names, &here)?
                                }
                                None => return Err(format!("{here}: missing (no default)")),
                            },
                        };
                        Ok((field.name.clone(), value))
                    })
                    .collect::<Result<_, String>>()?,
            )
        }
        Schema::Union(union) => {
            let branches = union.variants();
            if json.is_null() {
                let index = branches
                    .iter()
                    .position(|b| matches!(b, Schema::Null))
                    .ok_or_else(|| format!("{path}: null is not a branch of this union"))?;
                return Ok(Value::Union(
                    u32::try_from(index).map_err(|e| e.to_string())?,
                    Box::new(Value::Null),
                ));
            }
            let (name, inner) = json
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.iter().next())
                .ok_or_else(|| {
                    expected(
                        "null or a one-key object naming the union branch, as \
                         {\"string\": \"x\"}",
                    )
                })?;
            let index = branches
                .iter()
                .position(|b| branch_name(b, names) == *name)
                .ok_or_else(|| {
                    format!(
                        "{path}: '{name}' is not a branch of this union ({})",
                        branches
                            .iter()
                            .map(|b| branch_name(b, names))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            Value::Union(
                u32::try_from(index).map_err(|e| e.to_string())?,
                Box::new(read(
                    inner,
                    &branches[index],
                    names,
                    &format!("{path}<{name}>"),
                )?),
            )
        }
    })
}

/// A field's default (a union's default is of its first branch, not wrapped).
fn read_default(
    default: &Json,
    schema: &Schema,
    names: &NamesRef<'_>,
    path: &str,
) -> Result<Value, String> {
    match schema {
        Schema::Union(union) => {
            let first = union
                .variants()
                .first()
                .ok_or_else(|| format!("{path}: empty union"))?;
            Ok(Value::Union(
                0,
                Box::new(read_default(default, first, names, path)?),
            ))
        }
        _ => read(default, schema, names, path),
    }
}

fn fixed_bytes(json: &Json, size: usize, path: &str) -> Result<Vec<u8>, String> {
    let bytes = text_bytes(json, path)?;
    if bytes.len() != size {
        return Err(format!(
            "{path}: expected {size} bytes (fixed), found {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type": "record", "name": "R", "namespace": "io.example", "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "n", "type": ["null", "long"]},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "raw", "type": "bytes"},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "tags", "type": {"type": "map", "values": "int"}},
        {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line",
            "fields": [{"name": "sku", "type": "string"}]}}},
        {"name": "either", "type": ["null", "Line", "Kind"], "default": null}
    ]}"#;

    #[test]
    fn the_json_encoding_round_trips_and_names_union_branches() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let json: Json = serde_json::json!({
            "id": "0c6a6e3c-3c1f-4f6b-9a4e-0e7f0a1b2c3d",
            "n": {"long": 7},
            "when": 1_700_000_000_000_i64,
            "day": 19_000,
            "price": "\u{0}\u{ff}",
            "raw": "a\u{1}",
            "hash": "xy",
            "kind": "B",
            "tags": {"a": 1, "b": 2},
            "lines": [{"sku": "apple"}],
            "either": {"io.example.Line": {"sku": "pear"}}
        });
        let value = from_json(&json, &schema).unwrap();
        assert!(value.validate(&schema), "{value:?}");
        assert_eq!(to_json(&value, &schema).unwrap(), json);
        let mut bytes = Vec::new();
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_ref(&mut bytes, &value)
            .unwrap();
        let back = crate::value::read_logical(&bytes, &schema).unwrap();
        assert_eq!(to_json(&back, &schema).unwrap(), json);
    }

    #[test]
    fn bad_json_names_the_path() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let mut json: Json = serde_json::json!({
            "id": "0c6a6e3c-3c1f-4f6b-9a4e-0e7f0a1b2c3d", "n": 7, "when": 1, "day": 1,
            "price": "", "raw": "", "hash": "xy", "kind": "A", "tags": {}, "lines": []
        });
        let err = from_json(&json, &schema).unwrap_err();
        assert!(
            err.starts_with("$.n: expected null or a one-key object"),
            "{err}"
        );
        json["n"] = serde_json::json!({"int": 7});
        let err = from_json(&json, &schema).unwrap_err();
        assert!(
            err.contains("'int' is not a branch of this union (null, long)"),
            "{err}"
        );
        json["n"] = Json::Null;
        json["lines"] = serde_json::json!([{"sku": 1}]);
        let err = from_json(&json, &schema).unwrap_err();
        assert!(
            err.starts_with("$.lines[0].sku: expected a string"),
            "{err}"
        );
        json["lines"] = serde_json::json!([]);
        json["extra"] = Json::Null;
        let err = from_json(&json, &schema).unwrap_err();
        assert!(err.contains("has no field 'extra'"), "{err}");
    }
}
