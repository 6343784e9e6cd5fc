//! An application crate using avro-events the way another team would: its own Avro schema
//! (`schemas/sensor.readings.v1.avsc`), its own `build.rs` calling `avro-events-build`, and only
//! `avro-events` as a dependency.
//!
//! ```
//! use avro_events::Event;
//! use avro_events_example::{Reading, SensorStatus};
//!
//! let reading = Reading {
//!     sensor_id: "fridge-1".into(),
//!     celsius: 3.5,
//!     humidity: None,
//!     status: SensorStatus::Ok,
//!     taken_at: 1_763_769_600_000,
//! };
//! assert_eq!(Reading::TOPIC, "sensor.readings.v1");
//! assert_eq!(Reading::FULL_NAME, "io.example.sensors.Reading");
//! assert_eq!(reading.key(), "fridge-1");
//! ```

/// The types generated from `schemas/`, with their `Event` impls.
#[allow(missing_docs)]
pub mod sensors {
    avro_events::include_events!();
}

pub use sensors::{Reading, SensorStatus};

/// The `n`th reading of a small simulated fleet of sensors: four sensors, in turn.
pub fn simulated(n: u32) -> Reading {
    Reading {
        sensor_id: format!("sensor-{}", n % 4),
        celsius: 2.0 + f64::from(n) / 10.0,
        humidity: n.is_multiple_of(2).then_some(40.0 + f64::from(n % 10)),
        status: if n % 7 == 6 {
            SensorStatus::Degraded
        } else {
            SensorStatus::Ok
        },
        taken_at: 1_763_769_600_000 + i64::from(n) * 1_000,
    }
}
