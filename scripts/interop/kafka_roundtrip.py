"""Produce to and consume from a topic with Confluent's Python client (librdkafka underneath).

Usage: kafka_roundtrip.py BOOTSTRAP_SERVERS|CLIENT_PROPERTIES_FILE TOPIC COUNT

Run against `cargo xtask stack` from another process: it checks that the local broker is
reachable over TCP by a client no one here wrote. Given a client.properties file instead of a
bootstrap list, its Kafka properties are used unchanged (SASL, OAuth OIDC ...; the Schema
Registry keys are left out). Prints one JSON line with what it saw.
"""

import json
import os
import sys
import uuid

from confluent_kafka import Consumer, Producer


def client_config(target: str) -> dict:
    if not os.path.isfile(target):
        return {"bootstrap.servers": target}
    config = {}
    with open(target, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", "!")) or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if not key.startswith(("schema.registry.", "basic.auth.", "bearer.auth.")):
                config[key] = value
    return config


def main() -> int:
    base = client_config(sys.argv[1])
    topic, count = sys.argv[2], int(sys.argv[3])
    run = uuid.uuid4().hex
    producer = Producer({**base, "enable.idempotence": True})
    delivered = []

    def on_delivery(err, msg):
        if err is None:
            delivered.append((msg.partition(), msg.offset()))
        else:
            print(f"delivery failed: {err}", file=sys.stderr)

    for i in range(count):
        producer.produce(topic, key=f"{run}-{i}", value=f"python-{run}-{i}".encode(), on_delivery=on_delivery)
    remaining = producer.flush(30)
    if remaining or len(delivered) != count:
        print(f"only {len(delivered)} of {count} delivered", file=sys.stderr)
        return 1

    consumer = Consumer(
        {
            **base,
            "group.id": f"python-{run}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    seen = set()
    partitions = set()
    for _ in range(600):
        msg = consumer.poll(0.1)
        if msg is None:
            if len(seen) == count:
                break
            continue
        if msg.error():
            print(f"consume error: {msg.error()}", file=sys.stderr)
            return 1
        value = msg.value().decode()
        if value.startswith(f"python-{run}-"):
            seen.add(value)
            partitions.add(msg.partition())
    consumer.close()
    print(json.dumps({"produced": len(delivered), "consumed": len(seen), "partitions": sorted(partitions)}))
    return 0 if len(seen) == count else 1


if __name__ == "__main__":
    sys.exit(main())
