//! The decoding path of hand-written serde types: apache-avro's `Value` of a body, read here
//! rather than by apache-avro's decoder, then `apache_avro::from_value`.
//!
//! The body has been through a resolution plan first, so it is well formed for the reader
//! schema and no longer than the codec's allocation bound: reading it needs no allocation
//! bound of apache-avro's own (whose process-wide `max_allocation_bytes`, first setting wins,
//! the codec must not depend on). Every length is still checked against the input.

use std::collections::HashMap;

use apache_avro::{
    Schema,
    schema::{NamesRef, ResolvedSchema},
    types::Value,
};
use serde::de::DeserializeOwned;

use crate::binary::{self, DecodeError};

/// Reads a `T` from `body`, a body in `schema` checked by a resolution plan.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], schema: &Schema) -> Result<T, String> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    let value = read(&mut &body[..], schema, resolved.get_names(), 0, false)?;
    apache_avro::from_value::<T>(&value).map_err(|e| e.to_string())
}

/// Reads the value of `body`, a body in `schema` checked by a resolution plan, with logical
/// types as apache-avro's logical values (`Value::Date`, `Value::TimestampMillis`,
/// `Value::Decimal`, `Value::Uuid`, …): the value of a
/// [`GenericRecord`](crate::GenericRecord). `big-decimal` stays `Value::Bytes`.
pub(crate) fn read_logical(body: &[u8], schema: &Schema) -> Result<Value, String> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    let mut input = body;
    let value = read(&mut input, schema, resolved.get_names(), 0, true)?;
    if !input.is_empty() {
        return Err(format!("{} bytes left after the value", input.len()));
    }
    Ok(value)
}

/// The `Value` of `body`, a body in `schema` (every length checked against the input; no
/// bytes may be left over). Data-contract rules read records with it.
#[cfg_attr(not(feature = "rules"), allow(dead_code))]
pub(crate) fn read_value(body: &[u8], schema: &Schema) -> Result<Value, String> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    let mut input = body;
    let value = read(&mut input, schema, resolved.get_names(), 0, false)?;
    if input.is_empty() {
        Ok(value)
    } else {
        Err(format!("{} bytes left over after the record", input.len()))
    }
}

/// Deepest nesting read (the plan has bounded it already; this keeps the recursion safe on
/// its own).
const MAX_DEPTH: usize = 128;

fn read(
    input: &mut &[u8],
    schema: &Schema,
    names: &NamesRef<'_>,
    depth: usize,
    logical: bool,
) -> Result<Value, String> {
    use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
    if depth > MAX_DEPTH {
        return Err(format!("values nested deeper than {MAX_DEPTH} levels"));
    }
    let e = |e: DecodeError| e.to_string();
    if logical && let Some(value) = read_logical_type(input, schema)? {
        return Ok(value);
    }
    Ok(match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(binary::get_bool(input).map_err(e)?),
        Schema::Int | Schema::Date | Schema::TimeMillis => {
            Value::Int(binary::get_int(input).map_err(e)?)
        }
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Value::Long(binary::get_long(input).map_err(e)?),
        Schema::Float => Value::Float(binary::get_float(input).map_err(e)?),
        Schema::Double => Value::Double(binary::get_double(input).map_err(e)?),
        Schema::String => Value::String(binary::get_string(input).map_err(e)?),
        // A `Uuid` deserializes from `Value::Uuid` whatever apache-avro's human-readable switch.
        Schema::Uuid(UuidSchema::String) => Value::Uuid(binary::get_uuid(input).map_err(e)?),
        Schema::Bytes
        | Schema::BigDecimal
        | Schema::Uuid(UuidSchema::Bytes)
        | Schema::Decimal(apache_avro::schema::DecimalSchema {
            inner: InnerDecimalSchema::Bytes,
            ..
        }) => Value::Bytes(binary::get_byte_vec(input).map_err(e)?),
        Schema::Uuid(UuidSchema::Fixed(fixed)) | Schema::Fixed(fixed) | Schema::Duration(fixed) => {
            Value::Fixed(
                fixed.size,
                binary::take(input, fixed.size).map_err(e)?.to_vec(),
            )
        }
        Schema::Decimal(decimal) => match &decimal.inner {
            InnerDecimalSchema::Fixed(fixed) => Value::Fixed(
                fixed.size,
                binary::take(input, fixed.size).map_err(e)?.to_vec(),
            ),
            InnerDecimalSchema::Bytes => Value::Bytes(binary::get_byte_vec(input).map_err(e)?),
        },
        Schema::Enum(schema) => {
            let index = binary::get_index(input, "enum", schema.symbols.len()).map_err(e)?;
            Value::Enum(index as u32, schema.symbols[index].clone())
        }
        Schema::Array(array) => {
            let mut items = Vec::new();
            blocks(input, |input| {
                items.push(read(input, &array.items, names, depth + 1, logical)?);
                Ok(())
            })?;
            Value::Array(items)
        }
        Schema::Map(map) => {
            let mut entries = HashMap::new();
            blocks(input, |input| {
                let key = binary::get_string(input).map_err(|e| e.to_string())?;
                entries.insert(key, read(input, &map.types, names, depth + 1, logical)?);
                Ok(())
            })?;
            Value::Map(entries)
        }
        Schema::Union(union) => {
            let branches = union.variants();
            let index = binary::get_index(input, "union", branches.len()).map_err(e)?;
            let inner = read(input, &branches[index], names, depth + 1, logical)?;
            Value::Union(index as u32, Box::new(inner))
        }
        Schema::Record(record) => {
            let mut fields = Vec::with_capacity(record.fields.len());
            for field in &record.fields {
                let value = read(input, &field.schema, names, depth + 1, logical)
                    .map_err(|reason| format!("{}.{}: {reason}", record.name, field.name))?;
                fields.push((field.name.clone(), value));
            }
            Value::Record(fields)
        }
        Schema::Ref { name } => {
            let target = names
                .get(name)
                .ok_or_else(|| format!("unknown type name '{name}'"))?;
            read(input, target, names, depth, logical)?
        }
    })
}

