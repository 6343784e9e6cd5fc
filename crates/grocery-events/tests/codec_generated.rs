//! Hostile input that reaches the decoder and the resolution plans: generated writer schemas
//! (records, unions, enums, arrays, maps, fixed, logical types) registered with the local
//! Schema Registry, reader schemas evolved from them (promotions, added and dropped fields,
//! reordered fields, added enum symbols, values into unions), and bodies generated from the
//! writer schema, framed with the registered id, then decoded with the reader
//! ([`Codec::check_decode`]):
//! - valid bodies decode (the evolution is compatible);
//! - truncated bodies (a strict prefix; Avro bodies are self-delimiting) fail with
//!   [`Error::Decode`];
//! - mutated bodies (bytes flipped, huge length or count prefixes spliced in, bytes cut out)
//!   decode or fail with [`Error::Decode`], never panic, and the heap grows by less than
//!   [`PEAK_BOUND`] while they are decoded (a counting allocator; its own test binary).
//!
//! The counts of inputs tried per kind are printed (`--nocapture`).

mod counting;

use std::{
    fmt::Write as _,
    sync::{
        LazyLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use avro_events::{
    Codec, CodecOptions, dynamic::DynamicSchema, registry::RegistryClient, registry::RegistryConfig,
};
use counting::peak_growth;
use grocery_events::Error;
use local_stack::registry::{RegistryHandle, SchemaRegistry};
use proptest::{prelude::*, test_runner::TestCaseError};
use tokio::runtime::Runtime;

/// The codec's `avro.max.allocation.bytes` in this test.
const LIMIT: usize = 1024 * 1024;
/// The most the heap may grow while one hostile body is decoded.
const PEAK_BOUND: usize = 4 * LIMIT;

/// An Avro type, generated; names are given when the schema is written out.
#[derive(Debug, Clone)]
enum Ty {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Date,
    TimestampMillis,
    Uuid,
    Decimal,
    Fixed(usize),
    Enum(Vec<String>),
    Array(Box<Ty>),
    Map(Box<Ty>),
    /// Distinct branches, none a union.
    Union(Vec<Ty>),
    Record(Vec<(String, Ty)>),
}

fn primitive() -> impl Strategy<Value = Ty> {
    prop_oneof![
        Just(Ty::Null),
        Just(Ty::Boolean),
        Just(Ty::Int),
        Just(Ty::Long),
        Just(Ty::Float),
        Just(Ty::Double),
        Just(Ty::Bytes),
        Just(Ty::String),
        Just(Ty::Date),
        Just(Ty::TimestampMillis),
        Just(Ty::Uuid),
        Just(Ty::Decimal),
        (1usize..20).prop_map(Ty::Fixed),
        (1usize..6).prop_map(|n| Ty::Enum((0..n).map(|i| format!("S{i}")).collect())),
    ]
}

/// Union branches: distinct primitive kinds (one of each Avro type), at most one complex.
fn union_of(inner: BoxedStrategy<Ty>) -> impl Strategy<Value = Ty> {
    (
        proptest::sample::subsequence(
            vec![Ty::Null, Ty::Boolean, Ty::Int, Ty::Double, Ty::String],
            1..4,
        ),
        proptest::option::of(inner.prop_filter("no unions in unions", |t| {
            !matches!(
                t,
                Ty::Union(_)
                    | Ty::Null
                    | Ty::Boolean
                    | Ty::Int
                    | Ty::Double
                    | Ty::String
                    | Ty::Date
                    | Ty::Uuid
            )
        })),
    )
        .prop_map(|(mut branches, complex)| {
            branches.extend(complex);
            Ty::Union(branches)
        })
}

fn ty() -> impl Strategy<Value = Ty> {
    primitive().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Ty::Array(Box::new(t))),
            inner.clone().prop_map(|t| Ty::Map(Box::new(t))),
            union_of(inner.clone().boxed()),
            prop::collection::vec(inner, 0..5).prop_map(|types| {
                Ty::Record(
                    types
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| (format!("f{i}"), t))
                        .collect(),
                )
            }),
        ]
    })
}

/// How the reader schema differs from the writer's, decided per node from `choices`.
struct Evolve<'a> {
    choices: &'a [u8],
    next: usize,
}

