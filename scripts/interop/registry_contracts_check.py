#!/usr/bin/env python3
"""Cross-check a Schema Registry's references, GUIDs, metadata and rule sets with Confluent's
own Python client.

Usage: registry_contracts_check.py <schema-registry-url>

SchemaRegistryClient: register and look up a schema with references, get it by id, by version
and by GUID with its references, referencedby, the errors for a missing reference and for
deleting a referenced version, metadata and rule sets stored and served, get_latest_with_metadata.
AvroSerializer / AvroDeserializer: a record using a referenced named type written and read back
through the registry, with the schema id in the payload prefix and with the schema GUID in the
__value_schema_id header; use.latest.with.metadata. Exits non-zero with a message on the first
difference from what Confluent's registry answers; prints "registry_contracts_check: OK".
"""

import json
import sys
import uuid

from confluent_kafka.schema_registry import (
    Metadata,
    MetadataProperties,
    Rule,
    RuleKind,
    RuleMode,
    RuleParams,
    RuleSet,
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    header_schema_id_serializer,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

UNIT = {"type": "enum", "name": "Unit", "namespace": "shop", "symbols": ["EACH", "KG"]}
# References Unit.
PRODUCT = {
    "type": "record",
    "name": "Product",
    "namespace": "shop",
    "fields": [{"name": "sku", "type": "string"}, {"name": "unit", "type": "Unit"}],
}
# References Product and Unit (a diamond: Product references Unit too). A type nested in a
# referenced schema rather than referenced itself would be written out in the canonical text
# (as Java Avro and so Confluent's registry write it), which this client's deserializer
# cannot read back: tests/registry_contracts.rs checks that text over HTTP.
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
LINE = {"type": "record", "name": "Line", "namespace": "shop",
        "fields": [{"name": "qty", "type": "int"}]}
RECORD = {
    "id": "o-1",
    "main": {"sku": "apple", "unit": "KG"},
    "extra": {"sku": "pear", "unit": "EACH"},
    "lines": [{"sku": "fig", "unit": "EACH"}, {"sku": "kiwi", "unit": "KG"}],
    "unit": "EACH",
}


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


def references(schema):
    return [(r.name, r.subject, r.version) for r in schema.references or []]


def check_references(url, prefix):
    client = SchemaRegistryClient({"url": url})
    unit_subject = f"{prefix}-unit"
    product_subject = f"{prefix}-product"
    topic = f"{prefix}-orders"
    subject = f"{topic}-value"

    client.register_schema(unit_subject, Schema(json.dumps(UNIT), "AVRO"))
    unit_ref = SchemaReference("shop.Unit", unit_subject, 1)
    product = client.register_schema_full_response(
        product_subject, Schema(json.dumps(PRODUCT), "AVRO", [unit_ref]))
    check(product.version == 1 and product.guid is not None, f"product registered: {product}")
    check(str(uuid.UUID(product.guid)) == product.guid, f"a GUID is a UUID: {product.guid}")

    refs = [SchemaReference("shop.Product", product_subject, 1), unit_ref]
    order_schema = Schema(json.dumps(ORDER), "AVRO", refs)
    # A reference to a subject that does not exist: 422 / 42201, as Confluent answers.
    missing = Schema(json.dumps(ORDER), "AVRO", [SchemaReference("shop.Product", f"{prefix}-nope", 1), unit_ref])
    err = expect_error(lambda: client.register_schema(subject, missing), 422, 42201)
    check("No schema reference found" in str(err), f"message names the reference: {err}")
    missing_version = Schema(json.dumps(ORDER), "AVRO", [SchemaReference("shop.Product", product_subject, 9), unit_ref])
    expect_error(lambda: client.register_schema(subject, missing_version), 422, 42201)

    order = client.register_schema_full_response(subject, order_schema)
    wanted = [("shop.Product", product_subject, 1), ("shop.Unit", unit_subject, 1)]
    check(order.version == 1 and references(order.schema) == wanted, f"order registered: {order}")
    check(order.guid not in (None, product.guid), f"its own GUID: {order}")
    check(client.register_schema(subject, order_schema) == order.schema_id, "registered again: same id")
    # The whole schema, referenced types written out, finds the version with references.
    whole = dict(ORDER, fields=[dict(f, type=dict(PRODUCT, fields=[PRODUCT["fields"][0],
                                                                   dict(PRODUCT["fields"][1], type=UNIT)]))
                                if f["name"] == "main" else f for f in ORDER["fields"]])
    whole_schema = Schema(json.dumps(whole), "AVRO")
    found = SchemaRegistryClient({"url": url}).lookup_schema(subject, whole_schema)
    check((found.schema_id, found.version) == (order.schema_id, 1), f"lookup of the whole schema: {found}")

    fresh = SchemaRegistryClient({"url": url})  # no cached answers
    by_id = fresh.get_schema(order.schema_id)
    check(references(by_id) == wanted, f"references by id: {by_id}")
    check(json.loads(by_id.schema_str)["name"] == "Order", f"schema by id: {by_id.schema_str}")
    version = fresh.get_version(subject, 1)
    check((version.schema_id, version.guid, references(version.schema)) == (order.schema_id, order.guid, wanted),
          f"version 1: {version}")
    found = fresh.lookup_schema(subject, order_schema)
    check((found.schema_id, found.version, found.guid) == (order.schema_id, 1, order.guid), f"lookup: {found}")
    check(fresh.get_subjects_by_schema_id(order.schema_id) == [subject], "subjects by id")
    check(fresh.get_referenced_by(product_subject, 1) == [order.schema_id], "referencedby")
    check(fresh.get_referenced_by(unit_subject, 1) == sorted([product.schema_id, order.schema_id]),
          "referencedby: two schemas refer to Unit")
    check(fresh.get_referenced_by(subject, 1) == [], "nothing refers to the order")
    by_guid = SchemaRegistryClient({"url": url}).get_schema_by_guid(order.guid)
    check((by_guid.schema_str, references(by_guid)) == (by_id.schema_str, wanted), f"by GUID: {by_guid}")
    expect_error(lambda: SchemaRegistryClient({"url": url}).get_schema_by_guid(str(uuid.uuid4())), 404, 40403)

    # The referenced version cannot go while the order refers to it: 422 / 42206.
    expect_error(lambda: client.delete_version(product_subject, 1), 422, 42206)
    expect_error(lambda: client.delete_subject(product_subject), 422, 42206)
    expect_error(lambda: client.delete_version(unit_subject, 1), 422, 42206)

    # Serializer / deserializer over the referenced type: Python writes and reads through the
    # registry (the writer schema fetched by id, then by GUID, references resolved by version).
    ctx = SerializationContext(topic, MessageField.VALUE)
    looked_up = AvroSerializer(client, order_schema, conf={"auto.register.schemas": False})
    data = looked_up(RECORD, ctx)
    check(data[0] == 0 and int.from_bytes(data[1:5], "big") == order.schema_id,
          f"framing: magic byte and id {order.schema_id}, got {data[:5]!r}")
    decoded = AvroDeserializer(SchemaRegistryClient({"url": url}))(data, ctx)
    check(decoded == RECORD, f"round trip by id: {decoded}")
    registering = AvroSerializer(client, order_schema)
    check(registering(RECORD, ctx) == data, "auto-registration finds the same schema")
    holding_whole = AvroSerializer(SchemaRegistryClient({"url": url}), whole_schema,
                                   conf={"auto.register.schemas": False})
    check(holding_whole(RECORD, ctx) == data, "the whole schema writes with the same id")

    headers = []
    header_ctx = SerializationContext(topic, MessageField.VALUE, headers)
    by_header = AvroSerializer(client, order_schema,
                               conf={"auto.register.schemas": False,
                                     "schema.id.serializer": header_schema_id_serializer})
    bare = by_header(RECORD, header_ctx)
    check(bare == data[5:], "the header form leaves the bare Avro body")
    check(len(headers) == 1 and headers[0][0] == "__value_schema_id", f"headers: {headers}")
    check(headers[0][1] == b"\x01" + uuid.UUID(order.guid).bytes, f"magic 1 and the GUID: {headers}")
    decoded = AvroDeserializer(SchemaRegistryClient({"url": url}))(
        bare, SerializationContext(topic, MessageField.VALUE, list(headers)))
    check(decoded == RECORD, f"round trip by GUID: {decoded}")


def line_schema(major, rules):
    return Schema(
        json.dumps(LINE), "AVRO",
        # No tags: this client hashes a Metadata and a tag's list of values is unhashable
        # (tests/registry_contracts.rs checks tags over HTTP).
        metadata=Metadata(
            tags=None,
            properties=MetadataProperties({"owner": "picking", "major": str(major)}),
            sensitive=[],
        ),
        rule_set=rules,
    )


def check_metadata(url, prefix):
    client = SchemaRegistryClient({"url": url})
    subject = f"{prefix}-lines-value"
    rule = Rule("positiveQty", None, RuleKind.CONDITION, RuleMode.WRITE, "CEL", None,
                RuleParams({"dlq.topic": "dlq"}), "message.qty > 0", None, "DLQ", False)
    rules = RuleSet(migration_rules=[], domain_rules=[rule])

    v1 = client.register_schema_full_response(subject, line_schema(1, rules))
    check(v1.version == 1, f"v1: {v1}")
    served = SchemaRegistryClient({"url": url}).get_version(subject, 1)
    props = served.schema.metadata.properties.properties
    check(props == {"owner": "picking", "major": "1"}, f"metadata properties: {served}")
    (got,) = served.schema.rule_set.domain_rules
    check((got.name, got.kind, got.mode, got.type, got.expr, got.on_failure, got.params.params)
          == ("positiveQty", RuleKind.CONDITION, RuleMode.WRITE, "CEL", "message.qty > 0", "DLQ",
              {"dlq.topic": "dlq"}), f"rule: {got}")
    check(served.guid == v1.guid, "same GUID served")

    # Metadata is part of the schema: other properties, another id and GUID.
    v2 = client.register_schema_full_response(subject, line_schema(2, rules))
    check(v2.version == 2 and v2.schema_id != v1.schema_id and v2.guid != v1.guid, f"v2: {v2}")
    latest = SchemaRegistryClient({"url": url})
    check(latest.get_latest_with_metadata(subject, {"major": "1"}).version == 1, "latest with major 1")
    check(latest.get_latest_with_metadata(subject, {"owner": "picking"}).version == 2, "latest with owner")
    check(latest.get_latest_with_metadata(subject, {"owner": "picking", "major": "2"}).schema_id == v2.schema_id,
          "latest with both")
    expect_error(lambda: latest.get_latest_with_metadata(subject, {"major": "3"}), 404, 40403)
    expect_error(lambda: latest.get_latest_with_metadata(f"{prefix}-none", {"a": "b"}), 404, 40401)

    # use.latest.with.metadata: the serializer writes with the version the metadata selects.
    plain = f"{prefix}-plain"
    for major in (1, 2):
        client.register_schema(f"{plain}-value", Schema(
            json.dumps(LINE), "AVRO",
            metadata=Metadata(None, MetadataProperties({"major": str(major)}), None)))
    first = client.get_version(f"{plain}-value", 1)
    ctx = SerializationContext(plain, MessageField.VALUE)
    serializer = AvroSerializer(client, None, conf={"auto.register.schemas": False,
                                                    "use.latest.with.metadata": {"major": "1"}})
    data = serializer({"qty": 3}, ctx)
    check(int.from_bytes(data[1:5], "big") == first.schema_id, f"written with version 1: {data[:5]!r}")
    check(AvroDeserializer(SchemaRegistryClient({"url": url}))(data, ctx) == {"qty": 3}, "read back")


def main(url):
    prefix = f"contracts-{uuid.uuid4().hex[:10]}"
    check_references(url, prefix)
    check_metadata(url, prefix)
    print("registry_contracts_check: OK")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except (AssertionError, SchemaRegistryError) as e:
        sys.exit(f"registry_contracts_check: FAILED: {e}")
