//! Schema references between files: an event's file may use the top-level type of another file
//! of the set, which is then registered under a subject of its own (Confluent's schema
//! references). Each referenced type's subject and version come from a `[references."<name>"]`
//! table of the declarations file or [`Builder::reference`](crate::Builder::reference) (default:
//! the full name, version 1), and the generated `Event` impl lists them in
//! `Event::REFERENCES`, each with its file's text and its own references.

use std::collections::{BTreeMap, HashMap};

use rsgen_avro::{Schema, apache_avro::schema::Name};

use crate::{
    Error,
    declare::ReferenceDeclaration,
    schemas::{SchemaFile, named_types},
};

/// One referenced file: its type, where it is registered, and the files it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Referenced {
    /// Full name of the file's top-level type.
    pub(crate) name: String,
    /// Its subject.
    pub(crate) subject: String,
    /// Its version.
    pub(crate) version: u32,
    /// Indices (into the files) of the files it refers to.
    pub(crate) uses: Vec<usize>,
}

/// The references of the files events use, by file index, found from the event files'.
#[derive(Debug, Default)]
pub(crate) struct References {
    pub(crate) by_file: BTreeMap<usize, Referenced>,
}

impl References {
    /// The files `files[index]` refers to (directly), each checked and added with its own
    /// references, recursively. `record` is the event being bound, for errors.
    pub(crate) fn of(
        &mut self,
        files: &[SchemaFile],
        declared: &[ReferenceDeclaration],
        index: usize,
        record: &str,
    ) -> Result<Vec<usize>, Error> {
        let mut path = Vec::new();
        self.walk(files, declared, index, record, &mut path)
    }

    fn walk(
        &mut self,
        files: &[SchemaFile],
        declared: &[ReferenceDeclaration],
        index: usize,
        record: &str,
        path: &mut Vec<usize>,
    ) -> Result<Vec<usize>, Error> {
        let file = &files[index];
        let tops: HashMap<String, usize> = files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| top_name(&f.schema).map(|n| (n.fullname(None), i)))
            .collect();
        path.push(index);
        let mut direct = Vec::new();
        for name in used_names(&file.schema) {
            let full = name.fullname(None);
            let Some(&target) = tops.get(&full) else {
                return Err(Error::NotSelfContained {
                    record: record.to_owned(),
                    path: file.path.clone(),
                    message: format!(
                        "it uses {full}, which is not the top-level type of a schema file: a \
                         schema reference names a whole file (move {full} into a file of its own)"
                    ),
                });
            };
            if path.contains(&target) {
                return Err(Error::NotSelfContained {
                    record: record.to_owned(),
                    path: file.path.clone(),
                    message: format!(
                        "its references go round in a circle through {} ({full}); schema \
                         references cannot",
                        files[target].path.display()
                    ),
                });
            }
            if !direct.contains(&target) {
                direct.push(target);
            }
            if !self.by_file.contains_key(&target) {
                let uses = self.walk(files, declared, target, record, path)?;
                let found = declared.iter().find(|d| d.name == full);
                self.by_file.insert(
                    target,
                    Referenced {
                        subject: found.map_or_else(|| full.clone(), |d| d.subject.clone()),
                        version: found.map_or(1, |d| d.version),
                        name: full,
                        uses,
                    },
                );
            }
        }
        path.pop();
        Ok(direct)
    }
}

fn top_name(schema: &Schema) -> Option<&Name> {
    match schema {
        Schema::Record(r) => Some(&r.name),
        Schema::Enum(e) => Some(&e.name),
        Schema::Fixed(f) => Some(&f.name),
        _ => None,
    }
}

/// The names `schema` uses but does not define, in order of first use.
fn used_names(schema: &Schema) -> Vec<Name> {
    let mut defined = Vec::new();
    named_types(schema, &mut defined);
    let mut used = Vec::new();
    refs(schema, &mut used);
    let mut out: Vec<Name> = Vec::new();
    for name in used {
        if !defined.contains(&name) && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn refs(schema: &Schema, out: &mut Vec<Name>) {
    match schema {
        Schema::Ref { name } => out.push(name.clone()),
        Schema::Record(record) => {
            for field in &record.fields {
                refs(&field.schema, out);
            }
        }
        Schema::Array(schema) => refs(&schema.items, out),
        Schema::Map(schema) => refs(&schema.types, out),
        Schema::Union(union) => {
            for variant in union.variants() {
                refs(variant, out);
            }
        }
        _ => {}
    }
}