impl Evolve<'_> {
    fn pick(&mut self, n: u8) -> u8 {
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        c % n
    }

    /// A reader type that can read what `writer` writes.
    fn reader(&mut self, writer: &Ty, in_union: bool) -> Ty {
        let evolved = match writer {
            // Promotions (not inside unions, where they could make two branches alike).
            Ty::Int if !in_union => {
                [Ty::Int, Ty::Long, Ty::Float, Ty::Double][self.pick(4) as usize].clone()
            }
            Ty::Long if !in_union => {
                [Ty::Long, Ty::Float, Ty::Double][self.pick(3) as usize].clone()
            }
            Ty::Float if !in_union => [Ty::Float, Ty::Double][self.pick(2) as usize].clone(),
            Ty::String if !in_union && self.pick(3) == 0 => Ty::Bytes,
            Ty::Bytes if !in_union && self.pick(3) == 0 => Ty::String,
            Ty::Enum(symbols) => {
                let mut symbols = symbols.clone();
                for extra in 0..self.pick(3) {
                    symbols.push(format!("X{extra}"));
                }
                if self.pick(2) == 0 {
                    symbols.reverse();
                }
                Ty::Enum(symbols)
            }
            Ty::Array(items) => Ty::Array(Box::new(self.reader(items, false))),
            Ty::Map(values) => Ty::Map(Box::new(self.reader(values, false))),
            Ty::Union(branches) => {
                let mut branches: Vec<Ty> = branches.iter().map(|b| self.reader(b, true)).collect();
                if self.pick(2) == 0
                    && !branches
                        .iter()
                        .any(|b| matches!(b, Ty::Long | Ty::TimestampMillis))
                {
                    branches.push(Ty::Long);
                }
                if self.pick(2) == 0 {
                    branches.reverse();
                }
                Ty::Union(branches)
            }
            Ty::Record(fields) => {
                let mut out = Vec::new();
                for (name, field) in fields {
                    // Drop some fields (the reader skips them).
                    if self.pick(4) != 0 {
                        out.push((name.clone(), self.reader(field, false)));
                    }
                }
                if self.pick(2) == 0 {
                    out.reverse();
                }
                // Fields the writer lacks, with defaults (typed in `schema_json`).
                for added in 0..self.pick(3) {
                    out.push((format!("added{added}"), Ty::Long));
                }
                Ty::Record(out)
            }
            other => other.clone(),
        };
        // A value into a union.
        if !in_union && !matches!(evolved, Ty::Union(_) | Ty::Null) && self.pick(5) == 0 {
            return Ty::Union(vec![Ty::Null, evolved]);
        }
        evolved
    }
}

/// The schema JSON of a type that has no name.
fn unnamed_json(ty: &Ty) -> &'static str {
    match ty {
        Ty::Null => r#""null""#,
        Ty::Boolean => r#""boolean""#,
        Ty::Int => r#""int""#,
        Ty::Long => r#""long""#,
        Ty::Float => r#""float""#,
        Ty::Double => r#""double""#,
        Ty::Bytes => r#""bytes""#,
        Ty::String => r#""string""#,
        Ty::Date => r#"{"type":"int","logicalType":"date"}"#,
        Ty::TimestampMillis => r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        Ty::Uuid => r#"{"type":"string","logicalType":"uuid"}"#,
        Ty::Decimal => r#"{"type":"bytes","logicalType":"decimal","precision":30,"scale":2}"#,
        Ty::Fixed(_) | Ty::Enum(_) | Ty::Array(_) | Ty::Map(_) | Ty::Union(_) | Ty::Record(_) => {
            unreachable!("named or composite: written by named_json")
        }
    }
}

/// The schema JSON of `ty`.
fn schema_text(ty: &Ty) -> String {
    let mut out = String::new();
    named_json(ty, "T", &mut out);
    out
}