/// The logical value of a logical type's schema (`None` for other schemas), read from `input`.
fn read_logical_type(input: &mut &[u8], schema: &Schema) -> Result<Option<Value>, String> {
    use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
    let e = |e: DecodeError| e.to_string();
    Ok(Some(match schema {
        Schema::Date => Value::Date(binary::get_int(input).map_err(e)?),
        Schema::TimeMillis => Value::TimeMillis(binary::get_int(input).map_err(e)?),
        Schema::TimeMicros => Value::TimeMicros(binary::get_long(input).map_err(e)?),
        Schema::TimestampMillis => Value::TimestampMillis(binary::get_long(input).map_err(e)?),
        Schema::TimestampMicros => Value::TimestampMicros(binary::get_long(input).map_err(e)?),
        Schema::TimestampNanos => Value::TimestampNanos(binary::get_long(input).map_err(e)?),
        Schema::LocalTimestampMillis => {
            Value::LocalTimestampMillis(binary::get_long(input).map_err(e)?)
        }
        Schema::LocalTimestampMicros => {
            Value::LocalTimestampMicros(binary::get_long(input).map_err(e)?)
        }
        Schema::LocalTimestampNanos => {
            Value::LocalTimestampNanos(binary::get_long(input).map_err(e)?)
        }
        Schema::Decimal(decimal) => {
            Value::Decimal(apache_avro::Decimal::from(match &decimal.inner {
                InnerDecimalSchema::Fixed(fixed) => {
                    binary::take(input, fixed.size).map_err(e)?.to_vec()
                }
                InnerDecimalSchema::Bytes => binary::get_byte_vec(input).map_err(e)?,
            }))
        }
        Schema::Duration(_) => {
            let bytes: [u8; 12] = binary::take(input, 12)
                .map_err(e)?
                .try_into()
                .map_err(|_| "a duration is 12 bytes".to_owned())?;
            Value::Duration(apache_avro::Duration::from(bytes))
        }
        Schema::Uuid(UuidSchema::Bytes) => {
            let bytes = binary::get_byte_vec(input).map_err(e)?;
            Value::Uuid(uuid::Uuid::from_slice(&bytes).map_err(|e| format!("uuid: {e}"))?)
        }
        Schema::Uuid(UuidSchema::Fixed(fixed)) => {
            let bytes = binary::take(input, fixed.size).map_err(e)?;
            Value::Uuid(uuid::Uuid::from_slice(bytes).map_err(|e| format!("uuid: {e}"))?)
        }
        _ => return Ok(None),
    }))
}

/// Reads array or map blocks, each item with `item`, which must take at least one byte.
fn blocks(
    input: &mut &[u8],
    mut item: impl FnMut(&mut &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    loop {
        let count = binary::get_block_count(input).map_err(|e| e.to_string())?;
        if count == 0 {
            return Ok(());
        }
        for _ in 0..count {
            let before = input.len();
            item(input)?;
            if input.len() == before {
                return Err(DecodeError::EmptyItem.to_string());
            }
        }
    }
}
