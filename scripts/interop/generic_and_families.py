#!/usr/bin/env python3
"""Confluent's Python serializer against avro-events' generic records and families of events.

Usage (each against a local Schema Registry at <url>, bytes exchanged through files in <dir>):
  generic_and_families.py generic-write  <url> <dir>
      Serializes the values of GENERIC (schemas of every Avro type, logical types included) with
      confluent-kafka's AvroSerializer (auto.register.schemas, TopicNameStrategy). Writes
      <dir>/generic.jsonl: one {"topic", "payload" (hex), "json"} per value, "json" being the
      value read back in Avro's JSON encoding, as fastavro's json_writer writes it.
  generic-read   <url> <dir>
      Reads <dir>/rust_generic.jsonl ({"payload": hex, "json": ...}, written by another
      client), decodes each payload with confluent-kafka's AvroDeserializer (writer schema by
      the id in the header) and with fastavro (branch names kept), checks both give the same
      value and that fastavro reads "json" as that value too, and prints one JSON line per
      payload: the value in Avro's JSON encoding (json_writer).
  families-write <url> <dir>
      Serializes LOAN and MEMBER (org.example.library, crates/avro-events-build/tests/fixtures)
      for topic library.events.v1 three ways: TopicRecordNameStrategy (topic_record.hex),
      RecordNameStrategy (record.hex), and as a top-level union of both records under
      library.union.v1-value (union.hex); and a record of a third type, FINE, with
      TopicRecordNameStrategy (unknown.hex). One hex payload per line.
  families-read  <url> <dir>
      Decodes every line of <dir>/rust_family.hex with AvroDeserializer and prints one JSON
      line per payload: {"record": the record's full name (the union branch for a union
      writer schema), "subjects": where its schema id is registered, "json": the value in
      Avro's JSON encoding}.
  union-refs-write <url> <dir>
      Confluent's documented way to put several types on one topic: registers LOAN's schema
      under subject org.example.library.Loan, a Member schema whose new field last_loan names
      that Loan (a reference) under org.example.library.MemberWithLoan, and under
      library.refs.v1-value the union ["org.example.library.Member",
      "org.example.library.Loan"] of the two, by references only. Serializes a Loan, a Member
      with a last loan and one without with use.latest.version (nothing auto-registered) and
      writes <dir>/union_refs.jsonl: one {"payload" (hex), "record" (the branch's full name),
      "json" (the value in Avro's JSON encoding of the union)} per value.
  union-refs-read <url> <dir>
      Decodes every line of <dir>/rust_union_refs.hex with AvroDeserializer (references
      resolved by the client) and fastavro (the union as registered, its references resolved),
      checks both agree, and prints one {"record", "json"} line per payload as
      union-refs-write describes them.
Prints "generic_and_families: OK" last on success.
"""

import io
import json
import pathlib
import sys

import fastavro
from confluent_kafka.schema_registry import (
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates/avro-events-build/tests/fixtures/library"

LINE = {"type": "record", "name": "Line", "fields": [
    {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"},
    {"name": "weight", "type": "float"}, {"name": "price", "type": "double"}]}

EVERYTHING = {
    "type": "record", "name": "Everything", "namespace": "io.example.generic",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9,
                                   "scale": 2}},
        {"name": "fixed_price", "type": {"type": "fixed", "name": "Price5", "size": 5,
                                         "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "time_ms", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "time_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "flag", "type": "boolean"},
        {"name": "count", "type": "long"},
        {"name": "ratio", "type": "float"},
        {"name": "text", "type": "string"},
        {"name": "raw", "type": "bytes"},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash4", "size": 4}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "tags", "type": {"type": "map", "values": "long"}},
        {"name": "lines", "type": {"type": "array", "items": LINE}},
        {"name": "choice", "type": ["null", "string", "Line", "Kind",
                                    {"type": "array", "items": "int"}]},
        {"name": "maybe_line", "type": ["null", "Line"], "default": None},
        {"name": "nested", "type": {"type": "map", "values": {"type": "array",
                                                              "items": ["null", "double"]}}},
    ],
}

