//! Rewrites schemas into the shape in which Java Avro's compatibility check sees them.

use std::collections::{HashMap, HashSet};

use apache_avro::Schema;
use apache_avro::schema::{
    ArraySchema, DecimalSchema, InnerDecimalSchema, MapSchema, Name, RecordSchema, UnionSchema,
    UuidSchema,
};

/// Maps every alias of the reader's named types (fully qualified) to the reader's name.
pub(crate) fn reader_aliases(reader: &Schema) -> HashMap<Name, Name> {
    fn walk(schema: &Schema, out: &mut HashMap<Name, Name>) {
        let (name, aliases) = match schema {
            Schema::Record(r) => {
                for field in &r.fields {
                    walk(&field.schema, out);
                }
                (&r.name, &r.aliases)
            }
            Schema::Enum(e) => (&e.name, &e.aliases),
            Schema::Fixed(f) => (&f.name, &f.aliases),
            Schema::Array(a) => return walk(&a.items, out),
            Schema::Map(m) => return walk(&m.types, out),
            Schema::Union(u) => {
                for branch in u.variants() {
                    walk(branch, out);
                }
                return;
            }
            _ => return,
        };
        for alias in aliases.iter().flatten() {
            let alias = alias.fully_qualified_name(name.namespace()).into_owned();
            if alias != *name {
                out.insert(alias, name.clone());
            }
        }
    }
    let mut out = HashMap::new();
    walk(reader, &mut out);
    out
}

/// Rewrites a schema the way Java Avro's compatibility check sees it: logical types replaced
/// by their physical type, named types referenced a second time inlined (recursive references
/// stay references), and named types renamed per `renames` (reader aliases).
pub(crate) fn physical(schema: &Schema, renames: &HashMap<Name, Name>) -> Schema {
    let mut inliner = Inliner {
        defined: HashMap::new(),
        renames,
        in_progress: HashSet::new(),
    };
    inliner.rewrite(schema)
}

struct Inliner<'a> {
    defined: HashMap<Name, Schema>,
    renames: &'a HashMap<Name, Name>,
    in_progress: HashSet<Name>,
}

impl Inliner<'_> {
    fn rename(&self, name: &Name) -> Name {
        self.renames
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.clone())
    }

    fn define(&mut self, original: &Name, schema: Schema) -> Schema {
        self.defined.insert(original.clone(), schema.clone());
        schema
    }

    fn rewrite(&mut self, schema: &Schema) -> Schema {
        match schema {
            Schema::Array(a) => Schema::Array(ArraySchema {
                items: Box::new(self.rewrite(&a.items)),
                attributes: a.attributes.clone(),
            }),
            Schema::Map(m) => Schema::Map(MapSchema {
                types: Box::new(self.rewrite(&m.types)),
                attributes: m.attributes.clone(),
            }),
            Schema::Union(u) => {
                let branches = u.variants().iter().map(|b| self.rewrite(b)).collect();
                // Two branches can collapse into one physical type (`string` and a `uuid`):
                // keep the union as written then.
                UnionSchema::new(branches)
                    .map(Schema::Union)
                    .unwrap_or_else(|_| schema.clone())
            }
            Schema::Record(r) => {
                self.in_progress.insert(r.name.clone());
                let mut record: RecordSchema = r.clone();
                record.name = self.rename(&r.name);
                for field in &mut record.fields {
                    field.schema = self.rewrite(&field.schema);
                }
                self.in_progress.remove(&r.name);
                self.define(&r.name, Schema::Record(record))
            }
            Schema::Enum(e) => {
                let mut e = e.clone();
                let original = e.name.clone();
                e.name = self.rename(&original);
                self.define(&original, Schema::Enum(e))
            }
            Schema::Fixed(f)
            | Schema::Duration(f)
            | Schema::Uuid(UuidSchema::Fixed(f))
            | Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Fixed(f),
                ..
            }) => {
                let mut f = f.clone();
                let original = f.name.clone();
                f.name = self.rename(&original);
                self.define(&original, Schema::Fixed(f))
            }
            Schema::Decimal(_) | Schema::BigDecimal | Schema::Uuid(UuidSchema::Bytes) => {
                Schema::Bytes
            }
            Schema::Uuid(UuidSchema::String) => Schema::String,
            Schema::Date | Schema::TimeMillis => Schema::Int,
            Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Schema::Long,
            Schema::Ref { name } => match self.defined.get(name) {
                Some(definition) if !self.in_progress.contains(name) => definition.clone(),
                _ => Schema::Ref {
                    name: self.rename(name),
                },
            },
            Schema::Null
            | Schema::Boolean
            | Schema::Int
            | Schema::Long
            | Schema::Float
            | Schema::Double
            | Schema::Bytes
            | Schema::String => schema.clone(),
        }
    }
}
