//! `cargo xtask stack`: the local stack for running the services by hand.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use grocery_stack::IDENTITIES;
use local_stack::{KafkaAuth, Stack, StackOptions};
use tokio::signal::unix::{SignalKind, signal};

use crate::broker::BrokerArg;

/// Arguments of `cargo xtask stack`.
#[derive(clap::Args)]
pub(crate) struct StackArgs {
    /// Where to write the client.properties that points at the stack (removed again when the
    /// stack stops: its addresses are of this run only).
    #[arg(long, default_value = "target/local-stack/client.properties")]
    properties_out: PathBuf,
    /// Keep the registry's schemas in this file across restarts.
    #[arg(long)]
    registry_file: Option<PathBuf>,
    /// The broker: the mock cluster or a real Apache Kafka broker.
    #[arg(long, value_enum, default_value = "mock")]
    broker: BrokerArg,
    /// With `--broker kafka`: how the written properties authenticate (none, oauth, plain).
    #[arg(long, default_value = "none")]
    auth: KafkaAuth,
    /// Number of brokers. With `--broker kafka`, more than 1 starts a KRaft cluster (one
    /// controller, that many brokers, replication factor 3, `min.insync.replicas=2`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=9))]
    brokers: i32,
}

/// `<dir>/<stem>.<identity>.<ext>` beside `path`, for one service identity.
fn identity_path(path: &Path, identity: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "client".into());
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{identity}{ext}"))
}

pub(crate) async fn run(args: StackArgs) -> anyhow::Result<()> {
    let broker = args.broker.kind(args.auth)?;
    // Signals are caught from the start, so a SIGTERM during a slow broker start still
    // stops everything cleanly.
    let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let start = Stack::start_with(StackOptions {
        registry_file: args.registry_file,
        broker,
        brokers: args.brokers,
        ..grocery_stack::options()
    });
    let stack = tokio::select! {
        stack = start => stack.context("starting the local stack")?,
        _ = terminate.recv() => return Ok(()),
        _ = interrupt.recv() => return Ok(()),
    };
    let properties = stack.client_properties();
    if let Some(dir) = args.properties_out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut written = vec![args.properties_out.clone()];
    std::fs::write(&args.properties_out, &properties)
        .with_context(|| format!("writing {}", args.properties_out.display()))?;
    for identity in IDENTITIES {
        if let Some(text) = stack.client_properties_for(identity) {
            let path = identity_path(&args.properties_out, identity);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    // Whoever started the stack may stop reading its output: a closed stdout must not end it
    // (println! would panic on EPIPE).
    let mut banner = format!("{properties}\n");
    for path in &written[1..] {
        banner.push_str(&format!("# per-service identity: {}\n", path.display()));
    }
    let files = written
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    banner.push_str(&format!(
        "# written to {}; run the services with --config {0}\n\
         # Ctrl-C stops the stack and removes {files} (the stack's ports die with it).\n",
        args.properties_out.display()
    ));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);

    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    stack.shutdown().await;
    for path in &written {
        let _ = std::fs::remove_file(path);
    }
    let _ = writeln!(std::io::stderr(), "local stack stopped; removed {files}");
    Ok(())
}
