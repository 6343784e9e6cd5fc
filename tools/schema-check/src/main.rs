//! `schema-check`: checks `schemas/*.avsc` against their previous versions, offline (git
//! history) or online (a Schema Registry). See the library's documentation.
//!
//! ```text
//! cargo run -p schema-check -- check [--repo DIR] [--base REV] [--level LEVEL]
//! cargo run -p schema-check -- check --registry-config client.properties
//! ```

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "schema-check",
    about = "Checks schemas/*.avsc against their previous versions"
)]
struct Cli {
    #[command(flatten)]
    args: schema_check::SchemasArgs,
}

fn main() -> anyhow::Result<()> {
    let runtime = schema_check::cli_runtime()?;
    runtime.block_on(schema_check::run(Cli::parse().args))
}
