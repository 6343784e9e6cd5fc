//! From checked schemas and declarations to Rust source: the types (rsgen-avro's) and, per
//! declared event, its `Event` impl.

use std::fmt::Write as _;

use heck::{ToSnakeCase, ToUpperCamelCase};
use rsgen_avro::{Generator, Schema, Source};

use crate::{
    Error,
    codecs::Codecs,
    declare::{Declaration, ReferenceDeclaration},
    references::References,
    schemas::{SchemaFile, describe, named_types},
};

/// What the `Event` impl of one declared record says.
#[derive(Debug)]
pub(crate) struct Binding<'a> {
    rust_type: String,
    full_name: String,
    topic: String,
    key_field: String,
    key: KeyType,
    file: &'a SchemaFile,
    /// The files its file refers to (indices into the files).
    references: Vec<usize>,
}

/// The Avro type of a record's key field, which decides how its text is made.
#[derive(Debug, Clone, Copy)]
enum KeyType {
    /// `string`: cloned.
    String,
    /// `uuid`: written hyphenated without `Display` (`avro_events::binary::uuid_text`).
    Uuid,
    /// `int` or `long`: `to_string`.
    Integer,
}

/// The bindings and the referenced files they need.
#[derive(Debug)]
pub(crate) struct Bound<'a> {
    pub(crate) bindings: Vec<Binding<'a>>,
    pub(crate) references: References,
}

/// Matches each declaration to the file whose top-level record it names and checks its key.
pub(crate) fn bind<'a>(
    files: &'a [SchemaFile],
    declarations: &[Declaration],
    declared_references: &[ReferenceDeclaration],
) -> Result<Bound<'a>, Error> {
    let mut bindings = Vec::with_capacity(declarations.len());
    let mut references = References::default();
    for declaration in declarations {
        let found = files.iter().find_map(|file| {
            file.record()
                .filter(|record| record.name.fullname(None) == declaration.record)
                .map(|record| (file, record))
        });
        let Some((file, record)) = found else {
            let nested_in = files.iter().find_map(|file| {
                let mut names = Vec::new();
                named_types(&file.schema, &mut names);
                names
                    .iter()
                    .any(|name| name.fullname(None) == declaration.record)
                    .then(|| file.path.clone())
            });
            return Err(Error::RecordNotFound {
                record: declaration.record.clone(),
                declared_in: declaration.declared_in.clone(),
                nested_in,
            });
        };
        let index = files
            .iter()
            .position(|f| std::ptr::eq(f, file))
            .expect("the file is one of the files");
        let used = if file.not_self_contained.is_some() {
            references.of(files, declared_references, index, &declaration.record)?
        } else {
            Vec::new()
        };
        let Some(field) = record.fields.iter().find(|f| f.name == declaration.key) else {
            let fields: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(Error::KeyFieldNotFound {
                record: declaration.record.clone(),
                field: declaration.key.clone(),
                fields: fields.join(", "),
                path: file.path.clone(),
                declared_in: declaration.declared_in.clone(),
            });
        };
        let key = match &field.schema {
            Schema::String => KeyType::String,
            Schema::Uuid => KeyType::Uuid,
            Schema::Int | Schema::Long => KeyType::Integer,
            other => {
                return Err(Error::UnsupportedKeyType {
                    record: declaration.record.clone(),
                    field: declaration.key.clone(),
                    found: describe(other),
                    path: file.path.clone(),
                });
            }
        };
        bindings.push(Binding {
            rust_type: record.name.name.to_upper_camel_case(),
            full_name: declaration.record.clone(),
            topic: declaration.topic.clone(),
            key_field: rust_field(&field.name),
            key,
            file,
            references: used,
        });
    }
    // In the order of the files, whatever the order of the declarations.
    bindings.sort_by_key(|b| files.iter().position(|f| std::ptr::eq(f, b.file)));
    Ok(Bound {
        bindings,
        references,
    })
}

