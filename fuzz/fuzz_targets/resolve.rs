//! The resolution plans on hostile bodies: the first byte picks a (writer, reader) pair of
//! `schemas.json`, the rest is rewritten from the writer's encoding into the reader's by the
//! pair's plan, then read (the resolving path of `Codec::decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../schemas.rs"]
mod schemas;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let pairs = schemas::pairs();
    let (writer, reader) = &pairs[usize::from(pick) % pairs.len()];
    let _ = avro_events::dynamic::check_body(writer, reader, body, schemas::LIMIT);
});
