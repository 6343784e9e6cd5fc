//! Generates `Reading` and its `Event` impl from `schemas/`, declared here rather than in a file.

fn main() {
    avro_events_build::configure()
        .schema_dir("schemas")
        .event(
            "io.example.sensors.Reading",
            "sensor.readings.v1",
            "sensor_id",
        )
        .compile()
        .expect("generating the sensor types from schemas/");
}
