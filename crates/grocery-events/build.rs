//! Generates the Rust types of `schemas/*.avsc` and their `Event` impls (topics and keys from
//! `schemas/events.toml`) into `OUT_DIR/grocery.rs`.

fn main() {
    avro_events_build::configure()
        .schema_dir("schemas")
        .declarations("schemas/events.toml")
        .file_name("grocery.rs")
        .compile()
        .expect("generating the grocery types from schemas/");
}
