#!/usr/bin/env python3
"""Confluent's data-contract rules (confluent-kafka[rules]: CelExecutor, CelFieldExecutor,
DlqAction), for cross-checking grocery-events' rules both ways
(crates/grocery-events/tests/rules_python_interop.rs runs it with the interpreter of
local_stack::python::rules_venv()).

Usage:
  rules_check.py write <registry-url> <bootstrap> <topic> <in.json> <out.json> [<metadata>]
      Serializes each order of <in.json> (a JSON list; uuids as strings, timestamps as epoch
      milliseconds) with AvroSerializer for <topic>, writing with the latest registered version
      of <topic>-value and its rules (use.latest.version=true, auto.register.schemas=false),
      the order's id as the record key (as a producer sets it). With <metadata> (a JSON
      object) it writes with the latest version whose metadata has those properties
      (use.latest.with.metadata). A DLQ action sends to the
      rule's dlq.topic on <bootstrap>. Writes <out.json>: per order {"ok": "<hex payload>"} or
      {"error": "<message>"}.
  rules_check.py read <registry-url> <topic> <in.json> <out.json> [<bootstrap>]
      Deserializes each hex payload of <in.json> with AvroDeserializer (writer schema and its
      READ rules); writes per payload {"ok": <order as JSON>} or {"error": "<message>"}. With
      <bootstrap>, a DLQ action sends the payload to the rule's dlq.topic there.
  rules_check.py dlq <bootstrap> <topic> <count> <out.json>
      Reads <count> records of <topic> from the start (30 s at most) and writes them as
      [{"key": text, "value": text, "value_hex": hex, "headers": {name: text}}].
Prints "rules_check: OK" at the end.
"""

import datetime
import json
import sys
import uuid

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.rules.cel.cel_executor import CelExecutor
from confluent_kafka.schema_registry.rules.cel.cel_field_executor import CelFieldExecutor
from confluent_kafka.schema_registry.rules.dlq.dlq_action import DlqAction
from confluent_kafka.schema_registry.serde import clear_original_key, set_original_key
from confluent_kafka.serialization import MessageField, SerializationContext

CelExecutor.register()
CelFieldExecutor.register()


def plain(value):
    """A deserialized value as JSON: uuids as strings, timestamps as epoch milliseconds."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


def error_text(e):
    cause = e.__cause__
    return f"{type(e).__name__}: {e}" + (f" (caused by {type(cause).__name__}: {cause})" if cause else "")


def write(url, bootstrap, topic, source, target, metadata=None):
    DlqAction.register({"bootstrap.servers": bootstrap, "dlq.auto.flush": "true"})
    client = SchemaRegistryClient({"url": url})
    conf = {"auto.register.schemas": False, "use.latest.version": True}
    if metadata is not None:
        conf["use.latest.with.metadata"] = json.loads(metadata)
    serializer = AvroSerializer(client, None, conf=conf)
    ctx = SerializationContext(topic, MessageField.VALUE)
    results = []
    for order in json.load(open(source)):
        set_original_key(order["order_id"])
        try:
            results.append({"ok": serializer(order, ctx).hex()})
        except Exception as e:  # noqa: BLE001 - the error is the result
            results.append({"error": error_text(e)})
        finally:
            clear_original_key()
    json.dump(results, open(target, "w"))


def read(url, topic, source, target, bootstrap=None):
    if bootstrap is not None:
        DlqAction.register({"bootstrap.servers": bootstrap, "dlq.auto.flush": "true"})
    client = SchemaRegistryClient({"url": url})
    deserializer = AvroDeserializer(client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    results = []
    for payload in json.load(open(source)):
        try:
            results.append({"ok": plain(deserializer(bytes.fromhex(payload), ctx))})
        except Exception as e:  # noqa: BLE001 - the error is the result
            results.append({"error": error_text(e)})
    json.dump(results, open(target, "w"))


def dlq(bootstrap, topic, count, target):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"rules-check-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    records = []
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=30)
    while len(records) < count and datetime.datetime.now() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        records.append({
            "key": (msg.key() or b"").decode("utf-8", "replace"),
            "value": (msg.value() or b"").decode("utf-8", "replace"),
            "value_hex": (msg.value() or b"").hex(),
            "headers": {k: (v or b"").decode("utf-8", "replace") for k, v in (msg.headers() or [])},
        })
    consumer.close()
    json.dump(records, open(target, "w"))


def main(argv):
    mode = argv[1]
    if mode == "write":
        write(*argv[2:8])
    elif mode == "read":
        read(*argv[2:7])
    elif mode == "dlq":
        dlq(argv[2], argv[3], int(argv[4]), argv[5])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print("rules_check: OK")


if __name__ == "__main__":
    main(sys.argv)
