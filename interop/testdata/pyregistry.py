"""Drives a schema registry with Confluent's own Python client
(confluent_kafka.schema_registry.SchemaRegistryClient) and prints one JSON
object per step on stdout: {"step": name, "result": ...} or
{"step": name, "error": {"http": status, "code": error_code}}.

Usage: pyregistry.py URL SUBJECT
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

V1 = json.dumps({"type": "record", "name": "PageView", "namespace": "shop", "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"}]})
V2 = json.dumps({"type": "record", "name": "PageView", "namespace": "shop", "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"},
    {"name": "referrer", "type": "string", "default": ""}]})
V3 = json.dumps({"type": "record", "name": "PageView", "namespace": "shop", "fields": [
    {"name": "user", "type": "string"},
    {"name": "page", "type": "string"},
    {"name": "referrer", "type": "string", "default": ""},
    {"name": "device", "type": "string"}]})
INVALID = json.dumps({"type": "record", "name": "PageView", "fields": [{"name": "user"}]})


def step(name, fn):
    try:
        out = {"step": name, "result": fn()}
    except SchemaRegistryError as e:
        out = {"step": name, "error": {"http": e.http_status_code, "code": e.error_code}}
    print(json.dumps(out), flush=True)


def registered(r):
    return {"id": r.schema_id, "subject": r.subject, "version": r.version,
            "schema": json.loads(r.schema.schema_str)}


def main():
    url, subject = sys.argv[1], sys.argv[2]
    c = SchemaRegistryClient({"url": url})
    avro = lambda s: Schema(s, "AVRO")
    step("register-v1", lambda: c.register_schema(subject, avro(V1)))
    # A second client: no cache, so this asks the registry again.
    c2 = SchemaRegistryClient({"url": url})
    step("register-v1-again", lambda: c2.register_schema(subject, avro(V1)))
    step("compatible-v2", lambda: c.test_compatibility(subject, avro(V2)))
    step("register-v2", lambda: c.register_schema(subject, avro(V2)))
    step("compatible-v3", lambda: c.test_compatibility(subject, avro(V3)))
    step("register-v3", lambda: c.register_schema(subject, avro(V3)))
    step("register-invalid", lambda: c.register_schema(subject, avro(INVALID)))
    step("latest", lambda: registered(c.get_latest_version(subject)))
    step("version-1", lambda: registered(c.get_version(subject, 1)))
    step("lookup-v2", lambda: registered(c.lookup_schema(subject, avro(V2))))
    step("schema-by-id-1", lambda: json.loads(c2.get_schema(1).schema_str))
    step("subjects", lambda: c.get_subjects())
    step("versions", lambda: c.get_versions(subject))
    step("set-compatibility", lambda: c.set_compatibility(subject, "full"))
    step("get-compatibility", lambda: c.get_compatibility(subject))
    step("global-compatibility", lambda: c.get_compatibility())
    step("compatible-v3-full", lambda: c.test_compatibility(subject, avro(V3), version=1))
    step("delete-version-2", lambda: c.delete_version(subject, 2))
    step("versions-after-delete", lambda: c.get_versions(subject))
    # This client's permanent delete is a soft delete, then a permanent one.
    step("delete-subject-permanent", lambda: c.delete_subject(subject, permanent=True))
    step("delete-subject-again", lambda: c.delete_subject(subject))
    step("latest-after-delete", lambda: registered(c.get_latest_version(subject)))
    step("unknown-id", lambda: c2.get_schema(4711).schema_str)


main()