# A top-level map of a union (not a record), and a recursive record.
LEVELS = {"type": "map", "values": ["null", "double", {"type": "enum", "name": "Level",
                                                       "namespace": "io.example.generic",
                                                       "symbols": ["LOW", "HIGH"]}]}
TREE = {"type": "record", "name": "Tree", "namespace": "io.example.generic", "fields": [
    {"name": "label", "type": "string"},
    {"name": "children", "type": {"type": "array", "items": "Tree"}}]}


def everything(i):
    import datetime
    import decimal
    import uuid
    return {
        "id": uuid.UUID(int=0x0C6A6E3C3C1F4F6B9A4E0E7F0A1B2C3D + i),
        "price": decimal.Decimal("-12.34") * (i + 1),
        "fixed_price": decimal.Decimal("1.50") + i,
        "day": datetime.date(2024, 2, 29) + datetime.timedelta(days=i),
        "time_ms": datetime.time(13, 45, 30, 123000),
        "time_us": datetime.time(23, 59, 59, 999999),
        "at_ms": datetime.datetime(2025, 11, 22, 0, 0, 0, 123000, tzinfo=datetime.timezone.utc),
        "at_us": datetime.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=datetime.timezone.utc),
        "local_ms": datetime.datetime(2025, 1, 2, 3, 4, 5, 6000),
        "flag": i % 2 == 0,
        "count": -(2 ** 40) - i,
        "ratio": 0.1 * (i + 1),
        "text": "Crème fraîche — 200 g 🥛" if i == 0 else "",
        "raw": bytes(range(256)) if i == 0 else b"",
        "hash": b"\x00\xff\x10\x7f",
        "kind": ["A", "B", "C"][i % 3],
        "tags": {"a": 1, "é": -(2 ** 62)} if i == 0 else {},
        "lines": [{"sku": "PRD-1", "qty": 2, "weight": 1.25, "price": 4.59},
                  {"sku": "", "qty": -1, "weight": 0.0, "price": -1e300}] if i != 1 else [],
        "choice": [("io.example.generic.Line", {"sku": "x", "qty": 1, "weight": 2.5,
                                                "price": 0.5}),
                   ("io.example.generic.Kind", "C"), None, "a string", [1, -2, 3]][i % 5],
        "maybe_line": None if i % 2 else {"sku": "m", "qty": 3, "weight": 0.5, "price": 3.0},
        "nested": {"x": [None, 1.5, None], "y": []},
    }


GENERIC = [
    ("generic.everything.v1", EVERYTHING, [everything(i) for i in range(5)]),
    ("generic.levels.v1", LEVELS, [{"cpu": 0.75, "disk": ("io.example.generic.Level", "HIGH"),
                                    "net": None}, {}]),
    ("generic.tree.v1", TREE, [{"label": "root", "children": [
        {"label": "a", "children": []},
        {"label": "b", "children": [{"label": "b1", "children": []}]}]}]),
]

LOAN = {
    "loan_id": "7d3f2c1a-9b8e-4f6d-a5c4-3b2a1f0e9d8c",
    "isbn": "978-0-00-000000-2",
    "copies": 2,
    "kind": "READING_ROOM",
    "due": 1_763_769_600_123,
    "note": "fragile — Ünïcode",
    "renewals": [{"at": 1, "days": 14}, {"at": -5, "days": 0}],
}
MEMBER = {
    "type": 7_000_000_000,
    "name": "Ada",
    "photo": b"\x00\x01\xfe\xff",
    "signature": None,
    "card": b"\x01\x02\x03\x04",
}
FINE = {"loan_id": "x", "cents": 250}
FINE_SCHEMA = {"type": "record", "name": "Fine", "namespace": "org.example.library",
               "fields": [{"name": "loan_id", "type": "string"},
                          {"name": "cents", "type": "long"}]}


def fixture(name):
    return (FIXTURES / name).read_text()


def is_tree(schema):
    """fastavro's JSON encoder and decoder recurse without end on a recursive schema; TREE has
    only records, arrays and strings, whose JSON encoding is plain JSON."""
    return isinstance(schema, dict) and schema.get("name") == "Tree"


