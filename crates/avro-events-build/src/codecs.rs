//! The Avro binary encoder and decoder of each generated type (`avro_events::binary::AvroDatum`
//! impls): straight-line code per record field, in schema order, with no serde and no `Value`
//! tree, as prost generates `encode`/`merge` per message.
//!
//! A type gets a codec when everything it contains is covered: the primitives, `uuid` and the
//! date and time logical types as rsgen-avro maps them (without chrono), enums, records, fixed,
//! arrays, maps and `["null", T]` unions. Types with anything else (other unions, decimals,
//! durations, recursive records) get none, and the `Codec` encodes and decodes them through
//! serde, as it does hand-written types.

use std::{collections::HashMap, fmt::Write as _};

use heck::ToUpperCamelCase;
use rsgen_avro::Schema;

use crate::{render::rust_field, schemas::SchemaFile};

/// The generated impls, and the full names of the records that got one.
#[derive(Debug, Default)]
pub(crate) struct Codecs {
    pub(crate) code: String,
    pub(crate) records: Vec<String>,
}

/// Every named type the files define, by full name.
type Names<'s> = HashMap<String, &'s Schema>;

fn collect_named<'s>(schema: &'s Schema, names: &mut Names<'s>) {
    match schema {
        Schema::Record(record) => {
            names.insert(record.name.fullname(None), schema);
            for field in &record.fields {
                collect_named(&field.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.fullname(None), schema);
        }
        Schema::Fixed(f) => {
            names.insert(f.name.fullname(None), schema);
        }
        Schema::Array(array) => collect_named(&array.items, names),
        Schema::Map(map) => collect_named(&map.types, names),
        Schema::Union(union) => union
            .variants()
            .iter()
            .for_each(|v| collect_named(v, names)),
        _ => {}
    }
}

/// The impls for every record and enum of `files` that the generator covers.
pub(crate) fn generate(crate_path: &str, files: &[SchemaFile]) -> Codecs {
    let mut names = Names::new();
    for file in files {
        collect_named(&file.schema, &mut names);
    }
    let mut sorted: Vec<(&String, &&Schema)> = names.iter().collect();
    sorted.sort_by_key(|(name, _)| name.as_str());
    let generator = Gen {
        binary: format!("{crate_path}::binary"),
        names: &names,
    };
    let mut codecs = Codecs::default();
    for (full_name, schema) in sorted {
        match schema {
            Schema::Record(_) if generator.covered(schema, &mut Vec::new()) => {
                generator.record(schema, &mut codecs.code);
                codecs.records.push(full_name.clone());
            }
            Schema::Enum(_) => generator.enumeration(schema, &mut codecs.code),
            _ => {}
        }
    }
    codecs
}

struct Gen<'s> {
    /// The path of `avro_events::binary`.
    binary: String,
    names: &'s Names<'s>,
}

/// The Rust name rsgen-avro gives an enum (or its symbol): upper camel case, keywords escaped.
fn rust_type(name: &str) -> String {
    let name = name.to_upper_camel_case();
    if name == "Self" {
        format!("r#{name}_")
    } else {
        name
    }
}

