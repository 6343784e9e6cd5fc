#!/usr/bin/env python3
"""Schema references and schema ids in headers, with Confluent's own Python serializer and
deserializer, both ways (crates/grocery-events/tests/interop_python_references.rs).

Usage: references_headers.py write <schema-registry-url> <dir>
       references_headers.py read <schema-registry-url> <dir>
       references_headers.py produce <schema-registry-url> <dir> <bootstrap> <topic>
       references_headers.py consume <schema-registry-url> <dir> <bootstrap> <topic>

write: registers shop.Unit and shop.Product (which references Unit) under their full names, and
writes records of shop.Order (which references both) to <dir> as hex: with the schema id in the
payload prefix (prefix_value), with the schema GUID in the __value_schema_id header
(header_value + header_value.header), one whose bare body starts with 0x00 (zero_value +
zero_value.header), and an Avro key with its GUID in __key_schema_id (header_key +
header_key.header); the values in expected.json.

read: decodes what the Rust codec wrote to <dir> (the same files, each with its header file
when there is one) with AvroDeserializer (its default: header first, then the prefix) and
compares with <dir>/expected.json; checks that each header is magic byte 1 and the GUID the
registry gives the schema.

produce: the same through Kafka with confluent_kafka's Producer, keys Avro too (GUID header or
prefix, as the value), then a record whose __value_schema_id header is malformed and one more good record; the
values of the good ones in
<dir>/expected.json, in order.

consume: reads as many records as <dir>/expected.json lists (written by the Rust producer) from
<topic> with confluent_kafka's Consumer, decodes values and keys with AvroDeserializer from each
record's headers, and compares.

key-refs-write: registers shop.Unit and, under shop.shelved-key, a key schema shop.ShelfKey
whose field unit names shop.Unit (a reference), and writes SHELF_KEY serialized as a key of
topic shop.shelved with use.latest.version (id in the prefix) to <dir>/key_refs.hex.

key-refs-read: decodes <dir>/rust_key_refs.hex (a key of topic shop.shelved, written by another
client) with AvroDeserializer, checks it is SHELF_KEY and that its schema id is the one
registered under shop.shelved-key with the reference to shop.Unit.

Prints "references_headers: OK" on success; exits non-zero on the first difference.
"""

import json
import sys
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import (
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    header_schema_id_serializer,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "shop.orders"
UNIT = {"type": "enum", "name": "Unit", "namespace": "shop", "symbols": ["EACH", "KG"]}
PRODUCT = {
    "type": "record",
    "name": "Product",
    "namespace": "shop",
    "fields": [{"name": "sku", "type": "string"}, {"name": "unit", "type": "Unit"}],
}
ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "main", "type": "Product"},
        {"name": "extra", "type": ["null", "shop.Product"], "default": None},
        {"name": "lines", "type": {"type": "array", "items": "Product"}},
        {"name": "unit", "type": "Unit"},
    ],
}
ORDER_KEY = {"type": "record", "name": "OrderKey", "namespace": "shop",
             "fields": [{"name": "id", "type": "string"}]}
ORDER_REFS = [SchemaReference("shop.Product", "shop.Product", 1),
              SchemaReference("shop.Unit", "shop.Unit", 1)]

RECORD = {
    "id": "order-0001",
    "main": {"sku": "apple", "unit": "KG"},
    "extra": {"sku": "pear", "unit": "EACH"},
    "lines": [{"sku": "fig", "unit": "EACH"}, {"sku": "crème fraîche 🥛", "unit": "KG"}],
    "unit": "EACH",
}
# An empty string first: the bare body starts with 0x00, as a prefixed payload does.
ZERO = {"id": "", "main": {"sku": "", "unit": "EACH"}, "extra": None, "lines": [], "unit": "KG"}
# Long enough: this client's deserializer wants 6 bytes or more even when the id is in a
# header (a 4-byte key body fails there, though it is a whole record).
KEY = {"id": "order-0001"}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def hexfile(path, data):
    path.write_text(data.hex() + "\n")