def json_encoding(schema, value):
    """value in Avro's JSON encoding, by fastavro's json_writer (one record, no newline)."""
    if is_tree(schema):
        return json.loads(json.dumps(value))
    out = io.StringIO()
    fastavro.json_writer(out, fastavro.parse_schema(schema), [value])
    return json.loads(out.getvalue())


def writer_schema(client, data):
    schema_id = int.from_bytes(data[1:5], "big")
    return json.loads(client.get_schema(schema_id).schema_str)


def read_named(schema, data):
    """The body of data as fastavro reads it, with union branches of named types named."""
    return fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(schema), None,
                                      return_named_type=True)


def serialize(client, schema, topic, value, strategy=None):
    conf = {"auto.register.schemas": True}
    if strategy is not None:
        conf["subject.name.strategy"] = strategy
    serializer = AvroSerializer(client, json.dumps(schema) if not isinstance(schema, str)
                                else schema, conf=conf)
    return serializer(value, SerializationContext(topic, MessageField.VALUE))


def generic_write(client, out):
    with open(out / "generic.jsonl", "w") as f:
        for topic, schema, values in GENERIC:
            for value in values:
                data = serialize(client, schema, topic, value)
                # The value as read back (a float is then what its 32 bits hold).
                line = {"topic": topic, "payload": data.hex(),
                        "json": json_encoding(schema, read_named(schema, data))}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")


def generic_read(client, inp):
    deserializer = AvroDeserializer(client)
    # Split on "\n" only: the JSON holds U+001C, U+0085 and others that splitlines() splits on.
    for line in filter(None, (inp / "rust_generic.jsonl").read_text().split("\n")):
        item = json.loads(line)
        data = bytes.fromhex(item["payload"])
        confluent = deserializer(data, SerializationContext("any", MessageField.VALUE))
        schema = writer_schema(client, data)
        plain = fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(schema),
                                           None)
        if confluent != plain:
            sys.exit(f"AvroDeserializer and fastavro disagree: {confluent!r} != {plain!r}")
        from_json = item["json"] if is_tree(schema) else next(fastavro.json_reader(
            io.StringIO(json.dumps(item["json"])), fastavro.parse_schema(schema)))
        if from_json != confluent:
            sys.exit(f"the JSON given reads as {from_json!r}, the payload as {confluent!r}")
        print(json.dumps(json_encoding(schema, read_named(schema, data)), ensure_ascii=False))


def families_write(client, out):
    loan, member = json.loads(fixture("library.loan.v1.avsc")), json.loads(
        fixture("library.member.v1.avsc"))
    topic = "library.events.v1"
    for name, strategy in [("topic_record", topic_record_subject_name_strategy),
                           ("record", record_subject_name_strategy)]:
        lines = [serialize(client, loan, topic, LOAN, strategy).hex(),
                 serialize(client, member, topic, MEMBER, strategy).hex()]
        (out / f"{name}.hex").write_text("\n".join(lines) + "\n")
    union = [loan, member]
    lines = [serialize(client, union, "library.union.v1", ("org.example.library.Loan", LOAN)),
             serialize(client, union, "library.union.v1", ("org.example.library.Member", MEMBER))]
    (out / "union.hex").write_text("\n".join(d.hex() for d in lines) + "\n")
    unknown = serialize(client, FINE_SCHEMA, topic, FINE, topic_record_subject_name_strategy)
    (out / "unknown.hex").write_text(unknown.hex() + "\n")


def families_read(client, inp):
    deserializer = AvroDeserializer(client)
    for line in (inp / "rust_family.hex").read_text().split():
        data = bytes.fromhex(line)
        confluent = deserializer(data, SerializationContext("library.events.v1",
                                                            MessageField.VALUE))
        schema = writer_schema(client, data)
        named = fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(schema),
                                           None, return_record_name=True)
        if isinstance(schema, list):
            record, value = named
            branch = next(b for b in schema
                          if f"{b.get('namespace', '')}.{b['name']}".lstrip(".") == record)
        else:
            record = f"{schema.get('namespace', '')}.{schema['name']}".lstrip(".")
            value, branch = named, schema
        if value != confluent:
            sys.exit(f"AvroDeserializer and fastavro disagree: {confluent!r} != {value!r}")
        schema_id = int.from_bytes(data[1:5], "big")
        subjects = sorted(f"{v.subject}/{v.version}" for v in
                          client.get_schema_versions(schema_id))
        print(json.dumps({"record": record, "subjects": subjects,
                          "json": json_encoding(branch, value)}, ensure_ascii=False))


