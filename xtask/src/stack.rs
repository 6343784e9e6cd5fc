//! `cargo xtask stack`: the local stack for running the services by hand.

use std::path::PathBuf;

use anyhow::Context as _;
use local_stack::{Stack, StackOptions};
use tokio::signal::unix::{SignalKind, signal};

/// Arguments of `cargo xtask stack`.
#[derive(clap::Args)]
pub(crate) struct StackArgs {
    /// Where to write the client.properties that points at the stack.
    #[arg(long, default_value = "target/local-stack/client.properties")]
    properties_out: PathBuf,
    /// Keep the registry's schemas in this file across restarts.
    #[arg(long)]
    registry_file: Option<PathBuf>,
}

pub(crate) async fn run(args: StackArgs) -> anyhow::Result<()> {
    let stack = Stack::start_with(StackOptions {
        registry_file: args.registry_file,
        ..StackOptions::default()
    })
    .await
    .context("starting the local stack")?;
    let properties = stack.client_properties();
    if let Some(dir) = args.properties_out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.properties_out, &properties)
        .with_context(|| format!("writing {}", args.properties_out.display()))?;
    println!("{properties}");
    println!(
        "# written to {}; run the services with --config {0}",
        args.properties_out.display()
    );
    println!("# Ctrl-C stops the stack.");

    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    stack.shutdown().await;
    let _ = std::fs::remove_file(&args.properties_out);
    eprintln!("local stack stopped");
    Ok(())
}
