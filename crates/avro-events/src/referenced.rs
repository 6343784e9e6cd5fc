//! A schema with references made self-contained: the named types it takes from the schemas
//! its references name are written out where they are first used (depth first, fields in
//! order, as Avro's Parsing Canonical Form writes a named type once), so the codec's
//! resolution plans, its allocation checks and the generated decoders' fast path (same
//! canonical form) work on it as on any other schema.

use std::collections::{HashMap, HashSet};

use apache_avro::{
    Schema,
    schema::{ArraySchema, MapSchema, Name, RecordSchema, UnionSchema},
};

/// `schema` (JSON text) with every named type it uses from `referenced` (the texts of the
/// schemas its references name, recursively, in any order) written out.
///
/// # Errors
/// Why not, in words: a text that is not an Avro schema, a name defined twice, a name no
/// schema defines.
///
/// apache-avro's parser follows a name into the schema defining it recursively, so a chain of
/// references nests its stack as deep as the chain is long (up to
/// [`MAX_REFERENCED_SCHEMAS`](crate::registry::MAX_REFERENCED_SCHEMAS) from a registry): the
/// work runs on a thread of its own with a stack far larger than any such chain needs, and the
/// written-out schema is parsed again as text, whose JSON depth limit then refuses one nested
/// deeper than a self-contained schema could be. So what comes out is never deeper than what
/// [`Schema::parse_str`] accepts, and nothing downstream recurses further than for any schema.
pub(crate) fn self_contained(
    schema: &str,
    referenced: impl IntoIterator<Item = impl AsRef<str>>,
) -> std::result::Result<Schema, String> {
    let schema = schema.to_owned();
    let referenced: Vec<String> = referenced
        .into_iter()
        .map(|r| r.as_ref().to_owned())
        .collect();
    on_parse_stack(move || write_out_all(&schema, &referenced))
}

/// Branch `index` of the union `union` as a schema of its own: the named types it uses that
/// the union defines elsewhere (in an earlier branch, or the branch is itself only a name)
/// written out, as [`self_contained`] writes out a reference. A union of references, once made
/// whole, defines each type where first used, so a later branch may be a bare name.
///
/// # Errors
/// Why not, in words: `union` is not a union or has no branch `index`, a name it does not
/// define, or the branch written out nested deeper than a schema may be.
pub(crate) fn union_branch(union: &Schema, index: usize) -> std::result::Result<Schema, String> {
    let union = union.clone();
    on_parse_stack(move || {
        let Schema::Union(variants) = &union else {
            return Err("the schema is not a union".into());
        };
        let branch = variants
            .variants()
            .get(index)
            .ok_or_else(|| format!("the union has no branch {index}"))?;
        let resolved =
            apache_avro::schema::ResolvedSchema::try_from(&union).map_err(|e| e.to_string())?;
        let whole = write_out(branch, resolved.get_names(), &mut HashSet::new())?;
        reparsed(&whole)
    })
}

/// `work` on a thread whose stack is [`PARSE_STACK`].
fn on_parse_stack(
    work: impl FnOnce() -> std::result::Result<Schema, String> + Send + 'static,
) -> std::result::Result<Schema, String> {
    std::thread::Builder::new()
        .name("avro-references".into())
        .stack_size(PARSE_STACK)
        .spawn(work)
        .map_err(|e| format!("cannot start the thread that reads references: {e}"))?
        .join()
        .unwrap_or_else(|_| Err("reading the schema with its references failed".into()))
}

/// `whole` parsed again from its own text: a schema that stands alone, as a registry or the
/// generated code would hand it over, and no deeper than [`Schema::parse_str`] accepts.
fn reparsed(whole: &Schema) -> std::result::Result<Schema, String> {
    let text = serde_json::to_string(whole).map_err(|e| e.to_string())?;
    Schema::parse_str(&text).map_err(|e| {
        format!(
            "{e} (the schema written out with its references, {} bytes, nested too deep or \
             invalid)",
            text.len()
        )
    })
}

/// The stack of the thread [`self_contained`] parses on: 64 MiB of address space, of which
/// only what is touched is committed (a chain of 128 references overflows a default 2 MiB
/// thread stack in a debug build; 256, the most a registry client fetches, passes here).
const PARSE_STACK: usize = 64 * 1024 * 1024;

fn write_out_all(schema: &str, referenced: &[String]) -> std::result::Result<Schema, String> {
    let (main, list) =
        Schema::parse_str_with_list(schema, referenced).map_err(|e| e.to_string())?;
    let resolved = apache_avro::schema::ResolvedSchema::new_with_schemata(list.iter().collect())
        .map_err(|e| e.to_string())?;
    let mut defined = HashSet::new();
    let whole = write_out(&main, resolved.get_names(), &mut defined)?;
    reparsed(&whole)
}

