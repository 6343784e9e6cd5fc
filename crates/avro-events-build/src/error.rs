//! The one error type of the helper: each variant names the file and the problem.

use std::{io, path::PathBuf};

/// Why code generation failed. Every variant names the file (schema or declarations) at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A schema or declaration file, or a schema directory, could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// The builder was given no `.avsc` file (or only empty directories).
    #[error("no .avsc schema files given (directories searched: {dirs})")]
    NoSchemas {
        /// The directories that were searched, comma-separated.
        dirs: String,
    },
    /// A file is not valid JSON or not a valid Avro schema.
    #[error("invalid Avro schema in {}: {message}", path.display())]
    InvalidSchema {
        /// The schema file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A family of events (`[families.<Name>]`, or [`Builder::family`](crate::Builder::family))
    /// cannot be generated.
    #[error("family {family} (declared in {declared_in}): {problem}")]
    InvalidFamily {
        /// The family's Rust name.
        family: String,
        /// Where it was declared.
        declared_in: String,
        /// What is wrong.
        problem: String,
    },
    /// A file's top-level schema is not a named type (record, enum or fixed).
    #[error(
        "{}: the top-level schema is {found}; each .avsc file must define a record, enum or fixed",
        path.display()
    )]
    NotNamed {
        /// The schema file.
        path: PathBuf,
        /// What the top level is instead.
        found: String,
    },
    /// Two files define the same named type, or types whose generated Rust names collide.
    #[error(
        "type {first_name} ({}) and type {second_name} ({}) would both generate the Rust type {rust_name}; \
         rename one (the generated types live in one module, namespaces aside)",
        first.display(), second.display()
    )]
    DuplicateType {
        /// The Rust type name both would get.
        rust_name: String,
        /// The first type's full name.
        first_name: String,
        /// The file defining the first type.
        first: PathBuf,
        /// The second type's full name.
        second_name: String,
        /// The file defining the second type.
        second: PathBuf,
    },
    /// The declarations file is not valid TOML or has unknown keys.
    #[error("invalid event declarations in {}: {message}", path.display())]
    InvalidDeclarations {
        /// The declarations file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A record is declared as an event twice.
    #[error("event {record} is declared twice (in {first} and in {second})")]
    DuplicateDeclaration {
        /// The record's full name.
        record: String,
        /// Where it was declared first.
        first: String,
        /// Where it was declared again.
        second: String,
    },
    /// A declared event's topic is not a valid Kafka topic name.
    #[error(
        "event {record} (declared in {declared_in}): topic {topic:?} is not a valid Kafka topic name \
         (1 to 249 of a-z A-Z 0-9 . _ -, not \".\" or \"..\")"
    )]
    InvalidTopic {
        /// The record's full name.
        record: String,
        /// The topic as declared.
        topic: String,
        /// Where it was declared.
        declared_in: String,
    },
    /// No schema file has the declared record as its top-level type.
    #[error(
        "event {record} (declared in {declared_in}) is not the top-level record of any schema file{}",
        match nested_in { Some(path) => format!(" (it is nested in {}; an event needs its own .avsc file)", path.display()), None => String::new() }
    )]
    RecordNotFound {
        /// The record's full name.
        record: String,
        /// Where it was declared.
        declared_in: String,
        /// The file that defines it inside another type, if any.
        nested_in: Option<PathBuf>,
    },
    /// A declared event's schema uses named types of other files that cannot be schema
    /// references: a type nested inside another file (a reference names a whole file's
    /// top-level type), or files that refer to each other in a circle.
    #[error(
        "{}: event {record} uses types of other schema files that cannot be references: {message}",
        path.display()
    )]
    NotSelfContained {
        /// The record's full name.
        record: String,
        /// Its schema file (or the file along its references at fault).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The declared key field is not a field of the record.
    #[error(
        "{}: record {record} has no field {field:?} (declared as its key in {declared_in}); fields: {fields}",
        path.display()
    )]
    KeyFieldNotFound {
        /// The record's full name.
        record: String,
        /// The declared key field.
        field: String,
        /// The record's fields, comma-separated.
        fields: String,
        /// Its schema file.
        path: PathBuf,
        /// Where the key was declared.
        declared_in: String,
    },
    /// The declared key field's type cannot be turned into a record key.
    #[error(
        "{}: key field {record}.{field} is of type {found}; a key field must be string, uuid, int or long",
        path.display()
    )]
    UnsupportedKeyType {
        /// The record's full name.
        record: String,
        /// The declared key field.
        field: String,
        /// The field's Avro type.
        found: String,
        /// Its schema file.
        path: PathBuf,
    },
    /// rsgen-avro could not generate types from a schema.
    #[error("cannot generate Rust types from {files}: {message}")]
    Generate {
        /// The file at fault, or every file when it could not be narrowed down.
        files: String,
        /// rsgen-avro's message.
        message: String,
    },
    /// `OUT_DIR` is not set and no output directory was given.
    #[error("OUT_DIR is not set (not in a build script?) and no out_dir was given")]
    NoOutDir,
    /// The generated file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
}
