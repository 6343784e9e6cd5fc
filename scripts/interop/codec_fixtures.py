#!/usr/bin/env python3
"""Bytes of Confluent's own Python serializer, for cross-checking grocery-events' codec.

Usage:
  codec_fixtures.py serialize   <schema-registry-url> <dir>
      Serializes ORDER and PICKLIST (below) with confluent-kafka's AvroSerializer
      (auto.register.schemas=true) for topics grocery.orders.v1 and grocery.picklist.v1, using the
      schemas in schemas/*.avsc. Writes <dir>/order.hex and <dir>/picklist.hex (the framed bytes,
      hex) and <dir>/expected.json (the values as JSON, uuids as strings, timestamps as epoch
      milliseconds, and the schema id each payload carries). Prints "codec_fixtures: OK".
  codec_fixtures.py deserialize <schema-registry-url> <dir>
      Reads <dir>/order.hex and <dir>/picklist.hex (written by another client), decodes them with
      confluent-kafka's AvroDeserializer (writer schema fetched by the id in the header) and
      prints one JSON object: {"order": {...}, "picklist": {...}, "schema_ids": {...}}.

The checked-in fixtures under crates/grocery-events/tests/fixtures/python/ are the output of
`serialize` against a fresh local registry (order schema registered first: id 1, pick list
schema second: id 2). To regenerate them run
  GROCERY_REGENERATE_PYTHON_FIXTURES=1 cargo test -p grocery-events --test interop_python \
      python_serializer_bytes_decode_with_the_codec
which runs this script against a fresh local registry and writes there.
"""

import datetime
import json
import pathlib
import sys
import uuid

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORDERS_TOPIC = "grocery.orders.v1"
PICKLIST_TOPIC = "grocery.picklist.v1"

# Values chosen to exercise the encoding: multi-byte UTF-8, longs beyond 32 bits, negative
# numbers, an empty string, both branches of the nullable union, every enum position.
ORDER = {
    "order_id": "7d3f2c1a-9b8e-4f6d-a5c4-3b2a1f0e9d8c",
    "customer_id": "00000000-0000-4000-8000-000000000001",
    "items": [
        {"sku": "PRD-00001", "name": "Whole Milk 1 gal", "quantity": 2, "unit_price_cents": 459},
        {"sku": "PRD-00042", "name": "Crème fraîche — 200 g 🥛", "quantity": 1,
         "unit_price_cents": 5_000_000_000},
        {"sku": "", "name": "Refund line", "quantity": -1, "unit_price_cents": -125},
    ],
    "order_total_cents": 5_000_000_793,
    "currency": "EUR",
    "order_time": 1_763_769_600_123,
    # Version 2 of the order schema: an enum and a record, each in a ["null", ...] union.
    "substitution": "SAME_BRAND",
    "delivery_window": {"start_time": 1_763_784_000_000, "end_time": 1_763_791_200_000},
}

PICKLIST = {
    "picklist_id": "c0ffee00-1234-5678-9abc-def012345678",
    "order_id": ORDER["order_id"],
    "items_to_pick": [
        {"sku": "PRD-00001", "name": "Whole Milk 1 gal", "quantity": 2, "quantity_to_pick": 2,
         "aisle": "A12 Dairy", "walk_sequence": 1, "stock_status": "IN_STOCK", "note": None},
        {"sku": "PRD-00042", "name": "Crème fraîche — 200 g 🥛", "quantity": 3,
         "quantity_to_pick": 1, "aisle": "B3 Chilled", "walk_sequence": 2,
         "stock_status": "SHORT", "note": "only 1 left"},
        {"sku": "PRD-00077", "name": "Oat Bread", "quantity": 1, "quantity_to_pick": 0,
         "aisle": "C1 Bakery", "walk_sequence": 3, "stock_status": "OUT_OF_STOCK",
         "note": "none on the shelf"},
        {"sku": "PRD-99999", "name": "?", "quantity": 1, "quantity_to_pick": 0, "aisle": "",
         "walk_sequence": 4, "stock_status": "UNKNOWN_SKU", "note": ""},
    ],
    "assigned_picker": "Zoë",
    "created_time": 1_763_769_601_000,
    # Version 2 of the pick-list schema: the order's delivery window, a record in a
    # ["null", ...] union.
    "delivery_window": {"start_time": 1_763_784_000_000, "end_time": 1_763_791_200_000},
}


def schema_text(topic):
    return (ROOT / "schemas" / f"{topic}.avsc").read_text()


def to_json(value):
    """fastavro's logical-type objects as the JSON the Rust side writes."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (value - epoch) // datetime.timedelta(milliseconds=1)
    return value


def header_id(data):
    if len(data) < 5 or data[0] != 0:
        raise ValueError(f"not Confluent-framed: {data[:5]!r}")
    return int.from_bytes(data[1:5], "big")


def serialize(url, out):
    client = SchemaRegistryClient({"url": url})
    out.mkdir(parents=True, exist_ok=True)
    expected = {"schema_ids": {}}
    for name, topic, record in (("order", ORDERS_TOPIC, ORDER),
                                ("picklist", PICKLIST_TOPIC, PICKLIST)):
        serializer = AvroSerializer(client, schema_text(topic),
                                    conf={"auto.register.schemas": True})
        data = serializer(record, SerializationContext(topic, MessageField.VALUE))
        (out / f"{name}.hex").write_text(data.hex() + "\n")
        expected[name] = record
        expected["schema_ids"][name] = header_id(data)
    (out / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    print("codec_fixtures: OK")


def deserialize(url, inp):
    client = SchemaRegistryClient({"url": url})
    deserializer = AvroDeserializer(client)
    result = {"schema_ids": {}}
    for name, topic in (("order", ORDERS_TOPIC), ("picklist", PICKLIST_TOPIC)):
        data = bytes.fromhex((inp / f"{name}.hex").read_text().strip())
        result["schema_ids"][name] = header_id(data)
        value = deserializer(data, SerializationContext(topic, MessageField.VALUE))
        result[name] = to_json(value)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("serialize", "deserialize"):
        sys.exit(__doc__)
    mode, url, directory = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    (serialize if mode == "serialize" else deserialize)(url, directory)
