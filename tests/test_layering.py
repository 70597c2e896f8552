"""The dependency rule of docs/architecture.md, checked: every import of every module (also the ones inside
functions) points from the edge inwards, and the libraries of the edge (gRPC, protobuf, metrics, AMQP) stay there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server" / "verdict_server"
SDK = ROOT / "client" / "verdict"

# layer -> the layers it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "ql": set(),
    "locations": set(),
    "store": set(),
    "document": {"ql"},
    "rules": {"document", "ql"},
    "routing": {"document", "ql"},
    "service": {"ql", "document", "locations", "store", "rules", "routing"},
    "forward": {"ql", "document", "locations", "store", "rules", "routing", "service"},
    "commands": {"locations"},
    "cli": {"commands", "forward", "service", "store", "locations"},
    "__main__": {"cli"},
    "__init__": set(),
}

# third-party top-level packages that belong to the edge, and the layers allowed to use them
EDGE_LIBRARIES: dict[str, set[str]] = {
    "grpc": {"service", "forward", "commands"},
    "grpc_health": {"service", "commands"},
    "grpc_reflection": {"service", "commands"},
    "grpc_status": {"service"},
    "google": {"service", "forward", "commands"},  # google.protobuf, google.rpc
    "prometheus_client": {"service", "forward", "cli"},
    "pika": {"forward"},
    "verdict": {"commands", "service", "forward"},  # the SDK's generated stubs (verdict.v1)
}


def _modules(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def _dotted(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _package_of(path: Path, root: Path) -> list[str]:
    return _dotted(path, root) if path.name == "__init__.py" else _dotted(path, root)[:-1]


def imported_modules(path: Path, root: Path) -> set[str]:
    """Absolute dotted names of everything `path` imports; `from .. import ql` yields `verdict_server.ql`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = (node.module or "").split(".")
            else:
                package = _package_of(path, root)
                base = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            if node.module is None:  # `from .. import ql`: the names are modules
                found.update(".".join([*base, alias.name]) for alias in node.names)
            else:
                found.add(".".join(base))
    return found


def layer_of(path: Path) -> str:
    first = path.relative_to(SERVER).parts[0]
    return first.removesuffix(".py")


def _server_modules() -> list[Path]:
    return _modules(SERVER)


def test_every_server_module_belongs_to_a_known_layer() -> None:
    unknown = {layer_of(path) for path in _server_modules()} - set(ALLOWED)
    assert not unknown, f"new top-level modules need a place in the dependency rule: {sorted(unknown)}"


@pytest.mark.parametrize("path", _server_modules(), ids=lambda path: str(path.relative_to(SERVER)))
def test_imports_point_inwards(path: Path) -> None:
    layer = layer_of(path)
    wrong = []
    for name in imported_modules(path, SERVER):
        parts = name.split(".")
        if parts[0] == "verdict_server":
            target = parts[1] if len(parts) > 1 else "__init__"
            if target != layer and target not in ALLOWED[layer]:
                wrong.append(f"{name} ({layer} may not import {target})")
        elif parts[0] in EDGE_LIBRARIES and layer not in EDGE_LIBRARIES[parts[0]]:
            wrong.append(f"{name} (only {sorted(EDGE_LIBRARIES[parts[0]])} may use {parts[0]})")
    assert not wrong, f"{path.relative_to(ROOT)} imports against the dependency rule:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", _modules(SDK), ids=lambda path: str(path.relative_to(SDK)))
def test_the_sdk_imports_nothing_of_the_server(path: Path) -> None:
    server_imports = {name for name in imported_modules(path, SDK) if name.split(".")[0] == "verdict_server"}
    assert not server_imports, f"{path.relative_to(ROOT)} imports {sorted(server_imports)}"


def test_the_checker_sees_relative_imports() -> None:
    """Guards the guard: a module known to import the QL package relatively is seen doing so."""
    names = imported_modules(SERVER / "routing" / "table.py", SERVER)
    assert "verdict_server.ql" in names and "verdict_server.document" in names