/// rsgen-avro's Rust types for every file of the set, generated together so that a type used by
/// several files is generated once.
pub(crate) fn types(files: &[SchemaFile]) -> Result<String, Error> {
    let generator = Generator::builder().build().map_err(|e| Error::Generate {
        files: "(generator setup)".to_owned(),
        message: e.to_string(),
    })?;
    let schemas: Vec<Schema> = files.iter().map(|f| f.schema.clone()).collect();
    let mut code = Vec::new();
    if let Err(error) = generator.generate(&Source::Schemas(&schemas), &mut code) {
        // Narrow it down to a file, if one fails on its own.
        let culprit = files.iter().find(|file| {
            file.not_self_contained.is_none()
                && generator
                    .generate(&Source::Schema(&file.schema), &mut Vec::new())
                    .is_err()
        });
        return Err(Error::Generate {
            files: match culprit {
                Some(file) => file.path.display().to_string(),
                None => files
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            message: error.to_string(),
        });
    }
    Ok(String::from_utf8(code).expect("rsgen-avro writes UTF-8"))
}

/// The generated file: header, imports through `crate_path`, the types, their binary codecs
/// (`codecs`), the `Event` impls.
pub(crate) fn file(
    crate_path: &str,
    files: &[SchemaFile],
    types: &str,
    codecs: &Codecs,
    bound: &Bound<'_>,
) -> String {
    let bindings = &bound.bindings;
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.path.file_name().map_or_else(
                || f.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let private = format!("{crate_path}::__private");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by avro-events-build from {}. Do not edit.\n",
        names.join(", ")
    );
    let _ = writeln!(
        out,
        "#[allow(unused_imports)]\nuse {private}::{{apache_avro, serde}};"
    );
    out.push_str(&adapt(types, &format!("{private}::serde")));
    out.push_str(&codecs.code);
    for (index, referenced) in &bound.references.by_file {
        let file = &files[*index];
        let _ = write!(
            out,
            "\n/// `{file_name}`, a schema events refer to.\n#[allow(dead_code)]\nconst {konst}: \
             {crate_path}::EventReference = {crate_path}::EventReference {{
    name: {name:?},
    subject: {subject:?},
    version: {version},
    schema: {schema},
    references: &[{uses}],
}};
",
            file_name = file
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            konst = reference_const(*index),
            name = referenced.name,
            subject = referenced.subject,
            version = referenced.version,
            schema = literal(&file.text),
            uses = referenced
                .uses
                .iter()
                .map(|i| reference_const(*i))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    for binding in bindings {
        let references = if binding.references.is_empty() {
            String::new()
        } else {
            format!(
                "    /// The schemas of other files it uses.\n    const REFERENCES: &'static \
                 [{crate_path}::EventReference] = &[{}];\n",
                binding
                    .references
                    .iter()
                    .map(|i| reference_const(*i))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let datum = if codecs.records.contains(&binding.full_name) {
            format!(
                "\n    /// The generated binary codec above.\n    const AVRO_DATUM: \
                 ::std::option::Option<{crate_path}::binary::DatumCodec<Self>> =\n        \
                 ::std::option::Option::Some({crate_path}::binary::DatumCodec::of());\n"
            )
        } else {
            String::new()
        };
        let key = match binding.key {
            KeyType::String => format!("::std::clone::Clone::clone(&self.{})", binding.key_field),
            KeyType::Uuid => format!(
                "{crate_path}::binary::uuid_text(&self.{})",
                binding.key_field
            ),
            KeyType::Integer => format!(
                "::std::string::ToString::to_string(&self.{})",
                binding.key_field
            ),
        };
        let _ = write!(
            out,
            "\nimpl {crate_path}::Event for {ty} {{
    const TOPIC: &'static str = {topic:?};
    /// The text of `{file}`, byte for byte.
    const SCHEMA: &'static str = {schema};
    const FULL_NAME: &'static str = {full_name:?};
{references}{datum}
    /// The `{field}` field.
    fn key(&self) -> ::std::string::String {{
        {key}
    }}
}}
",
            ty = binding.rust_type,
            topic = binding.topic,
            file = binding
                .file
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            schema = literal(&binding.file.text),
            full_name = binding.full_name,
            field = binding.key_field.trim_start_matches("r#"),
        );
    }
    out
}

/// The name of the constant holding the reference to file `index`.
fn reference_const(index: usize) -> String {
    format!("AVRO_EVENTS_REFERENCE_{index}")
}

/// The enum and `Event` impl of each family (see [`crate::Builder::family`]).
pub(crate) fn families(
    crate_path: &str,
    families: &[crate::declare::Family],
    bindings: &[Binding<'_>],
) -> String {
    let mut out = String::new();
    for family in families {
        // Checked by `declare::check_families`: every member is a declared, bound event.
        let members: Vec<&Binding<'_>> = family
            .members
            .iter()
            .filter_map(|m| bindings.iter().find(|b| b.full_name == *m))
            .collect();
        let name = &family.name;
        let mut variants = String::new();
        let mut decode_arms = String::new();
        let mut encode_arms = String::new();
        let mut key_arms = String::new();
        let mut froms = String::new();
        let mut schemas = Vec::new();
        for (index, member) in members.iter().enumerate() {
            let ty = &member.rust_type;
            let full = &member.full_name;
            let _ = write!(variants, "\n    /// A `{full}`.\n    {ty}({ty}),");
            let _ = write!(
                decode_arms,
                "\n                        {full:?} => written.decode::<{ty}>({name:?}).map(Self::{ty}),"
            );
            let _ = write!(
                encode_arms,
                "\n                Self::{ty}(member) => ::std::boxed::Box::pin(\n                    \
                 codec.encode_member::<Self, {ty}>(topic, {index}, member),\n                ),"
            );
            let _ = write!(
                key_arms,
                "\n            Self::{ty}(member) => {crate_path}::Event::key(member),"
            );
            let _ = write!(
                froms,
                "\nimpl ::std::convert::From<{ty}> for {name} {{
    fn from(member: {ty}) -> Self {{
        Self::{ty}(member)
    }}
}}
"
            );
            schemas.push(member.file.text.trim().to_owned());
        }
        let names: Vec<String> = members
            .iter()
            .map(|m| format!("{:?}", m.full_name))
            .collect();
        let _ = write!(
            out,
            "
/// The events of `{topic}`: one variant per record type, chosen by the writer schema's record
/// name (the record-name subject strategies) or union branch (a top-level union).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(crate = \"{crate_path}::__private::serde\", untagged)]
pub enum {name} {{{variants}
}}

impl {name} {{
    /// The full names of the record types, in variant order.
    pub const MEMBERS: &'static [&'static str] = &[{names}];
}}
{froms}
impl {crate_path}::Event for {name} {{
    const TOPIC: &'static str = {topic:?};
    /// The union of the members' schemas: the value schema of `{topic}-value` when the
    /// topic's subject is a union of its types.
    const SCHEMA: &'static str = {schema};
    const FULL_NAME: &'static str = {name:?};
    const DISPATCH: ::std::option::Option<{crate_path}::Dispatch<Self>> =
        ::std::option::Option::Some({crate_path}::Dispatch {{
            decode: |codec, payload| {{
                ::std::boxed::Box::pin(async move {{
                    let written = codec.written(payload).await?;
                    let record = written.record_name({name:?})?;
                    match record.as_str() {{{decode_arms}
                        other => ::std::result::Result::Err(written.unknown({name:?}, other, Self::MEMBERS)),
                    }}
                }})
            }},
            encode: |codec, topic, event| match event {{{encode_arms}
            }},
        }});

    /// The member's key.
    fn key(&self) -> ::std::string::String {{
        match self {{{key_arms}
        }}
    }}
}}
",
            topic = family.topic,
            names = names.join(", "),
            schema = literal(&format!("[{}]", schemas.join(", "))),
        );
    }
    out
}

