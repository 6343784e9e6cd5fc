//! Replays the fuzzers' corpus (`fuzz/corpus/decode`, `fuzz/corpus/resolve`: what `cargo fuzz`
//! found, and any input that once crashed) on the stable toolchain: every input decodes or
//! fails with a typed error, as the fuzz targets feed it (first byte: the schema pair of
//! `fuzz/schemas.json`; the rest: the body).

use std::path::Path;

use avro_events::Error;
use avro_events::dynamic::check_body;

#[path = "../../../fuzz/schemas.rs"]
mod schemas;

#[test]
fn every_corpus_input_decodes_or_fails_typed() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let pairs = schemas::pairs();
    for target in ["decode", "resolve"] {
        let (mut decoded, mut refused) = (0, 0);
        for entry in std::fs::read_dir(corpus.join(target)).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let Some((&pick, body)) = data.split_first() else {
                continue;
            };
            let (writer, reader) = &pairs[usize::from(pick) % pairs.len()];
            let reader = if target == "decode" { writer } else { reader };
            match check_body(writer, reader, body, schemas::LIMIT) {
                Ok(()) => decoded += 1,
                Err(Error::Decode { .. }) => refused += 1,
                Err(other) => panic!("{}: untyped failure {other:?}", path.display()),
            }
        }
        println!("{target}: {decoded} corpus inputs decoded, {refused} refused with Error::Decode");
        assert!(
            decoded > 0 && refused > 0,
            "{target}: the corpus covers both outcomes"
        );
    }
}
