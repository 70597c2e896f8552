"""Fixtures for in-process routing tests: compile route-table text with the real QL engine, route messages."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from verdict_server.document import load_document
from verdict_server.routing import CompiledRouteTable, compile_route_table


@pytest.fixture(scope="session")
def engine():
    from verdict_server import ql

    return ql.Engine(stdlib=True)


@pytest.fixture
def compile_table(engine) -> Callable[..., CompiledRouteTable]:
    def compile_text(text: str, version: int = 1) -> CompiledRouteTable:
        return compile_route_table(load_document(textwrap.dedent(text)), engine, version)

    return compile_text
