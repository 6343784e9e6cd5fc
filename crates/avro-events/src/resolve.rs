//! Avro schema resolution as a compiled plan over bytes.
//!
//! A [`Plan`] is built once per (writer schema, reader schema) and rewrites an Avro body
//! written with the writer schema into the body the reader schema would have written for the
//! resolved value: fields the reader lacks are skipped, fields the writer lacks get the
//! reader's default (encoded once, at compile time), fields are put in the reader's order,
//! numbers are promoted (`int` → `long`/`float`/`double`, `long` → `float`/`double`,
//! `float` → `double`; `string` ↔ `bytes` share their encoding), enum symbols and union
//! branches are renumbered; strings are checked to be UTF-8 when the plan is the whole check
//! (`crate::dynamic`; the codec's decoders check them as they read); a value both schemas encode the same
//! way (the same types, names and order all the way down) is read, checked, and copied whole. The result is then decoded with
//! the reader schema by the type's generated decoder (`crate::binary`), or for hand-written
//! types by apache-avro's schema-aware deserializer, with no `Value` tree in between.
//!
//! The rules are the [Avro specification's](https://avro.apache.org/docs/1.12.0/specification/#schema-resolution):
//! record fields match by name or by a reader field's alias; named types match by name or a
//! reader alias; the first reader union branch that matches a writer branch is taken.

use std::collections::HashMap;

use apache_avro::{
    Schema,
    schema::{Name, NamesRef, RecordSchema, ResolvedSchema},
    types::Value,
    writer::datum::GenericDatumWriter,
};

type Failure = String;

/// A compiled writer→reader resolution.
#[derive(Debug)]
pub(crate) struct Plan {
    ops: Vec<Op>,
    root: usize,
}

#[derive(Debug)]
enum Op {
    /// Placeholder while a record's plan is being compiled (recursive types).
    Pending,
    Null,
    Boolean,
    /// `int` or `long` as written (zig-zag varint), also for `int` → `long`.
    Varint,
    /// A varint promoted to `float` (`int`/`long` → `float`).
    VarintToFloat,
    /// A varint promoted to `double`.
    VarintToDouble,
    Float,
    FloatToDouble,
    Double,
    /// Length-prefixed bytes (`bytes`, and `string` into `bytes`).
    Bytes,
    /// Length-prefixed bytes that must be UTF-8 (`string`, and `bytes` into `string`).
    String,
    Fixed(usize),
    /// Writer symbol index → reader symbol index (`None`: not in the reader, no default).
    Enum(Vec<Option<i64>>, Vec<String>),
    Array(usize),
    Map(usize),
    /// Writer union: per writer branch, the reader union index to write (`None` when the reader
    /// is not a union) and the branch's plan; `None` when no reader branch matches.
    WriterUnion(Vec<Option<(Option<i64>, usize)>>),
    /// A writer value that is not a union, into the reader union's branch `index`.
    IntoUnion(i64, usize),
    Record(Box<RecordPlan>),
    /// A value the reader encodes exactly as the writer did: read (checked) by the plan, then
    /// copied whole.
    Copy(usize),
}

#[derive(Debug)]
struct RecordPlan {
    name: String,
    /// In the writer's field order, with defaults interleaved where the reader wants them.
    steps: Vec<Step>,
    /// Set when the reader's order differs from the writer's: each step's reader position.
    reorder: Option<Vec<Option<usize>>>,
    /// Each step's reader field position (`None` for a skipped writer field), whatever the
    /// order: what a generated decoder fills ([`Plan::field_step`]).
    targets: Vec<Option<usize>>,
}

/// One step of a record's resolution as a generated decoder follows it, in the writer's field
/// order ([`Plan::field_step`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldStep<'p> {
    /// Reader field `field` is encoded exactly as the writer wrote it: decode it straight.
    Read(usize),
    /// Reader field `field`, a record whose writer record differs: resolved field by field by
    /// the record plan `op`.
    Nested(usize, usize),
    /// Reader field `field`, rewritten into the reader's encoding by plan `op` first (a
    /// promotion, renumbered symbols or branches, an array of changed records).
    Rewrite(usize, usize),
    /// A writer field the reader lacks: read past it with plan `op`.
    Skip(usize),
    /// Reader field `field`, absent from the writer: its default, in the reader's encoding.
    Default(usize, &'p [u8]),
}

#[derive(Debug)]
enum Step {
    Take(usize),
    Skip(usize),
    Default(Vec<u8>),
}

/// Where the rewritten body goes: bounded, so a record cannot make it grow without limit.
pub(crate) struct Out {
    buf: Vec<u8>,
    limit: usize,
}

trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Failure>;
    /// The most bytes this sink takes.
    fn limit(&self) -> usize;
}

impl Sink for Out {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if self.buf.len() + bytes.len() > self.limit {
            return Err(format!(
                "the resolved value would exceed {} bytes (avro.max.allocation.bytes)",
                self.limit
            ));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn limit(&self) -> usize {
        self.limit
    }
}

struct Discard;

impl Sink for Discard {
    fn put(&mut self, _: &[u8]) -> Result<(), Failure> {
        Ok(())
    }