fn write_out(
    schema: &Schema,
    definitions: &HashMap<Name, &Schema>,
    defined: &mut HashSet<Name>,
) -> std::result::Result<Schema, String> {
    Ok(match schema {
        Schema::Ref { name } => {
            if defined.contains(name) {
                schema.clone()
            } else {
                let definition = definitions.get(name).ok_or_else(|| {
                    format!(
                        "the type '{}' is defined neither in the schema nor in its references",
                        name.fullname(None)
                    )
                })?;
                write_out(definition, definitions, defined)?
            }
        }
        Schema::Record(record) => {
            if !defined.insert(record.name.clone()) {
                return Ok(Schema::Ref {
                    name: record.name.clone(),
                });
            }
            let mut fields = Vec::with_capacity(record.fields.len());
            for field in &record.fields {
                let mut field = field.clone();
                field.schema = write_out(&field.schema, definitions, defined)?;
                fields.push(field);
            }
            Schema::Record(RecordSchema {
                fields,
                ..record.clone()
            })
        }
        Schema::Enum(e) => named(schema, &e.name, defined),
        Schema::Fixed(f) | Schema::Duration(f) => named(schema, &f.name, defined),
        Schema::Array(array) => Schema::Array(ArraySchema {
            items: Box::new(write_out(&array.items, definitions, defined)?),
            attributes: array.attributes.clone(),
        }),
        Schema::Map(map) => Schema::Map(MapSchema {
            types: Box::new(write_out(&map.types, definitions, defined)?),
            attributes: map.attributes.clone(),
        }),
        Schema::Union(union) => {
            let variants = union
                .variants()
                .iter()
                .map(|v| write_out(v, definitions, defined))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Schema::Union(UnionSchema::new(variants).map_err(|e| e.to_string())?)
        }
        other => other.clone(),
    })
}

/// A named type other than a record: its definition the first time, its name after.
fn named(schema: &Schema, name: &Name, defined: &mut HashSet<Name>) -> Schema {
    if defined.insert(name.clone()) {
        schema.clone()
    } else {
        Schema::Ref { name: name.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str =
        r#"{"type":"enum","name":"Unit","namespace":"shop","symbols":["EACH","KG"]}"#;
    const PRODUCT: &str = r#"{"type":"record","name":"Product","namespace":"shop","fields":[
        {"name":"sku","type":"string"},{"name":"unit","type":"Unit"}]}"#;
    const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"main","type":"Product"},
        {"name":"extra","type":["null","shop.Product"],"default":null},
        {"name":"lines","type":{"type":"array","items":"Product"}},
        {"name":"unit","type":"Unit"}]}"#;

    #[test]
    fn references_are_written_out_where_first_used() {
        let whole = self_contained(ORDER, [UNIT, PRODUCT]).unwrap();
        let expected = Schema::parse_str(
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[
            {"name":"main","type":{"type":"record","name":"Product","fields":[
                {"name":"sku","type":"string"},
                {"name":"unit","type":{"type":"enum","name":"Unit","symbols":["EACH","KG"]}}]}},
            {"name":"extra","type":["null","Product"],"default":null},
            {"name":"lines","type":{"type":"array","items":"Product"}},
            {"name":"unit","type":"Unit"}]}"#,
        )
        .unwrap();
        assert_eq!(whole.canonical_form(), expected.canonical_form());
    }

    /// A chain of references as long as the registry client lets through nests the schema as
    /// deep: refused with an error (the JSON parser's depth limit), never a stack overflow.
    #[test]
    fn a_deep_chain_is_an_error_not_a_crash() {
        let text = |i: usize| {
            let field = if i == 0 {
                "\"int\"".to_owned()
            } else {
                format!("\"C{}\"", i - 1)
            };
            format!(r#"{{"type":"record","name":"C{i}","fields":[{{"name":"f","type":{field}}}]}}"#)
        };
        let depth = crate::registry::MAX_REFERENCED_SCHEMAS;
        let referenced: Vec<String> = (0..depth).map(text).collect();
        let err = self_contained(&text(depth), &referenced).unwrap_err();
        assert!(err.contains("nested too deep"), "{err}");
        // A short chain is fine.
        let short: Vec<String> = (0..5).map(text).collect();
        self_contained(&text(5), &short).unwrap();
    }

    /// A union of references made whole defines each type where first used: a later branch
    /// may be only a name, or use a type an earlier branch defines. Each branch comes out whole.
    #[test]
    fn a_union_branch_is_written_out_on_its_own() {
        let union = self_contained(
            r#"["shop.Order", "shop.Product", "shop.Unit"]"#,
            [UNIT, PRODUCT, ORDER],
        )
        .unwrap();
        let Schema::Union(variants) = &union else {
            panic!("{union:?}")
        };
        assert!(matches!(variants.variants()[1], Schema::Ref { .. }));
        for (index, text) in [ORDER, PRODUCT, UNIT].into_iter().enumerate() {
            let branch = union_branch(&union, index).unwrap();
            let expected = self_contained(text, [UNIT, PRODUCT]).unwrap();
            assert_eq!(
                branch.canonical_form(),
                expected.canonical_form(),
                "{index}"
            );
        }
        let err = union_branch(&union, 3).unwrap_err();
        assert!(err.contains("no branch 3"), "{err}");
    }

    #[test]
    fn a_missing_definition_is_named() {
        let err = self_contained(ORDER, [PRODUCT]).unwrap_err();
        assert!(err.contains("Unit"), "{err}");
    }
}