def unhex(path):
    return bytes.fromhex(path.read_text().strip())


def order_schema():
    return Schema(json.dumps(ORDER), "AVRO", ORDER_REFS)


def write(url, out):
    client = SchemaRegistryClient({"url": url})
    register_references(client)

    value_ctx = SerializationContext(TOPIC, MessageField.VALUE)
    hexfile(out / "prefix_value.hex", AvroSerializer(client, order_schema())(RECORD, value_ctx))

    by_header = AvroSerializer(client, order_schema(),
                               conf={"schema.id.serializer": header_schema_id_serializer})
    for name, record in (("header_value", RECORD), ("zero_value", ZERO)):
        headers = []
        body = by_header(record, SerializationContext(TOPIC, MessageField.VALUE, headers))
        check([h[0] for h in headers] == ["__value_schema_id"], f"headers: {headers}")
        hexfile(out / f"{name}.hex", body)
        hexfile(out / f"{name}.header.hex", headers[0][1])
    check(unhex(out / "zero_value.hex")[0] == 0, "the zero body starts with 0x00")

    headers = []
    key_serializer = AvroSerializer(client, json.dumps(ORDER_KEY),
                                    conf={"schema.id.serializer": header_schema_id_serializer})
    body = key_serializer(KEY, SerializationContext(TOPIC, MessageField.KEY, headers))
    check([h[0] for h in headers] == ["__key_schema_id"], f"key headers: {headers}")
    hexfile(out / "header_key.hex", body)
    hexfile(out / "header_key.header.hex", headers[0][1])

    (out / "expected.json").write_text(json.dumps(
        {"prefix_value": RECORD, "header_value": RECORD, "zero_value": ZERO, "header_key": KEY},
        ensure_ascii=False))


def read(url, out):
    client = SchemaRegistryClient({"url": url})
    expected = json.loads((out / "expected.json").read_text())
    guids = {
        MessageField.VALUE: client.lookup_schema(f"{TOPIC}-value", order_schema()).guid,
        MessageField.KEY: client.lookup_schema(
            f"{TOPIC}-key", Schema(json.dumps(ORDER_KEY), "AVRO")).guid,
    }
    deserializer = AvroDeserializer(client)
    for name, want in expected.items():
        field = MessageField.KEY if name.endswith("_key") else MessageField.VALUE
        data = unhex(out / f"{name}.hex")
        header_file = out / f"{name}.header.hex"
        headers = []
        if header_file.exists():
            header = unhex(header_file)
            check(header == b"\x01" + uuid.UUID(guids[field]).bytes,
                  f"{name}: header {header.hex()} is not magic byte 1 and GUID {guids[field]}")
            header_name = "__key_schema_id" if field == MessageField.KEY else "__value_schema_id"
            headers = [(header_name, header)]
        got = deserializer(data, SerializationContext(TOPIC, field, headers))
        check(got == want, f"{name}: got {got}, expected {want}")
        print(f"{name}: {json.dumps(got, ensure_ascii=False)}")


def register_references(client):
    client.register_schema("shop.Unit", Schema(json.dumps(UNIT), "AVRO"))
    client.register_schema("shop.Product", Schema(
        json.dumps(PRODUCT), "AVRO", [SchemaReference("shop.Unit", "shop.Unit", 1)]))