    fn limit(&self) -> usize {
        usize::MAX
    }
}

struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Failure> {
        if n > self.bytes.len() {
            return Err(format!(
                "unexpected end of data: {n} bytes needed, {} left",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// A zig-zag varint: its value and its bytes as written.
    fn varint(&mut self) -> Result<(i64, &'a [u8]), Failure> {
        let mut raw: u64 = 0;
        for (i, byte) in self.bytes.iter().enumerate().take(10) {
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                let written = self.take(i + 1)?;
                return Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), written));
            }
        }
        if self.bytes.len() < 10 {
            return Err("unexpected end of data inside a varint".into());
        }
        Err("bad varint: longer than 10 bytes".into())
    }

    fn length(&mut self) -> Result<usize, Failure> {
        let (len, _) = self.varint()?;
        usize::try_from(len).map_err(|_| format!("negative length {len}"))
    }
}

fn put_long(out: &mut impl Sink, value: i64) -> Result<(), Failure> {
    let mut zz = ((value << 1) ^ (value >> 63)) as u64;
    let mut buf = [0u8; 10];
    let mut i = 0;
    loop {
        if zz < 0x80 {
            buf[i] = zz as u8;
            i += 1;
            break;
        }
        buf[i] = (zz as u8 & 0x7f) | 0x80;
        zz >>= 7;
        i += 1;
    }
    out.put(&buf[..i])
}

impl Plan {
    /// Compiles the resolution of `writer` into `reader`.
    ///
    /// # Errors
    /// Why the reader cannot read what the writer writes (a reader field without a default
    /// that the writer lacks, types that do not match, fixed sizes that differ).
    pub(crate) fn compile(writer: &Schema, reader: &Schema) -> Result<Self, Failure> {
        Self::compile_with(writer, reader, false)
    }

    /// As [`Plan::compile`], with every string the reader reads checked to be UTF-8 (for a
    /// plan that is the whole check, [`crate::dynamic`]; the codec's decoders check strings
    /// themselves).
    pub(crate) fn compile_checked(writer: &Schema, reader: &Schema) -> Result<Self, Failure> {
        Self::compile_with(writer, reader, true)
    }

    fn compile_with(
        writer: &Schema,
        reader: &Schema,
        check_strings: bool,
    ) -> Result<Self, Failure> {
        let writer_names = ResolvedSchema::try_from(writer).map_err(|e| e.to_string())?;
        let reader_names = ResolvedSchema::try_from(reader).map_err(|e| e.to_string())?;
        let mut compiler = Compiler {
            writer_names: writer_names.get_names(),
            reader_names: reader_names.get_names(),
            reader_root: reader,
            ops: Vec::new(),
            records: HashMap::new(),
            skipping: false,
            check_strings,
        };
        let root = compiler.compile(writer, reader)?;
        Ok(Self {
            ops: compiler.ops,
            root,
        })
    }

    /// Rewrites `body` (written with the writer schema) into the reader schema's encoding,
    /// appending to `out`, which may grow to at most `limit` bytes.
    ///
    /// # Errors
    /// A body that does not decode with the writer schema, a value the reader cannot take
    /// (an enum symbol or union branch it lacks), or output beyond `limit`.
    pub(crate) fn run(&self, body: &[u8], out: Vec<u8>, limit: usize) -> Result<Vec<u8>, Failure> {
        let mut input = Input { bytes: body };
        let mut out = Out { buf: out, limit };
        // Bytes after the value are ignored, as Avro's own decoders and the same-schema path do.
        self.exec(self.root, &mut input, &mut out, 0)?;
        Ok(out.buf)
    }

    /// The plan's root op.
    pub(crate) fn root(&self) -> usize {
        self.root
    }

    /// How many steps the record plan `op` has (`None` when `op` is not a record plan).
    pub(crate) fn record_len(&self, op: usize) -> Option<usize> {
        match &self.ops[op] {
            Op::Record(record) => Some(record.steps.len()),
            _ => None,
        }
    }