impl<'s> Gen<'s> {
    fn resolve(&self, schema: &'s Schema) -> &'s Schema {
        match schema {
            Schema::Ref { name } => self
                .names
                .get(&name.fullname(None))
                .copied()
                .unwrap_or(schema),
            other => other,
        }
    }

    /// Whether the generator covers every value of `schema` (`records`: the records being
    /// checked, to refuse recursion, which rsgen-avro boxes).
    fn covered(&self, schema: &'s Schema, records: &mut Vec<String>) -> bool {
        match self.resolve(schema) {
            Schema::Boolean
            | Schema::Int
            | Schema::Long
            | Schema::Float
            | Schema::Double
            | Schema::Bytes
            | Schema::String
            | Schema::Uuid
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
            | Schema::Enum(_)
            | Schema::Fixed(_) => true,
            Schema::Array(array) => self.covered(&array.items, records),
            Schema::Map(map) => self.covered(&map.types, records),
            Schema::Union(union) => match union.variants() {
                [Schema::Null, other] => {
                    !matches!(self.resolve(other), Schema::Union(_) | Schema::Null)
                        && self.covered(other, records)
                }
                _ => false,
            },
            Schema::Record(record) => {
                let name = record.name.fullname(None);
                if records.contains(&name) {
                    return false;
                }
                records.push(name);
                let covered = record
                    .fields
                    .iter()
                    .all(|field| self.covered(&field.schema, records));
                records.pop();
                covered
            }
            _ => false,
        }
    }

    /// Code appending `value` (a place expression of the field's type) to `out`.
    fn encode(&self, schema: &'s Schema, value: &str) -> String {
        let b = &self.binary;
        match self.resolve(schema) {
            Schema::Boolean => format!("{b}::put_bool(out, {value})"),
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                format!("{b}::put_int(out, {value})")
            }
            Schema::Float => format!("{b}::put_float(out, {value})"),
            Schema::Double => format!("{b}::put_double(out, {value})"),
            Schema::Bytes => format!("{b}::put_bytes(out, &{value})"),
            Schema::String => format!("{b}::put_str(out, &{value})"),
            Schema::Uuid => format!("{b}::put_uuid(out, &{value})"),
            Schema::Fixed(_) => format!("out.extend_from_slice(&{value})"),
            Schema::Enum(_) | Schema::Record(_) => {
                format!("{b}::AvroDatum::encode(&{value}, out)")
            }
            Schema::Array(array) => format!(
                "{b}::put_array(out, &{value}, |out, item| {})",
                self.encode(&array.items, "*item")
            ),
            Schema::Map(map) => format!(
                "{b}::put_map(out, &{value}, |out, item| {})",
                self.encode(&map.types, "*item")
            ),
            Schema::Union(union) => format!(
                "match &{value} {{\n            ::std::option::Option::None => out.push(0),\n            \
                 ::std::option::Option::Some(some) => {{\n                out.push(2);\n                \
                 {};\n            }}\n        }}",
                self.encode(&union.variants()[1], "*some")
            ),
            // Every long-based logical type.
            _ => format!("{b}::put_long(out, {value})"),
        }
    }

    /// An expression of type `Result<T, DecodeError>` reading a value off `input`.
    fn decode(&self, schema: &'s Schema) -> String {
        let b = &self.binary;
        match self.resolve(schema) {
            Schema::Boolean => format!("{b}::get_bool(input)"),
            Schema::Int | Schema::Date | Schema::TimeMillis => format!("{b}::get_int(input)"),
            Schema::Float => format!("{b}::get_float(input)"),
            Schema::Double => format!("{b}::get_double(input)"),
            Schema::Bytes => format!("{b}::get_byte_vec(input)"),
            Schema::String => format!("{b}::get_string(input)"),
            Schema::Uuid => format!("{b}::get_uuid(input)"),
            Schema::Fixed(_) => format!("{b}::get_fixed(input)"),
            Schema::Enum(_) | Schema::Record(_) => format!("{b}::AvroDatum::decode(input)"),
            Schema::Array(array) => format!(
                "{b}::get_array(input, |input| {})",
                self.decode(&array.items)
            ),
            Schema::Map(map) => format!("{b}::get_map(input, |input| {})", self.decode(&map.types)),
            Schema::Union(union) => format!(
                "{b}::get_option(input, |input| {})",
                self.decode(&union.variants()[1])
            ),
            _ => format!("{b}::get_long(input)"),
        }
    }