/// Writes `ty` as schema JSON; each named type is named after its path from the root, which a
/// reader evolved from it keeps (fields by name; a union holds at most one named type, which
/// takes the union's path, so a value moved into a union keeps its name).
fn named_json(ty: &Ty, path: &str, out: &mut String) {
    match ty {
        Ty::Fixed(size) => {
            let _ = write!(out, r#"{{"type":"fixed","name":"{path}","size":{size}}}"#);
        }
        Ty::Enum(symbols) => {
            let _ = write!(
                out,
                r#"{{"type":"enum","name":"{path}","symbols":{},"default":"{}"}}"#,
                serde_json::to_string(symbols).unwrap(),
                symbols[0]
            );
        }
        Ty::Array(items) => {
            out.push_str(r#"{"type":"array","items":"#);
            named_json(items, &format!("{path}_a"), out);
            out.push('}');
        }
        Ty::Map(values) => {
            out.push_str(r#"{"type":"map","values":"#);
            named_json(values, &format!("{path}_m"), out);
            out.push('}');
        }
        Ty::Union(branches) => {
            out.push('[');
            for (i, branch) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                named_json(branch, path, out);
            }
            out.push(']');
        }
        Ty::Record(fields) => {
            let _ = write!(out, r#"{{"type":"record","name":"{path}","fields":["#);
            for (i, (field, ty)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, r#"{{"name":"{field}","type":"#);
                named_json(ty, &format!("{path}_{field}"), out);
                if field.starts_with("added") {
                    out.push_str(r#","default":7"#);
                }
                out.push('}');
            }
            out.push_str("]}");
        }
        other => out.push_str(unnamed_json(other)),
    }
}

fn zigzag(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A valid body for `ty`, driven by `seed` bytes.
fn body(ty: &Ty, seed: &mut dyn Iterator<Item = u8>, depth: usize, out: &mut Vec<u8>) {
    fn take(seed: &mut dyn Iterator<Item = u8>) -> u8 {
        seed.next().unwrap_or(0)
    }
    let mut next = || take(seed);
    match ty {
        Ty::Null => {}
        Ty::Boolean => out.push(next() & 1),
        Ty::Int | Ty::Date => zigzag(
            i64::from(i32::from_le_bytes([next(), next(), next(), next()])),
            out,
        ),
        Ty::Long | Ty::TimestampMillis => {
            zigzag(i64::from_le_bytes(std::array::from_fn(|_| next())), out);
        }
        Ty::Float => out.extend((0..4).map(|_| next())),
        Ty::Double => out.extend((0..8).map(|_| next())),
        // ASCII: a reader may read `bytes` as `string` (valid UTF-8 only).
        Ty::Bytes | Ty::Decimal => {
            let n = next() % 9;
            zigzag(i64::from(n), out);
            out.extend((0..n).map(|_| next() & 0x7f));
        }
        Ty::String => {
            let n = next() % 12;
            zigzag(i64::from(n), out);
            out.extend((0..n).map(|_| b'a' + next() % 26));
        }
        Ty::Uuid => {
            let text = uuid::Uuid::from_bytes(std::array::from_fn(|_| next())).to_string();
            zigzag(text.len() as i64, out);
            out.extend_from_slice(text.as_bytes());
        }
        Ty::Fixed(size) => out.extend((0..*size).map(|_| next())),
        Ty::Enum(symbols) => zigzag(i64::from(next()) % symbols.len() as i64, out),
        Ty::Array(items) | Ty::Map(items) => {
            let count = if depth > 3 { 0 } else { take(seed) % 4 };
            if count > 0 {
                zigzag(i64::from(count), out);
                for _ in 0..count {
                    if matches!(ty, Ty::Map(_)) {
                        let key = format!("k{}", take(seed));
                        zigzag(key.len() as i64, out);
                        out.extend_from_slice(key.as_bytes());
                    }
                    body(items, seed, depth + 1, out);
                }
            }
            out.push(0);
        }
        Ty::Union(branches) => {
            let index = usize::from(take(seed)) % branches.len();
            zigzag(index as i64, out);
            body(&branches[index], seed, depth + 1, out);
        }
        Ty::Record(fields) => {
            for (_, field) in fields {
                body(field, seed, depth + 1, out);
            }
        }
    }
}

/// Whether the codec refuses `ty` as a writer: an array whose items encode to zero bytes.
fn zero_size_array(ty: &Ty) -> bool {
    fn zero(ty: &Ty) -> bool {
        match ty {
            Ty::Null => true,
            Ty::Record(fields) => fields.iter().all(|(_, t)| zero(t)),
            _ => false,
        }
    }
    match ty {
        Ty::Array(items) => zero(items) || zero_size_array(items),
        Ty::Map(values) => zero_size_array(values),
        Ty::Union(branches) => branches.iter().any(zero_size_array),
        Ty::Record(fields) => fields.iter().any(|(_, t)| zero_size_array(t)),
        _ => false,
    }
}

/// A hostile change to a valid body.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR a byte.
    Flip(usize, u8),
    /// Splice in the varint of a huge length or count (or a negative one).
    HugePrefix(usize, i64),
    /// Cut bytes out of the middle.
    Cut(usize, usize),
    /// Overwrite with random bytes.
    Overwrite(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, x)| Mutation::Flip(at, x)),
        (
            any::<usize>(),
            prop_oneof![
                Just(i64::MAX),
                Just(i64::MIN),
                Just(1 << 31),
                Just(1 << 40),
                Just(-(1 << 40)),
                Just(100_000_000),
                Just(-1),
            ]
        )
            .prop_map(|(at, n)| Mutation::HugePrefix(at, n)),
        (any::<usize>(), 1usize..8).prop_map(|(at, n)| Mutation::Cut(at, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Overwrite(at, bytes)),
    ]
}

fn mutate(body: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut out = body.to_vec();
    let at = |i: usize| {
        if out.is_empty() {
            0
        } else {
            i % (out.len() + 1)
        }
    };
    match mutation {
        Mutation::Flip(i, x) => {
            if !out.is_empty() {
                let i = i % out.len();
                out[i] ^= x;
            }
        }
        Mutation::HugePrefix(i, n) => {
            let i = at(*i);
            let mut varint = Vec::new();
            zigzag(*n, &mut varint);
            out.splice(i..i, varint);
        }
        Mutation::Cut(i, n) => {
            let i = at(*i);
            let end = (i + n).min(out.len());
            out.drain(i..end);
        }
        Mutation::Overwrite(i, bytes) => {
            let i = at(*i);
            for (j, b) in bytes.iter().enumerate() {
                match out.get_mut(i + j) {
                    Some(slot) => *slot = *b,
                    None => out.push(*b),
                }
            }
        }
    }
    out
}

/// One runtime, registry and codec shared by every case.
struct Fixture {
    runtime: Runtime,
    codec: Codec,
    admin: RegistryClient,
    _registry: RegistryHandle,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (registry, codec, admin) = runtime.block_on(async {
        let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
            .await
            .unwrap();
        let config = RegistryConfig::new(registry.url());
        let codec = Codec::new(
            &config,
            CodecOptions::default().with_max_allocation_bytes(LIMIT),
        )
        .unwrap();
        let admin = RegistryClient::new(&config).unwrap();
        (registry, codec, admin)
    });
    Fixture {
        runtime,
        codec,
        admin,
        _registry: registry,
    }
});

static SUBJECTS: AtomicU32 = AtomicU32::new(0);

/// Inputs tried, per kind.
static TRIED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const KINDS: [&str; 4] = ["valid", "truncated", "mutated", "plans (writer ≠ reader)"];

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![0];
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(body);
    payload
}

fn check_case(
    writer: &Ty,
    choices: &[u8],
    seed: &[u8],
    cut: usize,
    mutations: &[Mutation],
) -> Result<(), TestCaseError> {
    let reader = Evolve { choices, next: 0 }.reader(writer, false);
    let (writer_text, reader_text) = (schema_text(writer), schema_text(&reader));
    let reader_schema = DynamicSchema::parse(&reader_text)
        .map_err(|e| TestCaseError::fail(format!("reader {reader_text}: {e}")))?;
    let fixture = &*FIXTURE;
    let subject = format!(
        "generated-{}-value",
        SUBJECTS.fetch_add(1, Ordering::Relaxed)
    );
    let id = fixture
        .runtime
        .block_on(fixture.admin.register(&subject, &writer_text))
        .map_err(|e| TestCaseError::fail(format!("register {writer_text}: {e}")))?;
    let mut valid = Vec::new();
    body(writer, &mut seed.iter().copied(), 0, &mut valid);
    let decode = |body: &[u8]| {
        fixture.runtime.block_on(
            fixture
                .codec
                .check_decode(&framed(id, body), &reader_schema),
        )
    };
    let context = || format!("writer {writer_text}\nreader {reader_text}");

    // Valid: decodes (the writer schema is fetched and cached here).
    TRIED[0].fetch_add(1, Ordering::Relaxed);
    let plans = usize::from(
        DynamicSchema::parse(&writer_text).unwrap().canonical_form()
            != reader_schema.canonical_form(),
    );
    TRIED[3].fetch_add(plans as u64, Ordering::Relaxed);
    match decode(&valid) {
        Ok(()) => {}
        // Refused when fetched: a schema the codec cannot use (see `Error::UnusableSchema`).
        Err(Error::InvalidSchema { .. } | Error::UnusableSchema { .. })
            if zero_size_array(writer) =>
        {
            return Ok(());
        }
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "valid body {valid:?} refused: {e}\n{}",
                context()
            )));
        }
    }
    // Truncated: a strict prefix of a self-delimiting body never decodes.
    if !valid.is_empty() {
        TRIED[1].fetch_add(1, Ordering::Relaxed);
        let prefix = &valid[..cut % valid.len()];
        match decode(prefix) {
            Err(Error::Decode { .. }) => {}
            other => {
                return Err(TestCaseError::fail(format!(
                    "prefix {prefix:?} of {valid:?}: {other:?}\n{}",
                    context()
                )));
            }
        }
    }
    // Mutated: decodes or a typed decode error, within the allocation bound.
    for mutation in mutations {
        TRIED[2].fetch_add(1, Ordering::Relaxed);
        let hostile = mutate(&valid, mutation);
        let (result, peak) = peak_growth(|| decode(&hostile));
        if let Err(e) = &result
            && !matches!(e, Error::Decode { .. })
        {
            return Err(TestCaseError::fail(format!(
                "{mutation:?} → {e:?}\n{}",
                context()
            )));
        }
        prop_assert!(
            peak < PEAK_BOUND,
            "{mutation:?}: heap grew {peak} bytes\n{}",
            context()
        );
    }
    Ok(())
}