    /// Step `index` of the record plan `op` (see [`Plan::record_len`]).
    pub(crate) fn field_step(&self, op: usize, index: usize) -> FieldStep<'_> {
        let Op::Record(record) = &self.ops[op] else {
            unreachable!("field_step of an op that is not a record plan");
        };
        let target = record.targets[index];
        match (&record.steps[index], target) {
            (Step::Take(plan), Some(field)) => match &self.ops[*plan] {
                Op::Copy(_) => FieldStep::Read(field),
                Op::Record(_) | Op::Pending => FieldStep::Nested(field, *plan),
                _ => FieldStep::Rewrite(field, *plan),
            },
            (Step::Default(bytes), Some(field)) => FieldStep::Default(field, bytes),
            (Step::Skip(plan), _) | (Step::Take(plan), None) => FieldStep::Skip(*plan),
            (Step::Default(_), None) => unreachable!("a default always has a reader field"),
        }
    }

    /// Reads past one value of op `op` off the front of `input`.
    pub(crate) fn skip_value(&self, op: usize, input: &mut &[u8]) -> Result<(), Failure> {
        let mut read = Input { bytes: input };
        self.exec(op, &mut read, &mut Discard, 0)?;
        *input = read.bytes;
        Ok(())
    }

    /// Rewrites one value off the front of `input` with op `op`, into `out` (cleared first),
    /// which may grow to at most `limit` bytes.
    pub(crate) fn rewrite_value(
        &self,
        op: usize,
        input: &mut &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), Failure> {
        let mut read = Input { bytes: input };
        out.clear();
        let mut sink = Out {
            buf: std::mem::take(out),
            limit,
        };
        let result = self.exec(op, &mut read, &mut sink, 0);
        *out = sink.buf;
        result?;
        *input = read.bytes;
        Ok(())
    }

    fn exec(
        &self,
        op: usize,
        input: &mut Input<'_>,
        out: &mut impl Sink,
        depth: usize,
    ) -> Result<(), Failure> {
        if depth > MAX_DEPTH {
            return Err(format!("values nested deeper than {MAX_DEPTH} levels"));
        }
        match &self.ops[op] {
            Op::Pending => Err("incomplete resolution plan (a bug in avro-events)".into()),
            Op::Copy(plan) => {
                let start = input.bytes;
                self.exec(*plan, input, &mut Discard, depth)?;
                out.put(&start[..start.len() - input.bytes.len()])
            }
            Op::Null => Ok(()),
            Op::Boolean => {
                let byte = input.take(1)?;
                if byte[0] > 1 {
                    return Err(format!("bad boolean byte {:#04x}", byte[0]));
                }
                out.put(byte)
            }
            Op::Varint => out.put(input.varint()?.1),
            Op::VarintToFloat => out.put(&(input.varint()?.0 as f32).to_le_bytes()),
            Op::VarintToDouble => out.put(&(input.varint()?.0 as f64).to_le_bytes()),
            Op::Float => out.put(input.take(4)?),
            Op::FloatToDouble => {
                let raw = input.take(4)?;
                let value = f32::from_le_bytes(raw.try_into().expect("4 bytes"));
                out.put(&f64::from(value).to_le_bytes())
            }
            Op::Double => out.put(input.take(8)?),
            Op::Bytes => {
                let (len, written) = input.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
                let data = input.take(len)?;
                out.put(written)?;
                out.put(data)
            }
            Op::String => {
                let (len, written) = input.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
                let data = input.take(len)?;
                std::str::from_utf8(data)
                    .map_err(|e| format!("a string that is not UTF-8: {e}"))?;
                out.put(written)?;
                out.put(data)
            }
            Op::Fixed(size) => out.put(input.take(*size)?),
            Op::Enum(map, symbols) => {
                let (index, _) = input.varint()?;
                let reader = usize::try_from(index)
                    .ok()
                    .and_then(|i| map.get(i))
                    .ok_or_else(|| format!("enum index {index} out of range"))?;
                match reader {
                    Some(reader) => put_long(out, *reader),
                    None => Err(format!(
                        "enum symbol '{}' is not in the reader's enum, which has no default",
                        symbols[index as usize]
                    )),
                }
            }
            Op::Array(item) => self.blocks(input, out, |input, out| {
                self.exec(*item, input, out, depth + 1)
            }),
            Op::Map(value) => self.blocks(input, out, |input, out| {
                let (len, written) = input.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
                out.put(written)?;
                out.put(input.take(len)?)?;
                self.exec(*value, input, out, depth + 1)
            }),
            Op::WriterUnion(branches) => {
                let (index, _) = input.varint()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| format!("union index {index} out of range"))?;
                let Some((reader_index, plan)) = branch else {
                    return Err(format!(
                        "the writer's union branch {index} matches nothing in the reader's schema"
                    ));
                };
                if let Some(reader_index) = reader_index {
                    put_long(out, *reader_index)?;
                }
                self.exec(*plan, input, out, depth + 1)
            }
            Op::IntoUnion(index, plan) => {
                put_long(out, *index)?;
                self.exec(*plan, input, out, depth + 1)
            }
            Op::Record(record) => self.record(record, input, out, depth),
        }
    }

    /// Array or map blocks: each block's items are rewritten; the output has one block per
    /// input block (counts positive, no byte sizes) and the closing zero.
    fn blocks<S: Sink>(
        &self,
        input: &mut Input<'_>,
        out: &mut S,
        mut item: impl FnMut(&mut Input<'_>, &mut S) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        loop {
            let (count, _) = input.varint()?;
            if count == 0 {
                return put_long(out, 0);
            }
            if count < 0 {
                input.length()?; // the block's size in bytes, not needed
            }
            let count = count.unsigned_abs();
            put_long(out, count as i64)?;
            for _ in 0..count {
                let before = input.bytes.len();
                item(input, out)?;
                if input.bytes.len() == before {
                    return Err("array or map items that encode to zero bytes".into());
                }
            }
        }
    }

    fn record(
        &self,
        record: &RecordPlan,
        input: &mut Input<'_>,
        out: &mut impl Sink,
        depth: usize,
    ) -> Result<(), Failure> {
        let Some(positions) = &record.reorder else {
            for step in &record.steps {
                match step {
                    Step::Take(plan) => self.exec(*plan, input, out, depth + 1)?,
                    Step::Skip(plan) => self.exec(*plan, input, &mut Discard, depth + 1)?,
                    Step::Default(bytes) => out.put(bytes)?,
                }
            }
            return Ok(());
        };
        // The reader's order differs: rewrite each field on its own, then emit them in order.
        let mut parts: Vec<(usize, Vec<u8>)> = Vec::with_capacity(positions.len());
        for (step, position) in record.steps.iter().zip(positions) {
            let mut part = Out {
                buf: Vec::new(),
                limit: out.limit(),
            };
            match step {
                Step::Take(plan) => self.exec(*plan, input, &mut part, depth + 1)?,
                Step::Skip(plan) => self.exec(*plan, input, &mut Discard, depth + 1)?,
                Step::Default(bytes) => part.buf.extend_from_slice(bytes),
            }
            if let Some(position) = position {
                parts.push((*position, part.buf));
            }
        }
        parts.sort_by_key(|(position, _)| *position);
        parts
            .iter()
            .try_for_each(|(_, bytes)| out.put(bytes))
            .map_err(|e| format!("record {}: {e}", record.name))
    }
}