REFS_TOPIC = "library.refs.v1"
MEMBER_WITH_LOAN = {
    "type": "record", "name": "Member", "namespace": "org.example.library",
    "fields": [*json.loads(fixture("library.member.v1.avsc"))["fields"],
               {"name": "last_loan", "type": ["null", "org.example.library.Loan"],
                "default": None}]}


def register_union_of_references(client):
    """The three subjects union-refs-write describes; returns the union's parsed schema (for
    fastavro, its references resolved)."""
    loan_text = fixture("library.loan.v1.avsc")
    loan_ref = SchemaReference("org.example.library.Loan", "org.example.library.Loan", 1)
    client.register_schema("org.example.library.Loan", Schema(loan_text, "AVRO"))
    client.register_schema("org.example.library.MemberWithLoan",
                           Schema(json.dumps(MEMBER_WITH_LOAN), "AVRO", [loan_ref]))
    member_ref = SchemaReference("org.example.library.Member",
                                 "org.example.library.MemberWithLoan", 1)
    union = json.dumps(["org.example.library.Member", "org.example.library.Loan"])
    client.register_schema(f"{REFS_TOPIC}-value", Schema(union, "AVRO", [member_ref, loan_ref]))
    # The same union written out by hand: Loan defined where first used, named after.
    member = {**MEMBER_WITH_LOAN, "fields": [
        *MEMBER_WITH_LOAN["fields"][:-1],
        {"name": "last_loan", "type": ["null", json.loads(loan_text)], "default": None}]}
    return fastavro.parse_schema([member, "org.example.library.Loan"])


def union_json(parsed, value):
    out = io.StringIO()
    fastavro.json_writer(out, parsed, [value])
    return json.loads(out.getvalue())


def union_refs_write(client, out):
    parsed = register_union_of_references(client)
    serializer = AvroSerializer(client, None, conf={"auto.register.schemas": False,
                                                    "use.latest.version": True})
    values = [("org.example.library.Loan", LOAN),
              ("org.example.library.Member", {**MEMBER, "last_loan": LOAN}),
              ("org.example.library.Member", {**MEMBER, "last_loan": None})]
    with open(out / "union_refs.jsonl", "w") as f:
        for record, value in values:
            data = serializer(value, SerializationContext(REFS_TOPIC, MessageField.VALUE))
            read = fastavro.schemaless_reader(io.BytesIO(data[5:]), parsed, None,
                                              return_named_type=True)
            line = {"payload": data.hex(), "record": record, "json": union_json(parsed, read)}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


def union_refs_read(client, inp):
    parsed = register_union_of_references(client)
    deserializer = AvroDeserializer(client)
    for line in (inp / "rust_union_refs.hex").read_text().split():
        data = bytes.fromhex(line)
        confluent = deserializer(data, SerializationContext(REFS_TOPIC, MessageField.VALUE))
        plain = fastavro.schemaless_reader(io.BytesIO(data[5:]), parsed, None)
        if plain != confluent:
            sys.exit(f"AvroDeserializer and fastavro disagree: {confluent!r} != {plain!r}")
        named = fastavro.schemaless_reader(io.BytesIO(data[5:]), parsed, None,
                                           return_named_type=True)
        print(json.dumps({"record": named[0], "json": union_json(parsed, named)},
                         ensure_ascii=False))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    mode, url, directory = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    client = SchemaRegistryClient({"url": url})
    {"generic-write": generic_write, "generic-read": generic_read,
     "families-write": families_write, "families-read": families_read,
     "union-refs-write": union_refs_write, "union-refs-read": union_refs_read,
     }[mode](client, directory)
    print("generic_and_families: OK")


if __name__ == "__main__":
    main()
