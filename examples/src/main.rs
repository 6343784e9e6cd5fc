//! `avro-events-example <client.properties> [count]`: produces `count` simulated sensor readings
//! (default 3) to `sensor.readings.v1`, then consumes them back and prints each.

use std::{env, process::ExitCode, time::Duration};

use avro_events::{Client, Config, ConsumerOptions};
use avro_events_example::{Reading, simulated};

/// How long to wait for each reading to come back before giving up.
const WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let (Some(properties), count) = (args.next(), args.next()) else {
        eprintln!("usage: avro-events-example <client.properties> [count]");
        return ExitCode::from(2);
    };
    let count = match count.map(|c| c.parse::<u32>()).transpose() {
        Ok(count) => count.unwrap_or(3),
        Err(e) => {
            eprintln!("count: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&properties, count).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(properties: &str, count: u32) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_file(properties)?.with_env_overrides("EXAMPLE_");
    // Validates the configuration once; one token source per identity for every client.
    let client = Client::from_config(config)?;

    let producer = client.producer().await?;
    for n in 0..count {
        let delivered = producer.send(&simulated(n)).await?;
        println!(
            "sent reading {n} to {}[{}]@{}",
            delivered.topic, delivered.partition, delivered.offset
        );
    }

    let consumer = client
        .consumer::<Reading>(ConsumerOptions::new("avro-events-example"))
        .await?;
    for _ in 0..count {
        let received = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .map_err(|_| format!("no reading arrived within {WAIT:?}"))??;
        let reading = &received.event;
        println!(
            "received {} {:.1} °C {:?} from partition {}",
            reading.sensor_id, reading.celsius, reading.status, received.meta.partition
        );
        consumer.ack(&received.meta)?;
    }
    consumer.close().await?;
    Ok(())
}
