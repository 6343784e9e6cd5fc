//! Reading and checking a set of `.avsc` files: each is valid JSON and valid Avro, defines a named
//! type at the top level, and no two named types would generate the same Rust type. Files may use
//! named types defined in other files of the set.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use heck::ToUpperCamelCase;
use rsgen_avro::{
    Schema,
    apache_avro::schema::{Name, RecordSchema},
};

use crate::Error;

/// One schema file of the set.
#[derive(Debug)]
pub(crate) struct SchemaFile {
    /// Where it was read from.
    pub(crate) path: PathBuf,
    /// Its text, byte for byte.
    pub(crate) text: String,
    /// Its schema, parsed with the other files of the set (their named types resolved).
    pub(crate) schema: Schema,
    /// Why it does not parse on its own (it uses types defined in other files), if it does not.
    pub(crate) not_self_contained: Option<String>,
}

impl SchemaFile {
    /// The file's top-level record, if it is one.
    pub(crate) fn record(&self) -> Option<&RecordSchema> {
        match &self.schema {
            Schema::Record(record) => Some(record),
            _ => None,
        }
    }
}

/// The schema files of `files` and the `*.avsc` files directly in each of `dirs` (sorted by
/// name), without repeats.
pub(crate) fn collect(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut all = files.to_vec();
    for dir in dirs {
        let entries = fs::read_dir(dir).map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| Error::Read {
                    path: dir.clone(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|ext| ext == "avsc") && !path.is_dir() {
                found.push(path);
            }
        }
        found.sort();
        all.extend(found);
    }
    let mut unique = Vec::with_capacity(all.len());
    for path in all {
        if !unique.contains(&path) {
            unique.push(path);
        }
    }
    if unique.is_empty() {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(Error::NoSchemas {
            dirs: if dirs.is_empty() {
                "none".to_owned()
            } else {
                dirs.join(", ")
            },
        });
    }
    Ok(unique)
}

/// Reads, parses and checks the schema files at `paths`.
pub(crate) fn load(paths: &[PathBuf]) -> Result<Vec<SchemaFile>, Error> {
    let mut texts = Vec::with_capacity(paths.len());
    for path in paths {
        let text = fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        check_json(path, &text)?;
        texts.push(text);
    }

    // Each file on its own first, so that an error names its file; a file that fails alone may
    // still be fine with the others (it uses their types).
    let alone: Vec<Result<Schema, String>> = texts
        .iter()
        .map(|text| Schema::parse_str(text).map_err(|e| e.to_string()))
        .collect();
    let together = Schema::parse_list(&texts).map_err(|e| e.to_string());
    let schemas = match together {
        Ok(schemas) => schemas,
        Err(list_error) => {
            // apache-avro resolves the files in a random order, so a file that uses a type
            // defined inside another one may or may not parse with the set: say the same thing
            // either way (references::order does when the set parses).
            if let Some(error) = uses_a_nested_type(paths, &texts, &alone) {
                return Err(error);
            }
            // The first file that fails alone is at fault; if every file parses alone, the set
            // does not fit together (two files define the same type).
            if let Some((path, Err(message))) =
                paths.iter().zip(&alone).find(|(_, parsed)| parsed.is_err())
            {
                return Err(Error::InvalidSchema {
                    path: path.clone(),
                    message: message.clone(),
                });
            }
            let schemas: Vec<Schema> = alone.into_iter().map(|s| s.expect("checked")).collect();
            check_names(paths, &schemas)?;
            return Err(Error::InvalidSchema {
                path: paths[0].clone(),
                message: format!("the schema files do not parse together: {list_error}"),
            });
        }
    };
    check_names(paths, &schemas)?;

    Ok(paths
        .iter()
        .zip(texts)
        .zip(schemas)
        .zip(alone)
        .map(|(((path, text), schema), alone)| SchemaFile {
            path: path.clone(),
            text,
            schema,
            not_self_contained: alone.err(),
        })
        .collect())
}

/// The file is JSON and its top level is a named type.
fn check_json(path: &Path, text: &str) -> Result<(), Error> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::InvalidSchema {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let kind = json.get("type").and_then(serde_json::Value::as_str);
    match (&json, kind) {
        (serde_json::Value::Object(_), Some("record" | "enum" | "fixed" | "error")) => Ok(()),
        (serde_json::Value::Object(_), Some(kind)) => Err(Error::NotNamed {
            path: path.to_owned(),
            found: format!("a {kind}"),
        }),
        (serde_json::Value::Object(_), None) => Err(Error::NotNamed {
            path: path.to_owned(),
            found: "an object without a \"type\" name".to_owned(),
        }),
        (serde_json::Value::Array(_), _) => Err(Error::NotNamed {
            path: path.to_owned(),
            found: "a union".to_owned(),
        }),
        (other, _) => Err(Error::NotNamed {
            path: path.to_owned(),
            found: format!("the primitive {other}"),
        }),
    }
}