def produce(url, out, bootstrap, topic):
    client = SchemaRegistryClient({"url": url})
    register_references(client)
    header_conf = {"schema.id.serializer": header_schema_id_serializer}
    values = {"header": AvroSerializer(client, order_schema(), conf=header_conf),
              "prefix": AvroSerializer(client, order_schema())}
    keys = {"header": AvroSerializer(client, json.dumps(ORDER_KEY), conf=header_conf),
            "prefix": AvroSerializer(client, json.dumps(ORDER_KEY))}
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    sent = []
    for framing, record in (("header", RECORD), ("prefix", RECORD), ("header", ZERO)):
        headers = []
        key = keys[framing](KEY, SerializationContext(topic, MessageField.KEY, headers))
        value = values[framing](record, SerializationContext(topic, MessageField.VALUE, headers))
        producer.produce(topic, key=key, value=value, headers=headers)
        sent.append(record)
    # Malformed: a header with magic byte 7 in front of a body that decodes.
    good = values["prefix"](RECORD, SerializationContext(topic, MessageField.VALUE))
    producer.produce(topic, key=keys["prefix"](KEY, SerializationContext(topic, MessageField.KEY)),
                     value=good[5:], headers=[("__value_schema_id", b"\x07" + good[1:5])])
    # And a good one after it, so that a reader knows the malformed one is behind it.
    producer.produce(topic, key=keys["prefix"](KEY, SerializationContext(topic, MessageField.KEY)),
                     value=good)
    sent.append(RECORD)
    check(producer.flush(30) == 0, "every record delivered")
    (out / "expected.json").write_text(json.dumps(sent, ensure_ascii=False))


def consume(url, out, bootstrap, topic):
    expected = json.loads((out / "expected.json").read_text())
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"refs-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = []
    while len(got) < len(expected):
        message = consumer.poll(30)
        check(message is not None, f"only {len(got)} of {len(expected)} records within 30 s")
        check(message.error() is None, f"consume error: {message.error()}")
        headers = message.headers() or []
        names = [h[0] for h in headers]
        check("__value_schema_id" in names and "__key_schema_id" in names, f"headers: {names}")
        value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE, headers))
        key = deserializer(message.key(), SerializationContext(topic, MessageField.KEY, headers))
        check(key == KEY, f"key {key}")
        got.append(value)
        print(json.dumps(value, ensure_ascii=False))
    consumer.close()
    check(got == expected, f"got {got}, expected {expected}")


SHELVED_TOPIC = "shop.shelved"
SHELF_KEY_SCHEMA = {"type": "record", "name": "ShelfKey", "namespace": "shop",
                    "fields": [{"name": "unit", "type": "Unit"}, {"name": "id", "type": "string"}]}
SHELF_KEY = {"unit": "KG", "id": "shelf-0001"}


def register_key_with_reference(client):
    """The key schema under shop.shelved-key, its reference registered first; its id."""
    client.register_schema("shop.Unit", Schema(json.dumps(UNIT), "AVRO"))
    return client.register_schema(f"{SHELVED_TOPIC}-key", Schema(
        json.dumps(SHELF_KEY_SCHEMA), "AVRO", [SchemaReference("shop.Unit", "shop.Unit", 1)]))


def key_refs_write(url, out):
    client = SchemaRegistryClient({"url": url})
    register_key_with_reference(client)
    serializer = AvroSerializer(client, None, conf={"auto.register.schemas": False,
                                                    "use.latest.version": True})
    body = serializer(SHELF_KEY, SerializationContext(SHELVED_TOPIC, MessageField.KEY))
    hexfile(out / "key_refs.hex", body)


def key_refs_read(url, out):
    client = SchemaRegistryClient({"url": url})
    latest = client.get_latest_version(f"{SHELVED_TOPIC}-key")
    check([(r.name, r.subject, r.version) for r in latest.schema.references]
          == [("shop.Unit", "shop.Unit", 1)], f"references: {latest.schema.references}")
    data = unhex(out / "rust_key_refs.hex")
    check(data[0] == 0 and int.from_bytes(data[1:5], "big") == latest.schema_id,
          f"key schema id {data[1:5].hex()}, registered {latest.schema_id}")
    key = AvroDeserializer(client)(data, SerializationContext(SHELVED_TOPIC, MessageField.KEY))
    check(key == SHELF_KEY, f"key {key}")
    print(json.dumps(key))


def main():
    mode, url, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    modes = {"write": write, "read": read, "produce": produce, "consume": consume,
             "key-refs-write": key_refs_write, "key-refs-read": key_refs_read}
    modes[mode](url, out, *sys.argv[4:])
    print("references_headers: OK")


if __name__ == "__main__":
    main()
