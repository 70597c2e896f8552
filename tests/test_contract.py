"""The contract in protos/: the committed stubs are exactly what it generates (scripts/gen_protos.py), it passes
`buf lint`, and it names its packages for the languages of the callers."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "client" / "verdict" / "v1"
# Lines that only record which generator version ran; everything else must match byte for byte.
VERSION_STAMPS = re.compile(
    r"^(# Protobuf Python Version:.*|GRPC_GENERATED_VERSION = .*|\s*\d+,\s*$|\s*'',\s*$)$", re.M
)


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _normalised(path: Path) -> str:
    return VERSION_STAMPS.sub("", path.read_text())


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a dev dependency) generates the stubs")
    _load_generator().generate(tmp_path)
    generated = sorted(p.name for p in (tmp_path / "verdict" / "v1").iterdir() if p.suffix in (".py", ".pyi"))
    assert generated, "protoc generated nothing"
    for name in generated:
        fresh = tmp_path / "verdict" / "v1" / name
        committed = COMMITTED / name
        assert committed.exists(), (
            f"{name} is generated from protos/ but not committed: run python scripts/gen_protos.py"
        )
        assert _normalised(committed) == _normalised(fresh), (
            f"{name} differs from protos/: run python scripts/gen_protos.py"
        )


PROTOS = ROOT / "protos"


def test_the_protos_pass_buf_lint() -> None:
    """The protobuf style guide's STANDARD rules (protos/buf.yaml), with buf from PyPI's buf-bin (a dev dependency)."""
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    assert buf, "buf is missing: pip install -e '.[dev]' installs buf-bin"
    done = subprocess.run([buf, "lint"], cwd=PROTOS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_file_names_its_package_for_java_go_and_csharp() -> None:
    from verdict.v1 import admin_pb2, decision_pb2

    for module in (admin_pb2, decision_pb2):
        options = module.DESCRIPTOR.GetOptions()
        assert options.java_package == "com.healthplatform.verdict.v1"
        assert options.java_multiple_files
        assert options.java_outer_classname.endswith("Proto")
        assert options.go_package.endswith("/verdict/v1;verdictv1")
        assert options.csharp_namespace == "Verdict.V1"


def test_enum_values_carry_their_enum_prefix() -> None:
    from verdict.v1 import decision_pb2

    for enum in decision_pb2.DESCRIPTOR.enum_types_by_name.values():
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
        assert all(value.name.startswith(prefix) for value in enum.values), enum.name


def test_docs_errors_lists_every_error_reason_with_its_code() -> None:
    """ErrorInfo reasons are contract: docs/errors.md must have a table row for each constant of service/errors.py."""
    from verdict_server.service import errors

    source = (ROOT / "server" / "verdict_server" / "service" / "errors.py").read_text()
    reasons = re.findall(r'^([A-Z_]+) = "\1"$', source, re.M)
    assert len(reasons) >= 20 and all(getattr(errors, reason) == reason for reason in reasons)
    rows = {
        match["reason"]: match["code"]
        for match in re.finditer(
            r"^\| `(?P<reason>[A-Z_]+)` \| (?P<code>[^|]+) \|", (ROOT / "docs/errors.md").read_text(), re.M
        )
    }
    codes = {code.name for code in grpc.StatusCode}
    assert sorted(set(reasons) - set(rows)) == [], "reasons missing from docs/errors.md"
    assert sorted(set(rows) - set(reasons)) == [], "docs/errors.md names reasons errors.py does not have"
    for reason, code in rows.items():
        assert set(re.findall(r"\b[A-Z_]{5,}\b", code)) <= codes and re.search(r"[A-Z_]{5,}", code), (reason, code)