#[test]
fn generated_schemas_and_hostile_bodies_decode_or_fail_typed() {
    let strategy = (
        ty(),
        prop::collection::vec(any::<u8>(), 64),
        prop::collection::vec(any::<u8>(), 256),
        any::<usize>(),
        prop::collection::vec(mutation(), 1..8),
    );
    // 256 cases unless PROPTEST_CASES says otherwise.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&strategy, |(writer, choices, seed, cut, mutations)| {
        check_case(&writer, &choices, &seed, cut, &mutations)
    });
    let counts: Vec<String> = KINDS
        .iter()
        .zip(&TRIED)
        .map(|(kind, n)| format!("{kind}: {}", n.load(Ordering::Relaxed)))
        .collect();
    println!("hostile inputs tried: {}", counts.join(", "));
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// The same hostile changes to valid `Order` records (the generated type, its own schema):
/// the decoder of a real type (strings, `Vec`s of lines, a UUID, an optional record) answers
/// with an `Order` or [`Error::Decode`], within the allocation bound.
#[test]
fn hostile_order_bodies_decode_or_fail_typed() {
    use grocery_events::{Order, OrderLine};
    let line =
        ("[a-z]{0,12}", any::<i32>(), any::<i64>()).prop_map(|(sku, quantity, price)| OrderLine {
            name: sku.to_uppercase(),
            sku,
            quantity,
            unit_price_cents: price,
        });
    let strategy = (
        any::<u128>(),
        prop::collection::vec(line, 0..6),
        any::<i64>(),
        prop::collection::vec(mutation(), 1..8),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let fixture = &*FIXTURE;
    let tried = AtomicU64::new(0);
    let outcome = runner.run(&strategy, |(id, items, time, mutations)| {
        let order = Order {
            order_id: uuid::Uuid::from_u128(id),
            customer_id: uuid::Uuid::from_u128(!id),
            items,
            order_total_cents: time / 3,
            currency: "EUR".into(),
            order_time: time,
            substitution: None,
            delivery_window: None,
        };
        let payload = fixture
            .runtime
            .block_on(fixture.codec.encode(&order))
            .unwrap();
        let (header, valid) = payload.split_at(5);
        for mutation in &mutations {
            tried.fetch_add(1, Ordering::Relaxed);
            let mut hostile = header.to_vec();
            hostile.extend(mutate(valid, mutation));
            let (result, peak) = peak_growth(|| {
                fixture
                    .runtime
                    .block_on(fixture.codec.decode::<Order>(&hostile))
            });
            match result {
                Ok(_) | Err(Error::Decode { .. }) => {}
                Err(other) => prop_assert!(false, "{mutation:?} → {other:?}"),
            }
            prop_assert!(peak < PEAK_BOUND, "{mutation:?}: heap grew {peak} bytes");
        }
        Ok(())
    });
    println!(
        "hostile Order bodies tried: {}",
        tried.load(Ordering::Relaxed)
    );
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
