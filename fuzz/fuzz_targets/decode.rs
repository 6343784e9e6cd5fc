//! The codec's decoder on hostile bodies: the first byte picks a schema of `schemas.json`, the
//! rest is read with it (the same-schema path of `Codec::decode`). Any outcome but a panic, a
//! crash or an allocation past libFuzzer's `-rss_limit_mb` is fine; errors are typed.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../schemas.rs"]
mod schemas;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let pairs = schemas::pairs();
    let (writer, _) = &pairs[usize::from(pick) % pairs.len()];
    let _ = avro_events::dynamic::check_body(writer, writer, body, schemas::LIMIT);
});
