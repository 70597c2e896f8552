"""Helpers the reliability and soak tests share: raw byte-level calls, admin writes, process and store inspection.

Everything here talks to a server from outside (gRPC, /proc, the SQLite file opened read-only), like tests/harness.py.
"""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import ServerProcess

from verdict.v1 import admin_pb2, admin_pb2_grpc, decision_pb2

DB_FILE = "verdict.db"
DECISION_SERVICE = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"]
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
MODULES = {DECISION_SERVICE: decision_pb2, ADMIN_SERVICE: admin_pb2}
# What a server's stderr must never contain: grpc prints these when a handler raised instead of answering a status.
CRASH_MARKERS = ("Traceback (most recent call last)", "Exception calling application", "Exception iterating")


# raw calls -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawOutcome:
    code: grpc.StatusCode
    details: str
    response: bytes | None


def method_path(service, method_name: str) -> str:
    return f"/{service.full_name}/{method_name}"


def request_class(service, method_name: str) -> type:
    """The generated request message class of one RPC."""
    return getattr(MODULES[service], service.methods_by_name[method_name].input_type.name)


def raw_call(
    channel: grpc.Channel,
    path: str,
    payload: bytes,
    *,
    metadata: Sequence[tuple[str, str]] | None = None,
    timeout: float = 10.0,
) -> RawOutcome:
    """Sends payload as the serialized request, unchecked: whatever bytes a broken or hostile client could send."""
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        response = call(payload, timeout=timeout, metadata=metadata)
    except grpc.RpcError as err:
        return RawOutcome(err.code(), err.details() or "", None)
    return RawOutcome(grpc.StatusCode.OK, "", response)


# hand-made protobuf bytes: for shapes the Python library refuses to build (too deep, invalid UTF-8) --------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return varint(field_number << 3 | 2) + varint(len(payload)) + payload


def nested_struct_bytes(depth: int, key: bytes = b"x") -> bytes:
    """A serialized google.protobuf.Struct `{x: {x: {... {}}}}` nested `depth` levels."""
    struct = b""
    for _ in range(depth):
        value = length_delimited(5, struct)  # Value.struct_value
        entry = length_delimited(1, key) + length_delimited(2, value)  # map entry: key, value
        struct = length_delimited(1, entry)  # Struct.fields
    return struct


def nested_list_value_bytes(depth: int) -> bytes:
    """A serialized google.protobuf.Value `[[[...]]]` nested `depth` levels."""
    value = b""
    for _ in range(depth):
        value = length_delimited(6, length_delimited(1, value))  # Value.list_value { values: [value] }
    return value


# admin writes --------------------------------------------------------------------------------------------------------


class Admin:
    """Typed admin calls on one channel with the server's token."""

    def __init__(self, process: ServerProcess, channel: grpc.Channel | None = None) -> None:
        self.process = process
        self.channel = channel or process.channel()
        self.stub = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.metadata = process.admin_metadata()

    def put(self, content: str, expected_version: int = 0, author: str = "reliability", timeout: float = 10.0) -> int:
        request = admin_pb2.PutDocumentRequest(content=content, expected_version=expected_version, author=author)
        return self.stub.PutDocument(request, timeout=timeout, metadata=self.metadata).document.version

    def get(self, kind: str, name: str, version: int = 0) -> admin_pb2.Document:
        request = admin_pb2.GetDocumentRequest(kind=kind, name=name, version=version)
        return self.stub.GetDocument(request, timeout=10, metadata=self.metadata).document

    def history(self, kind: str, name: str) -> list[admin_pb2.Document]:
        request = admin_pb2.ListVersionsRequest(kind=kind, name=name, include_content=True)
        found: list[admin_pb2.Document] = []
        while True:
            page = self.stub.ListVersions(request, timeout=30, metadata=self.metadata)
            found.extend(page.documents)
            if not page.next_page_token:
                return found
            request.page_token = page.next_page_token

    def close(self) -> None:
        self.channel.close()


def rule_set(name: str, body: str) -> str:
    """A RuleSet document: the kind/name header followed by `body` (dedented YAML)."""
    return f"kind: RuleSet\nname: {name}\n" + textwrap.dedent(body)


# the server process from outside ---------------------------------------------------------------------------------------


SERVING = health_pb2.HealthCheckResponse.SERVING


def health_status(process: ServerProcess, service: str = "") -> int:
    with process.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def is_serving(process: ServerProcess) -> bool:
    return process.proc is not None and process.proc.poll() is None and health_status(process) == SERVING


def proc_status_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status in KiB: VmRSS (now) or VmHWM (the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def crash_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(marker in line for marker in CRASH_MARKERS)]


# the store file ------------------------------------------------------------------------------------------------------


def open_store_read_only(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data_dir / DB_FILE}?mode=ro", uri=True)


def store_problems(data_dir: Path) -> list[str]:
    """SQLite's integrity check, plus: every document's versions are exactly 1..N, each stored once."""
    conn = open_store_read_only(data_dir)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        for kind, name, low, high, count in conn.execute(
            "SELECT kind, name, MIN(version), MAX(version), COUNT(*) FROM documents GROUP BY kind, name"
        ):
            if low != 1 or high != count:
                problems.append(f"{kind} {name}: {count} rows hold versions {low}..{high}")
        for kind, name, version, count in conn.execute(
            "SELECT kind, name, version, COUNT(*) FROM documents GROUP BY kind, name, version HAVING COUNT(*) > 1"
        ):
            problems.append(f"{kind} {name}: version {version} stored {count} times")
        return problems
    finally:
        conn.close()