    fn record(&self, schema: &'s Schema, out: &mut String) {
        let Schema::Record(record) = schema else {
            return;
        };
        let b = &self.binary;
        let full_name = record.name.fullname(None);
        let ty = record.name.name.to_upper_camel_case();
        let mut encode = String::new();
        let mut decode = String::new();
        let mut build = String::new();
        let mut slots = String::new();
        let mut arms = String::new();
        let mut filled = String::new();
        for (i, field) in record.fields.iter().enumerate() {
            let rust = rust_field(&field.name);
            let _ = writeln!(
                encode,
                "        {};",
                self.encode(&field.schema, &format!("self.{rust}"))
            );
            let _ = writeln!(
                decode,
                "        let f{i} = {}\n            .map_err(|e| e.in_field({full_name:?}, {:?}))?;",
                self.decode(&field.schema),
                field.name,
            );
            let _ = write!(build, "{rust}: f{i}, ");
            // The resolving decoder: one slot per reader field, filled where the writer's
            // field lies; a record field may itself be resolved field by field.
            let _ = writeln!(slots, "        let mut f{i} = ::std::option::Option::None;");
            let read = if matches!(self.resolve(&field.schema), Schema::Record(_)) {
                format!(
                    "match nested {{\n                    ::std::option::Option::Some(nested) => \
                     {b}::AvroDatum::decode_resolving(input, nested),\n                    \
                     ::std::option::Option::None => {b}::AvroDatum::decode(input),\n                \
                     }}"
                )
            } else {
                self.decode(&field.schema)
            };
            let _ = writeln!(
                arms,
                "                {i} => f{i} = ::std::option::Option::Some({read}\n                    \
                 .map_err(|e| e.in_field({full_name:?}, {:?}))?),",
                field.name,
            );
            let _ = write!(
                filled,
                "{rust}: f{i}.ok_or({b}::DecodeError::MissingField {{ record: {full_name:?}, field: {:?} }})?, ",
                field.name
            );
        }
        let _ = write!(
            out,
            "\n/// The Avro binary encoding of `{full_name}`, field by field in schema order.
#[allow(clippy::all)]
impl {b}::AvroDatum for {ty} {{
    #[inline]
    fn encode(&self, out: &mut ::std::vec::Vec<u8>) {{
{encode}    }}

    #[inline]
    fn decode(input: &mut &[u8]) -> ::std::result::Result<Self, {b}::DecodeError> {{
{decode}        ::std::result::Result::Ok(Self {{ {build}}})
    }}

    fn decode_resolving(
        input: &mut &[u8],
        resolving: &{b}::Resolving<'_>,
    ) -> ::std::result::Result<Self, {b}::DecodeError> {{
{slots}        resolving.fields(input, |field, input, nested| {{
            let _ = &nested;
            match field {{
{arms}                _ => {{
                    return ::std::result::Result::Err({b}::DecodeError::Unresolvable(
                        ::std::format!(\"{full_name} has no field {{field}}\"),
                    ));
                }}
            }}
            ::std::result::Result::Ok(())
        }})?;
        ::std::result::Result::Ok(Self {{ {filled}}})
    }}
}}
"
        );
    }

    fn enumeration(&self, schema: &'s Schema, out: &mut String) {
        let Schema::Enum(e) = schema else {
            return;
        };
        let b = &self.binary;
        let ty = rust_type(&e.name.name);
        let count = e.symbols.len();
        let mut encode = String::new();
        let mut decode = String::new();
        for (i, symbol) in e.symbols.iter().enumerate() {
            let variant = rust_type(symbol);
            let _ = writeln!(encode, "            Self::{variant} => {i},");
            let arm = if i + 1 == count {
                "_".to_owned()
            } else {
                i.to_string()
            };
            let _ = writeln!(decode, "            {arm} => Self::{variant},");
        }
        let _ = write!(
            out,
            "\n/// The Avro binary encoding of `{full_name}`: the symbol's index.
#[allow(clippy::all)]
impl {b}::AvroDatum for {ty} {{
    #[inline]
    fn encode(&self, out: &mut ::std::vec::Vec<u8>) {{
        {b}::put_long(out, match self {{
{encode}        }});
    }}

    #[inline]
    fn decode(input: &mut &[u8]) -> ::std::result::Result<Self, {b}::DecodeError> {{
        ::std::result::Result::Ok(match {b}::get_index(input, \"enum\", {count})? {{
{decode}        }})
    }}
}}
",
            full_name = e.name.fullname(None),
        );
    }
}