/// `text` as a Rust string literal: a raw string, readable in the generated file, unless it has a
/// carriage return (not allowed in raw strings).
fn literal(text: &str) -> String {
    if text.contains('\r') {
        return format!("{text:?}");
    }
    let mut hashes = String::from("#");
    while text.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    format!("r{hashes}\"{text}\"{hashes}")
}

/// Adapts rsgen-avro's code to the core:
/// - adds `#[serde(crate = "…")]` under every serde derive, so the generated types need no `serde`
///   dependency of their own: the core's re-export serves;
/// - names apache-avro 0.22's serde helpers (`apache_avro::serde::bytes`, `…::fixed`, and their
///   `_opt` forms) instead of the `serde_avro_*` modules rsgen-avro 0.19 writes, which 0.22
///   deprecates (a warning in the user's crate otherwise).
fn adapt(code: &str, serde_path: &str) -> String {
    let mut out = String::with_capacity(code.len() + 1024);
    for line in code.lines() {
        let line = line
            .replace(
                "\"apache_avro::serde_avro_bytes",
                "\"apache_avro::serde::bytes",
            )
            .replace(
                "\"apache_avro::serde_avro_fixed",
                "\"apache_avro::serde::fixed",
            );
        out.push_str(&line);
        out.push('\n');
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[derive(")
            && (trimmed.contains("serde::Serialize") || trimmed.contains("serde::Deserialize"))
        {
            let indent = &line[..line.len() - trimmed.len()];
            let _ = writeln!(out, "{indent}#[serde(crate = {serde_path:?})]");
        }
    }
    out
}

/// The Rust name rsgen-avro gives the field `name`: snake case, keywords escaped.
pub(crate) fn rust_field(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do",
        "dyn", "else", "enum", "false", "final", "fn", "for", "if", "impl", "in", "let", "loop",
        "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
        "static", "struct", "trait", "true", "try", "type", "typeof", "union", "unsafe", "unsized",
        "use", "virtual", "where", "while", "yield",
    ];
    // Keywords that cannot be raw identifiers get a trailing underscore as well.
    const NOT_RAW: &[&str] = &["Self", "self", "super", "extern", "crate"];
    let snake = name.to_snake_case();
    if NOT_RAW.contains(&snake.as_str()) {
        format!("r#{snake}_")
    } else if KEYWORDS.contains(&snake.as_str()) {
        format!("r#{snake}")
    } else {
        snake
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_keep_the_text_byte_for_byte() {
        assert_eq!(literal(r#"{"a": "b"}"#), r##"r#"{"a": "b"}"#"##);
        assert_eq!(
            literal(r##"{"doc": "a \"# b"}"##),
            r###"r##"{"doc": "a \"# b"}"##"###
        );
        assert_eq!(literal("{}\r\n"), r#""{}\r\n""#);
    }

    #[test]
    fn field_names_follow_rsgen_avro() {
        assert_eq!(rust_field("orderId"), "order_id");
        assert_eq!(rust_field("order_id"), "order_id");
        assert_eq!(rust_field("type"), "r#type");
        assert_eq!(rust_field("self"), "r#self_");
    }

    #[test]
    fn serde_helpers_are_those_of_apache_avro_0_22() {
        let code = "    #[serde(with = \"apache_avro::serde_avro_bytes\")]\n    \
                    #[serde(with = \"apache_avro::serde_avro_bytes_opt\")]\n    \
                    #[serde(serialize_with = \"apache_avro::serde_avro_fixed::serialize\")]\n    \
                    #[serde(with = \"apache_avro::serde_avro_fixed_opt\")]\n";
        assert_eq!(
            adapt(code, "::x"),
            "    #[serde(with = \"apache_avro::serde::bytes\")]\n    \
             #[serde(with = \"apache_avro::serde::bytes_opt\")]\n    \
             #[serde(serialize_with = \"apache_avro::serde::fixed::serialize\")]\n    \
             #[serde(with = \"apache_avro::serde::fixed_opt\")]\n"
        );
    }

    #[test]
    fn every_serde_derive_gets_the_crate_path() {
        let code = "#[derive(Debug, serde::Deserialize, serde::Serialize)]\npub struct A {}\n    \
                    #[derive(serde::Deserialize)]\n    struct W(u8);\n#[derive(Debug)]\nstruct B;\n";
        let out = adapt(code, "::x::__private::serde");
        assert_eq!(
            out,
            "#[derive(Debug, serde::Deserialize, serde::Serialize)]\n\
             #[serde(crate = \"::x::__private::serde\")]\npub struct A {}\n    \
             #[derive(serde::Deserialize)]\n    #[serde(crate = \"::x::__private::serde\")]\n    \
             struct W(u8);\n#[derive(Debug)]\nstruct B;\n"
        );
    }
}
