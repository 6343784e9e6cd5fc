//! Starting the Order API as a process, and reading topics whole, for the Order API's tests.
#![allow(dead_code, unreachable_pub)]

use std::{path::Path, process::Command, time::Duration};

use grocery_events::{Client, Event, Record};
use test_support::{Output, Process};

pub const BIN: &str = env!("CARGO_BIN_EXE_order-producer");

/// The log line the Order API writes once its history view is rebuilt.
pub const REBUILT: &str = "order history rebuilt";

/// Starts `order-producer serve` on a free port with `config` and `extra` arguments; returns
/// the process and its base URL.
pub fn start_api(name: &str, config: &Path, extra: &[&str]) -> (Process, String) {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(extra);
    let server = Process::start(name, &mut command, Output::default()).unwrap();
    let base = format!(
        "http://{}",
        server.listening_addr(Duration::from_secs(60)).unwrap()
    );
    (server, base)
}

/// Waits until the API says its history view is rebuilt.
pub fn wait_rebuilt(server: &Process, timeout: Duration) {
    server
        .stderr()
        .wait_for(timeout, |line| line.contains(REBUILT))
        .unwrap();
}

/// Every `E` on its topic now, read from the beginning of each partition.
pub async fn read_all<E: Event>(client: &Client) -> Vec<E> {
    let mut replay = client
        .replay::<E>("order-api-test-reader", Duration::from_secs(30))
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(record) = replay.recv_until_caught_up().await.unwrap() {
        if let Record::Event(received) = record {
            events.push(received.event);
        }
    }
    events
}
