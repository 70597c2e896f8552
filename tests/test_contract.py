"""The committed stubs in client/verdict/v1/ must be exactly what protos/ generates (scripts/gen_protos.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

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
