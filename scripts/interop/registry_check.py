#!/usr/bin/env python3
"""Cross-check a Schema Registry with Confluent's own Python client.

Usage: registry_check.py <schema-registry-url>

Exercises SchemaRegistryClient (register, lookup, latest version, schema by id, compatibility,
config, deletes) and AvroSerializer / AvroDeserializer (Confluent framing, writer schema fetched
by id, resolution into a newer reader schema). Exits non-zero with a message on the first
difference from what Confluent's registry answers; prints "registry_check: OK" on success.
"""

import json
import sys
import uuid

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

V1 = {
    "type": "record",
    "name": "Interop",
    "namespace": "io.groceryevents.interop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "qty", "type": "int"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
# BACKWARD-compatible: a new field with a default.
V2 = {**V1, "fields": V1["fields"] + [{"name": "note", "type": "string", "default": "none"}]}
# Not BACKWARD-compatible: a new field without a default.
BREAKING = {**V1, "fields": V1["fields"] + [{"name": "currency", "type": "string"}]}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_error(call, status, code):
    try:
        call()
    except SchemaRegistryError as e:
        check(e.http_status_code == status and e.error_code == code,
              f"expected {status}/{code}, got {e.http_status_code}/{e.error_code}: {e}")
        return e
    raise AssertionError(f"expected {status}/{code}, the call succeeded")


def main(url):
    client = SchemaRegistryClient({"url": url})
    topic = f"interop-{uuid.uuid4().hex[:10]}"
    subject = f"{topic}-value"
    v1, v2, breaking = (Schema(json.dumps(s), "AVRO") for s in (V1, V2, BREAKING))

    # Register, idempotently; lookup; latest; by id.
    id1 = client.register_schema(subject, v1)
    check(client.register_schema(subject, v1) == id1, "same schema, same id")
    found = client.lookup_schema(subject, v1)
    check((found.schema_id, found.version, found.subject) == (id1, 1, subject),
          f"lookup: {found}")
    latest = client.get_latest_version(subject)
    check((latest.schema_id, latest.version) == (id1, 1), f"latest: {latest}")
    check(json.loads(latest.schema.schema_str) == V1, "latest schema text")
    check(json.loads(client.get_schema(id1).schema_str) == V1, "schema by id")
    check(subject in client.get_subjects(), "subject listed")

    # Compatibility under the default BACKWARD level.
    check(client.get_compatibility() == "BACKWARD", "global level")
    check(client.test_compatibility(subject, v2), "v2 is compatible")
    check(not client.test_compatibility(subject, breaking), "breaking is not compatible")
    err = expect_error(lambda: client.register_schema(subject, breaking), 409, 40901)
    check("currency" in str(err), f"message names the field: {err}")
    id2 = client.register_schema(subject, v2)
    check(id2 != id1, "new schema, new id")
    check(client.get_versions(subject) == [1, 2], "two versions")

    # Subject config.
    client.set_compatibility(subject, "FULL")
    check(client.get_compatibility(subject) == "FULL", "subject level")
    expect_error(lambda: client.set_compatibility(subject, "SIDEWAYS"), 422, 42203)

    # Serializer / deserializer: Confluent framing, writer schema fetched by id.
    ctx = SerializationContext(topic, MessageField.VALUE)
    record = {"id": "o-1", "qty": 3, "at": 1_700_000_000_000, "note": "hi"}
    serializer = AvroSerializer(client, json.dumps(V2))
    data = serializer(record, ctx)
    check(data[0] == 0 and int.from_bytes(data[1:5], "big") == id2,
          f"framing: magic byte and schema id {id2}, got {data[:5]!r}")
    decoded = AvroDeserializer(client)(data, ctx)
    check(decoded["id"] == "o-1" and decoded["qty"] == 3 and decoded["note"] == "hi",
          f"round trip: {decoded}")

    # Old data, new reader: written with v1 (looked up, not registered), read with v2.
    old_serializer = AvroSerializer(client, json.dumps(V1), conf={"auto.register.schemas": False})
    old = old_serializer({"id": "o-0", "qty": 1, "at": 0}, ctx)
    check(int.from_bytes(old[1:5], "big") == id1, "v1 data carries id1")
    resolved = AvroDeserializer(client, json.dumps(V2))(old, ctx)
    check(resolved["note"] == "none" and resolved["qty"] == 1, f"resolution: {resolved}")

    # One schema, two spellings: the registry identifies a schema by Java Avro's canonical text,
    # where a primitive is written as its name; a doc makes another schema.
    spelled = f"{topic}-spelled-value"
    long_id = client.register_schema(spelled, Schema('{"type": "string"}', "AVRO"))
    check(client.register_schema(spelled, Schema('"string"', "AVRO")) == long_id,
          '"string" and {"type": "string"}: one id')
    found = client.lookup_schema(spelled, Schema('"string"', "AVRO"))
    check((found.schema_id, found.version) == (long_id, 1), f"lookup of the other spelling: {found}")
    check(client.get_versions(spelled) == [1], "one version for both spellings")
    check(client.get_schema(long_id).schema_str == '"string"', "served in canonical form")
    split = {**V1, "name": "io.groceryevents.interop.Interop"}
    del split["namespace"]
    check(client.register_schema(f"{topic}-split-value", Schema(json.dumps(split), "AVRO")) == id1,
          "a full name split or not: one id")
    documented = client.register_schema(f"{topic}-doc-value",
                                        Schema(json.dumps({**V1, "doc": "an order"}), "AVRO"))
    check(documented not in (id1, id2), "a doc makes another schema")

    # Deletes: soft first, then permanent.
    check(client.delete_version(subject, 1) == 1, "soft delete version 1")
    check(client.get_versions(subject) == [2], "version 1 hidden")
    expect_error(lambda: client.get_version(subject, 1), 404, 40402)
    check(client.delete_subject(subject) == [2], "soft delete subject")
    check(subject not in client.get_subjects(), "soft-deleted subject hidden")
    # (the client caches get_latest_version; get_versions always asks the registry)
    expect_error(lambda: client.get_versions(subject), 404, 40401)
    check(sorted(client.delete_subject(subject, permanent=True)) == [1, 2], "permanent delete")
    check(subject not in client.get_subjects(deleted=True), "permanently deleted subject gone")

    print("registry_check: OK")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except (AssertionError, SchemaRegistryError) as e:
        sys.exit(f"registry_check: FAILED: {e}")