/// Deepest nesting a value may have (records in records, arrays of arrays): a recursive schema
/// could otherwise make a small hostile body overflow the stack.
const MAX_DEPTH: usize = 128;

struct Compiler<'s> {
    writer_names: &'s NamesRef<'s>,
    reader_names: &'s NamesRef<'s>,
    reader_root: &'s Schema,
    ops: Vec<Op>,
    /// Records compiled (or being compiled) by (writer name, reader name, skipping).
    records: HashMap<(Name, Name, bool), usize>,
    /// Compiling a plan that only reads past a writer value (reader = writer).
    skipping: bool,
    /// Check that strings are UTF-8 ([`Plan::compile_checked`]).
    check_strings: bool,
}

/// A schema with logical types and references taken away: what its bytes look like.
enum Physical<'s> {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(&'s Name, usize),
    Enum(&'s apache_avro::schema::EnumSchema),
    Array(&'s Schema),
    Map(&'s Schema),
    Union(&'s [Schema]),
    Record(&'s RecordSchema),
}

fn physical<'s>(schema: &'s Schema, names: &'s NamesRef<'s>) -> Result<Physical<'s>, Failure> {
    use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
    Ok(match schema {
        Schema::Null => Physical::Null,
        Schema::Boolean => Physical::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Physical::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Physical::Long,
        Schema::Float => Physical::Float,
        Schema::Double => Physical::Double,
        Schema::Bytes | Schema::BigDecimal => Physical::Bytes,
        Schema::String => Physical::String,
        Schema::Decimal(decimal) => match &decimal.inner {
            InnerDecimalSchema::Bytes => Physical::Bytes,
            InnerDecimalSchema::Fixed(fixed) => Physical::Fixed(&fixed.name, fixed.size),
        },
        Schema::Uuid(UuidSchema::String) => Physical::String,
        Schema::Uuid(UuidSchema::Bytes) => Physical::Bytes,
        Schema::Uuid(UuidSchema::Fixed(fixed)) | Schema::Fixed(fixed) | Schema::Duration(fixed) => {
            Physical::Fixed(&fixed.name, fixed.size)
        }
        Schema::Enum(e) => Physical::Enum(e),
        Schema::Array(array) => Physical::Array(&array.items),
        Schema::Map(map) => Physical::Map(&map.types),
        Schema::Union(union) => Physical::Union(union.variants()),
        Schema::Record(record) => Physical::Record(record),
        Schema::Ref { name } => {
            let target = names
                .get(name)
                .ok_or_else(|| format!("unknown type name '{name}'"))?;
            return physical(target, names);
        }
    })
}

/// Whether a reader named type (`reader`, `aliases`) matches a writer's named type.
fn names_match(
    writer: &Name,
    reader: &Name,
    aliases: Option<&[apache_avro::schema::Alias]>,
) -> bool {
    writer.name() == reader.name()
        || aliases.is_some_and(|aliases| aliases.iter().any(|a| a.name() == writer.name()))
}

impl<'s> Compiler<'s> {
    fn push(&mut self, op: Op) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    fn compile(&mut self, writer: &'s Schema, reader: &'s Schema) -> Result<usize, Failure> {
        if !self.skipping && self.identical(writer, reader, &mut Vec::new()) {
            let read = self.skip(writer)?;
            return Ok(self.push(Op::Copy(read)));
        }
        let w = physical(writer, self.writer_names)?;
        let r = physical(reader, self.reader_names)?;
        let mismatch = || {
            format!(
                "the writer's {} cannot be read as {}",
                describe(writer),
                describe(reader)
            )
        };
        let op = match (w, r) {
            (Physical::Union(branches), _) => {
                let plans = branches
                    .iter()
                    .map(|branch| self.branch(branch, reader).ok())
                    .collect::<Vec<_>>();
                if plans.iter().all(Option::is_none) {
                    return Err(mismatch());
                }
                Op::WriterUnion(plans)
            }
            (_, Physical::Union(_)) => {
                let Some((Some(index), plan)) = self.branch(writer, reader).ok() else {
                    return Err(mismatch());
                };
                Op::IntoUnion(index, plan)
            }
            (Physical::Null, Physical::Null) => Op::Null,
            (Physical::Boolean, Physical::Boolean) => Op::Boolean,
            (Physical::Int, Physical::Int | Physical::Long) | (Physical::Long, Physical::Long) => {
                Op::Varint
            }
            (Physical::Int | Physical::Long, Physical::Float) => Op::VarintToFloat,
            (Physical::Int | Physical::Long, Physical::Double) => Op::VarintToDouble,
            (Physical::Float, Physical::Float) => Op::Float,
            (Physical::Float, Physical::Double) => Op::FloatToDouble,
            (Physical::Double, Physical::Double) => Op::Double,
            (Physical::Bytes | Physical::String, Physical::String) if self.check_strings => {
                Op::String
            }
            (Physical::Bytes | Physical::String, Physical::String) => Op::Bytes,
            (Physical::Bytes | Physical::String, Physical::Bytes) => Op::Bytes,
            (Physical::Fixed(wn, ws), Physical::Fixed(rn, rs))
                if ws == rs && wn.name() == rn.name() =>
            {
                Op::Fixed(ws)
            }
            (Physical::Enum(we), Physical::Enum(re))
                if names_match(&we.name, &re.name, re.aliases.as_deref()) =>
            {
                let fallback = re
                    .default
                    .as_ref()
                    .and_then(|d| re.symbols.iter().position(|s| s == d));
                let map = we
                    .symbols
                    .iter()
                    .map(|symbol| {
                        re.symbols
                            .iter()
                            .position(|s| s == symbol)
                            .or(fallback)
                            .map(|i| i as i64)
                    })
                    .collect();
                Op::Enum(map, we.symbols.clone())
            }
            (Physical::Array(wi), Physical::Array(ri)) => {
                let item = self.compile(wi, ri)?;
                Op::Array(item)
            }
            (Physical::Map(wv), Physical::Map(rv)) => {
                let value = self.compile(wv, rv)?;
                Op::Map(value)
            }
            (Physical::Record(wr), Physical::Record(rr))
                if names_match(&wr.name, &rr.name, rr.aliases.as_deref()) =>
            {
                return self.record(wr, rr);
            }
            _ => return Err(mismatch()),
        };
        Ok(self.push(op))
    }

    /// The first branch of the reader's union `reader` that the writer's non-union `writer`
    /// resolves into (exact kinds first, then promotions), or the plan into a reader that is
    /// not a union.
    fn branch(
        &mut self,
        writer: &'s Schema,
        reader: &'s Schema,
    ) -> Result<(Option<i64>, usize), Failure> {
        let Physical::Union(branches) = physical(reader, self.reader_names)? else {
            return Ok((None, self.compile(writer, reader)?));
        };
        let w = physical(writer, self.writer_names)?;
        // First a branch of the same kind (and name), then any branch the writer promotes to.
        let same_kind = branches.iter().position(|branch| {
            physical(branch, self.reader_names).is_ok_and(|r| same_kind(&w, &r))
        });
        let candidates = same_kind
            .into_iter()
            .chain(0..branches.len())
            .collect::<Vec<_>>();
        let mut last = None;
        for index in candidates {
            // A failed attempt may leave ops behind: harmless, they are never run.
            match self.compile(writer, &branches[index]) {
                Ok(plan) => return Ok((Some(index as i64), plan)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| "empty union".into()))
    }

    fn record(
        &mut self,
        writer: &'s RecordSchema,
        reader: &'s RecordSchema,
    ) -> Result<usize, Failure> {
        let key = (writer.name.clone(), reader.name.clone(), self.skipping);
        if let Some(index) = self.records.get(&key) {
            return Ok(*index);
        }
        let index = self.push(Op::Pending);
        self.records.insert(key.clone(), index);
        let compiled = self.record_steps(writer, reader);
        match compiled {
            Ok(plan) => {
                self.ops[index] = Op::Record(Box::new(plan));
                Ok(index)
            }
            Err(e) => {
                // Forget this record and whatever was compiled on the way (which may refer to
                // it): a later attempt compiles them again.
                self.records.retain(|_, op| *op < index);
                Err(e)
            }
        }
    }

    fn record_steps(
        &mut self,
        writer: &'s RecordSchema,
        reader: &'s RecordSchema,
    ) -> Result<RecordPlan, Failure> {
        let in_record = |e: String| format!("record {}: {e}", reader.name);
        // The reader field each writer field feeds, by name or by a reader alias.
        let target_of = |name: &str| {
            reader
                .fields
                .iter()
                .position(|f| f.name == name || f.aliases.iter().any(|alias| alias == name))
        };
        let mut steps = Vec::with_capacity(writer.fields.len());
        let mut positions = Vec::with_capacity(writer.fields.len());
        let mut taken = vec![false; reader.fields.len()];
        for field in &writer.fields {
            match target_of(&field.name) {
                Some(position) if !taken[position] => {
                    taken[position] = true;
                    let plan = self
                        .compile(&field.schema, &reader.fields[position].schema)
                        .map_err(|e| in_record(format!("field '{}': {e}", field.name)))?;
                    steps.push(Step::Take(plan));
                    positions.push(Some(position));
                }
                _ => {
                    steps.push(Step::Skip(self.skip(&field.schema)?));
                    positions.push(None);
                }
            }
        }
        for (position, field) in reader.fields.iter().enumerate() {
            if taken[position] {
                continue;
            }
            let Some(default) = &field.default else {
                return Err(in_record(format!(
                    "field '{}' is not in the writer's schema and has no default",
                    field.name
                )));
            };
            let bytes = self
                .default_bytes(&field.schema, default)
                .map_err(|e| in_record(format!("default of field '{}': {e}", field.name)))?;
            // Streamed output needs each default right before the next reader field after it.
            let at = positions
                .iter()
                .position(|p| p.is_some_and(|p| p > position))
                .unwrap_or(positions.len());
            steps.insert(at, Step::Default(bytes));
            positions.insert(at, Some(position));
        }
        let in_order = positions
            .iter()
            .flatten()
            .zip(positions.iter().flatten().skip(1))
            .all(|(a, b)| a < b);
        Ok(RecordPlan {
            name: reader.name.to_string(),
            steps,
            targets: positions.clone(),
            reorder: (!in_order).then_some(positions),
        })
    }

    /// Whether the reader encodes every value of `writer` exactly as the writer did: the same
    /// types, names, field names, symbols and branches, in the same order (`pairs`: the records
    /// being compared, taken as identical while they are).
    fn identical(
        &self,
        writer: &'s Schema,
        reader: &'s Schema,
        pairs: &mut Vec<(&'s Name, &'s Name)>,
    ) -> bool {
        let (Ok(w), Ok(r)) = (
            physical(writer, self.writer_names),
            physical(reader, self.reader_names),
        ) else {
            return false;
        };
        match (w, r) {
            (Physical::Null, Physical::Null)
            | (Physical::Boolean, Physical::Boolean)
            | (Physical::Int, Physical::Int)
            | (Physical::Long, Physical::Long)
            | (Physical::Float, Physical::Float)
            | (Physical::Double, Physical::Double)
            | (Physical::Bytes, Physical::Bytes)
            | (Physical::String, Physical::String) => true,
            (Physical::Fixed(wn, ws), Physical::Fixed(rn, rs)) => {
                ws == rs && wn.name() == rn.name()
            }
            (Physical::Enum(we), Physical::Enum(re)) => {
                we.name.name() == re.name.name() && we.symbols == re.symbols
            }
            (Physical::Array(wi), Physical::Array(ri)) | (Physical::Map(wi), Physical::Map(ri)) => {
                self.identical(wi, ri, pairs)
            }
            (Physical::Union(wb), Physical::Union(rb)) => {
                wb.len() == rb.len() && wb.iter().zip(rb).all(|(w, r)| self.identical(w, r, pairs))
            }
            (Physical::Record(wr), Physical::Record(rr)) => {
                if wr.name.name() != rr.name.name() || wr.fields.len() != rr.fields.len() {
                    return false;
                }
                if pairs.contains(&(&wr.name, &rr.name)) {
                    return true;
                }
                pairs.push((&wr.name, &rr.name));
                let same = wr.fields.iter().zip(&rr.fields).all(|(wf, rf)| {
                    wf.name == rf.name && self.identical(&wf.schema, &rf.schema, pairs)
                });
                pairs.pop();
                same
            }
            _ => false,
        }
    }

    /// A plan that reads (and drops) a value of the writer's `schema`.
    fn skip(&mut self, schema: &'s Schema) -> Result<usize, Failure> {
        let reader_names = std::mem::replace(&mut self.reader_names, self.writer_names);
        let skipping = std::mem::replace(&mut self.skipping, true);
        let plan = self.compile(schema, schema);
        self.reader_names = reader_names;
        self.skipping = skipping;
        plan
    }

    /// The reader's encoding of a field's JSON default, as apache-avro resolves it (a union's
    /// default is a value of its first branch).
    fn default_bytes(
        &self,
        schema: &'s Schema,
        default: &serde_json::Value,
    ) -> Result<Vec<u8>, Failure> {
        let value = Value::try_from(default.clone()).map_err(|e| e.to_string())?;
        let resolved_union = match physical(schema, self.reader_names)? {
            Physical::Union(branches) => {
                let first = branches.first().ok_or("empty union")?;
                let inner = value
                    .resolve_with_names(first, self.reader_names)
                    .map_err(|e| e.to_string())?;
                Value::Union(0, Box::new(inner))
            }
            _ => value
                .resolve_with_names(schema, self.reader_names)
                .map_err(|e| e.to_string())?,
        };
        GenericDatumWriter::builder(schema)
            .schemata(vec![self.reader_root])
            .and_then(|builder| builder.build())
            .and_then(|writer| writer.write_value_to_vec(resolved_union))
            .map_err(|e| e.to_string())
    }
}

fn same_kind(w: &Physical<'_>, r: &Physical<'_>) -> bool {
    match (w, r) {
        (Physical::Fixed(wn, _), Physical::Fixed(rn, _)) => wn.name() == rn.name(),
        (Physical::Enum(we), Physical::Enum(re)) => we.name.name() == re.name.name(),
        (Physical::Record(wr), Physical::Record(rr)) => wr.name.name() == rr.name.name(),
        _ => std::mem::discriminant(w) == std::mem::discriminant(r),
    }
}

fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Ref { name } => name.to_string(),
        other => other.canonical_form(),
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::reader::datum::GenericDatumReader;
    use serde_json::json;

    use super::*;

    fn schema(json: serde_json::Value) -> Schema {
        Schema::parse(&json).unwrap()
    }

    fn encode(schema: &Schema, value: Value) -> Vec<u8> {
        GenericDatumWriter::builder(schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap()
    }

    /// The plan's output must be the bytes of apache-avro's resolved value, written with the
    /// reader schema.
    fn check(writer: serde_json::Value, reader: serde_json::Value, values: &[serde_json::Value]) {
        let (writer, reader) = (schema(writer), schema(reader));
        let plan = Plan::compile(&writer, &reader).unwrap();
        for value in values {
            let value = Value::try_from(value.clone())
                .unwrap()
                .resolve(&writer)
                .unwrap_or_else(|e| panic!("{value} does not fit the writer: {e}"));
            let body = encode(&writer, value);
            let resolved = GenericDatumReader::builder(&writer)
                .reader_schema(&reader)
                .build()
                .unwrap()
                .read_value(&mut &body[..])
                .unwrap();
            let expected = encode(&reader, resolved);
            let actual = plan.run(&body, Vec::new(), usize::MAX).unwrap();
            assert_eq!(actual, expected, "writer {writer:?}");
        }
    }

    fn record(name: &str, fields: serde_json::Value) -> serde_json::Value {
        json!({"type": "record", "name": name, "namespace": "t", "fields": fields})
    }

    #[test]
    fn added_removed_and_reordered_fields() {
        let writer = record(
            "R",
            json!([{"name": "a", "type": "int"}, {"name": "gone", "type": "string"},
                   {"name": "b", "type": "string"}]),
        );
        // b before a, a new field with a default between them and one at the end.
        let reader = record(
            "R",
            json!([{"name": "b", "type": "string"},
                   {"name": "mid", "type": "long", "default": 7},
                   {"name": "a", "type": "long"},
                   {"name": "opt", "type": ["null", "string"], "default": null},
                   {"name": "tags", "type": {"type": "array", "items": "string"}, "default": ["x"]}]),
        );
        check(
            writer,
            reader,
            &[
                json!({"a": 1, "gone": "zzz", "b": "hello"}),
                json!({"a": -300, "gone": "", "b": ""}),
            ],
        );
    }

    #[test]
    fn defaults_streamed_in_order() {
        let writer = record(
            "R",
            json!([{"name": "a", "type": "int"}, {"name": "c", "type": "int"}]),
        );
        let reader = record(
            "R",
            json!([{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": "dflt"},
                   {"name": "c", "type": "int"}, {"name": "d", "type": "double", "default": 1.5}]),
        );
        check(writer, reader, &[json!({"a": 1, "c": 2})]);
    }

    #[test]
    fn promotions() {
        let writer = record(
            "P",
            json!([{"name": "i2l", "type": "int"}, {"name": "i2f", "type": "int"},
                   {"name": "i2d", "type": "int"}, {"name": "l2f", "type": "long"},
                   {"name": "l2d", "type": "long"}, {"name": "f2d", "type": "float"},
                   {"name": "s2b", "type": "string"}, {"name": "b2s", "type": "bytes"}]),
        );
        let reader = record(
            "P",
            json!([{"name": "i2l", "type": "long"}, {"name": "i2f", "type": "float"},
                   {"name": "i2d", "type": "double"}, {"name": "l2f", "type": "float"},
                   {"name": "l2d", "type": "double"}, {"name": "f2d", "type": "double"},
                   {"name": "s2b", "type": "bytes"}, {"name": "b2s", "type": "string"}]),
        );
        check(
            writer,
            reader,
            &[
                json!({"i2l": -5, "i2f": 3, "i2d": 123456, "l2f": 1_i64 << 40, "l2d": -7,
                     "f2d": 0.25, "s2b": "text", "b2s": [104, 105]}),
            ],
        );
    }

    #[test]
    fn enums_renumbered_with_reader_default() {
        let writer = json!({"type": "enum", "name": "E", "symbols": ["A", "B", "C"]});
        let reader =
            json!({"type": "enum", "name": "E", "symbols": ["Z", "C", "A"], "default": "Z"});
        check(writer, reader, &[json!("A"), json!("B"), json!("C")]);
    }

    #[test]
    fn enum_symbol_without_default_fails_only_when_read() {
        let writer = schema(json!({"type": "enum", "name": "E", "symbols": ["A", "B"]}));
        let reader = schema(json!({"type": "enum", "name": "E", "symbols": ["A"]}));
        let plan = Plan::compile(&writer, &reader).unwrap();
        assert_eq!(plan.run(&[0], Vec::new(), 100).unwrap(), [0]);
        let error = plan.run(&[2], Vec::new(), 100).unwrap_err();
        assert!(error.contains("'B'"), "{error}");
    }

    #[test]
    fn unions_both_ways() {
        check(
            json!(["null", "string"]),
            json!(["string", "null"]),
            &[json!(null), json!("x")],
        );
        check(json!("string"), json!(["null", "string"]), &[json!("x")]);
        check(
            json!(["null", "int"]),
            json!(["null", "long"]),
            &[json!(null), json!(4)],
        );
        check(json!(["null", "int"]), json!("long"), &[json!(9)]);
        check(
            json!(["int", "string"]),
            json!(["null", "string", "double"]),
            &[json!(3), json!("s")],
        );
    }

    #[test]
    fn nested_records_arrays_and_maps() {
        let line_w = record(
            "Line",
            json!([{"name": "sku", "type": "string"}, {"name": "n", "type": "int"}]),
        );
        let line_r = record(
            "Line",
            json!([{"name": "n", "type": "long"}, {"name": "sku", "type": "string"},
                   {"name": "note", "type": ["null", "string"], "default": null}]),
        );
        let writer = record(
            "Order",
            json!([{"name": "lines", "type": {"type": "array", "items": line_w}},
                   {"name": "by_sku", "type": {"type": "map", "values": "t.Line"}},
                   {"name": "first", "type": ["null", "t.Line"]}]),
        );
        let reader = record(
            "Order",
            json!([{"name": "lines", "type": {"type": "array", "items": line_r}},
                   {"name": "by_sku", "type": {"type": "map", "values": "t.Line"}},
                   {"name": "first", "type": ["null", "t.Line"]}]),
        );
        let line = |sku: &str, n: i32| json!({"sku": sku, "n": n});
        check(
            writer,
            reader,
            &[
                json!({"lines": [line("a", 1), line("b", 2)], "by_sku": {"a": line("a", 1)}, "first": line("a", 1)}),
                json!({"lines": [], "by_sku": {}, "first": null}),
            ],
        );
    }

    /// apache-avro ignores aliases when resolving, so the bytes are spelled out here.
    #[test]
    fn reader_aliases_rename_fields_and_records() {
        let writer = schema(record(
            "Old",
            json!([{"name": "a", "type": "int"}, {"name": "s", "type": "string"}]),
        ));
        let reader = schema(
            json!({"type": "record", "name": "New", "namespace": "t", "aliases": ["Old"],
            "fields": [{"name": "s", "type": "string"}, {"name": "b", "aliases": ["a"], "type": "long"}]}),
        );
        let plan = Plan::compile(&writer, &reader).unwrap();
        // a = 5 (zig-zag 10), s = "hi"; the reader's order is s, b.
        assert_eq!(
            plan.run(&[10, 4, b'h', b'i'], Vec::new(), 100).unwrap(),
            [4, b'h', b'i', 10]
        );
    }

    #[test]
    fn recursive_types() {
        let writer = record(
            "Node",
            json!([{"name": "v", "type": "int"}, {"name": "next", "type": ["null", "t.Node"]}]),
        );
        let reader = record(
            "Node",
            json!([{"name": "v", "type": "long"}, {"name": "next", "type": ["null", "t.Node"]},
                   {"name": "w", "type": "int", "default": 0}]),
        );
        check(
            writer,
            reader,
            &[json!({"v": 1, "next": {"v": 2, "next": {"v": 3, "next": null}}})],
        );
    }

    #[test]
    fn incompatible_schemas_do_not_compile() {
        let writer = schema(record("R", json!([{"name": "a", "type": "int"}])));
        let reader = schema(record("R", json!([{"name": "b", "type": "int"}])));
        let error = Plan::compile(&writer, &reader).unwrap_err();
        assert!(
            error.contains("'b'") && error.contains("no default"),
            "{error}"
        );
        let error = Plan::compile(&Schema::String, &Schema::Int).unwrap_err();
        assert!(error.contains("cannot be read"), "{error}");
    }

    #[test]
    fn hostile_bodies_are_errors() {
        let list = schema(json!({"type": "array", "items": "long"}));
        let plan = Plan::compile(&list, &list).unwrap();
        // A block claiming 2^40 items, then nothing.
        let mut out = Out {
            buf: Vec::new(),
            limit: 100,
        };
        put_long(&mut out, 1 << 40).unwrap();
        let body = out.buf;
        assert!(
            plan.run(&body, Vec::new(), 1 << 20)
                .unwrap_err()
                .contains("end of data")
        );
        // Unterminated varint, negative length, trailing bytes.
        assert!(
            plan.run(&[0xff; 11], Vec::new(), 100)
                .unwrap_err()
                .contains("varint")
        );
        let bytes = Plan::compile(&Schema::Bytes, &Schema::Bytes).unwrap();
        assert!(
            bytes
                .run(&[1], Vec::new(), 100)
                .unwrap_err()
                .contains("negative")
        );
        // The output bound.
        let error = bytes
            .run(
                &[
                    20, b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x', b'x',
                ],
                Vec::new(),
                5,
            )
            .unwrap_err();
        assert!(error.contains("exceed 5 bytes"), "{error}");
    }

    #[test]
    fn identical_values_are_checked_then_copied_whole() {
        let line = record(
            "L",
            json!([{"name": "s", "type": "string"}, {"name": "n", "type": "int"}]),
        );
        let lines = schema(json!({"type": "array", "items": line}));
        let plan = Plan::compile_checked(&lines, &lines).unwrap();
        assert!(matches!(plan.ops[plan.root], Op::Copy(_)), "{plan:?}");
        // One item: s = "h", n = 2.
        let body = [2, 2, b'h', 4, 0];
        assert_eq!(plan.run(&body, Vec::new(), 100).unwrap(), body);
        let error = plan.run(&[2, 2, 0xff, 4, 0], Vec::new(), 100).unwrap_err();
        assert!(error.contains("UTF-8"), "{error}");
        assert!(plan.run(&body[..3], Vec::new(), 100).is_err());
        // Inside a record that differs, the identical field is copied.
        let writer = schema(record("R", json!([{"name": "lines", "type": lines}])));
        let reader = schema(record(
            "R",
            json!([{"name": "lines", "type": lines}, {"name": "x", "type": "int", "default": 1}]),
        ));
        let plan = Plan::compile(&writer, &reader).unwrap();
        assert!(!matches!(plan.ops[plan.root], Op::Copy(_)));
        assert_eq!(
            plan.run(&body, Vec::new(), 100).unwrap(),
            [2, 2, b'h', 4, 0, 2]
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let node = schema(record(
            "N",
            json!([{"name": "next", "type": ["null", "t.N"]}]),
        ));
        let plan = Plan::compile(&node, &node).unwrap();
        // Each level is union branch 1 (varint 2); no end: the depth bound trips first.
        let body = vec![2u8; 10_000];
        assert!(
            plan.run(&body, Vec::new(), usize::MAX)
                .unwrap_err()
                .contains("deeper")
        );
    }
}