/// No two named types, in one file or in two, generate the same Rust type name (rsgen-avro names
/// types by their simple name, namespaces aside).
fn check_names(paths: &[PathBuf], schemas: &[Schema]) -> Result<(), Error> {
    let mut seen: HashMap<String, (String, &Path)> = HashMap::new();
    for (path, schema) in paths.iter().zip(schemas) {
        let mut names = Vec::new();
        named_types(schema, &mut names);
        for name in names {
            let full_name = name.fullname(None);
            let rust_name = name.name.to_upper_camel_case();
            if let Some((first_name, first)) = seen.get(&rust_name) {
                return Err(Error::DuplicateType {
                    rust_name,
                    first_name: first_name.clone(),
                    first: first.to_path_buf(),
                    second_name: full_name,
                    second: path.clone(),
                });
            }
            seen.insert(rust_name, (full_name, path));
        }
    }
    Ok(())
}

/// The named types `schema` defines (references to types defined elsewhere excluded).
pub(crate) fn named_types(schema: &Schema, out: &mut Vec<Name>) {
    match schema {
        Schema::Record(record) => {
            out.push(record.name.clone());
            for field in &record.fields {
                named_types(&field.schema, out);
            }
        }
        Schema::Enum(schema) => out.push(schema.name.clone()),
        Schema::Fixed(schema) => out.push(schema.name.clone()),
        Schema::Decimal(schema) => named_types(&schema.inner, out),
        Schema::Array(schema) => named_types(&schema.items, out),
        Schema::Map(schema) => named_types(&schema.types, out),
        Schema::Union(union) => {
            for variant in union.variants() {
                named_types(variant, out);
            }
        }
        _ => {}
    }
}

/// The error for the first file that failed alone for want of a type that another file
/// defines inside its own (not as its top-level type), if there is one: a schema reference
/// names a whole file.
fn uses_a_nested_type(
    paths: &[PathBuf],
    texts: &[String],
    alone: &[Result<Schema, String>],
) -> Option<Error> {
    let mut nested: Vec<(String, usize)> = Vec::new();
    for (index, parsed) in alone.iter().enumerate() {
        if let Ok(schema) = parsed {
            let mut names = Vec::new();
            named_types(schema, &mut names);
            // The first is the file's top-level type.
            nested.extend(names.iter().skip(1).map(|n| (n.fullname(None), index)));
        }
    }
    alone.iter().enumerate().find_map(|(index, parsed)| {
        let name = parsed
            .as_ref()
            .err()?
            .strip_prefix("Unknown primitive type: ")?
            .trim();
        let (_, definer) = nested.iter().find(|(defined, _)| defined == name)?;
        let json: serde_json::Value = serde_json::from_str(&texts[index]).ok()?;
        let short = json.get("name").and_then(serde_json::Value::as_str)?;
        let record = match json.get("namespace").and_then(serde_json::Value::as_str) {
            Some(namespace) if !short.contains('.') => format!("{namespace}.{short}"),
            _ => short.to_owned(),
        };
        Some(Error::NotSelfContained {
            record,
            path: paths[index].clone(),
            message: format!(
                "it uses {name}, which is not the top-level type of a schema file (it is defined \
                 inside {}): a schema reference names a whole file (move {name} into a file of \
                 its own)",
                paths[*definer].display()
            ),
        })
    })
}

/// A short description of a field's Avro type, for error messages.
pub(crate) fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Record(record) => format!("record {}", record.name.fullname(None)),
        Schema::Enum(schema) => format!("enum {}", schema.name.fullname(None)),
        Schema::Fixed(schema) => format!("fixed {}", schema.name.fullname(None)),
        Schema::Ref { name } => name.fullname(None),
        Schema::Union(union) => {
            let variants: Vec<String> = union.variants().iter().map(describe).collect();
            format!("union [{}]", variants.join(", "))
        }
        Schema::Array(schema) => format!("array of {}", describe(&schema.items)),
        Schema::Map(schema) => format!("map of {}", describe(&schema.types)),
        Schema::Decimal(_) => "decimal".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}
