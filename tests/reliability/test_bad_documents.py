"""Hostile and broken documents: refused with INVALID_ARGUMENT and a position, never executed, never a hang.

Each document goes to ValidateDocument (every problem, with line and column) and to PutDocument (the same refusal as
a status); afterwards nothing was stored, the server is SERVING and its peak memory stayed small.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from harness import ServerProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.reliability_support import (
    ADMIN_SERVICE,
    Admin,
    crash_lines,
    is_serving,
    length_delimited,
    method_path,
    proc_status_kib,
    raw_call,
)

from verdict.v1 import admin_pb2

PEAK_RSS_BOUND_KIB = 512 * 1024  # a bomb that expanded would need far more than this
EXAMPLES = 150


@pytest.fixture(scope="module")
def document_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("documents") / "data") as process:
        yield process
        assert is_serving(process)
        assert proc_status_kib(process.proc.pid, "VmHWM") < PEAK_RSS_BOUND_KIB
    assert crash_lines(process.stderr()) == []


@pytest.fixture(scope="module")
def admin(document_server: ServerProcess) -> Iterator[Admin]:
    client = Admin(document_server)
    yield client
    client.close()


def _validate(admin: Admin, content: str) -> admin_pb2.ValidateDocumentResponse:
    request = admin_pb2.ValidateDocumentRequest(content=content)
    return admin.stub.ValidateDocument(request, timeout=10, metadata=admin.metadata)


def _refused(admin: Admin, content: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        admin.put(content)
    return raised.value


def _name_is_free(admin: Admin, name: str) -> bool:
    with pytest.raises(grpc.RpcError) as raised:
        admin.get("RuleSet", name)
    return raised.value.code() == grpc.StatusCode.NOT_FOUND


# YAML bombs: anchors and aliases ------------------------------------------------------------------------------------


def _billion_laughs(levels: int = 9) -> str:
    lines = ['kind: RuleSet\nname: bomb.laughs\nl0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    lines.append(f"default: *l{levels - 1}\nrules: []")
    return "\n".join(lines) + "\n"


def _many_aliases() -> str:
    # 150,000 uses of one anchor: under the size limit as text, far over the value limit once expanded.
    return f"kind: RuleSet\nname: bomb.aliases\nconstants:\n  a: &a [1, 2]\ndefault: [{', '.join(['*a'] * 150_000)}]\n"


def _alias_cycle() -> str:
    return "kind: RuleSet\nname: bomb.cycle\ndefault: &loop [*loop]\nrules: []\n"


@pytest.mark.parametrize(
    ("bomb", "reason"),
    [(_billion_laughs, "aliases"), (_many_aliases, "aliases"), (_alias_cycle, "nests deeper")],
    ids=["billion-laughs", "many-aliases", "alias-cycle"],
)
def test_yaml_bombs_are_refused_without_expanding(admin: Admin, bomb, reason: str) -> None:
    content = bomb()
    validation = _validate(admin, content)
    assert not validation.ok and validation.errors
    error = _refused(admin, content)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in error.details(), error.details()
    assert _name_is_free(admin, content.split("name: ")[1].split("\n")[0])


def test_aliases_of_a_large_value_cannot_amplify_a_document(admin: Admin) -> None:
    content = (
        f"kind: RuleSet\nname: bomb.amplified\nconstants:\n  a: &a '{'x' * 400_000}'\n"
        f"default: [{', '.join(['*a'] * 1_000)}]\nrules:\n  - id: r\n    then: 1\n"
    )
    error = _refused(admin, content)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# size and nesting ---------------------------------------------------------------------------------------------------


def test_a_document_over_one_mebibyte_is_refused_with_the_limit(admin: Admin) -> None:
    content = "kind: RuleSet\nname: big.doc\nrules: []\ndescription: " + "x" * (1024 * 1024 + 1) + "\n"
    error = _refused(admin, content)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1048576" in error.details(), error.details()


def test_a_document_over_the_message_limit_is_resource_exhausted(admin: Admin) -> None:
    error = _refused(admin, "kind: RuleSet\nname: huge.doc\ndescription: " + "x" * (5 * 1024 * 1024))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    "content",
    [
        "kind: RuleSet\nname: deep.flow\nrules: []\ndefault: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "kind: RuleSet\nname: deep.map\nrules: []\ndefault: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
        "kind: RuleSet\nname: deep.block\nrules: []\ndefault:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 300)),
    ],
    ids=["flow-lists", "flow-maps", "block-maps"],
)
def test_deep_nesting_is_refused_with_a_position(admin: Admin, content: str) -> None:
    validation = _validate(admin, content)
    assert not validation.ok
    assert all(error.line > 0 and error.column > 0 for error in validation.errors), validation.errors
    assert _refused(admin, content).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_too_many_rules_is_refused(admin: Admin) -> None:
    rules = "".join(f"  - id: r{i}\n    then: {i}\n" for i in range(1_500))
    error = _refused(admin, f"kind: RuleSet\nname: many.rules\nrules:\n{rules}")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "rules" in error.details()


# wrong types and unsafe tags ----------------------------------------------------------------------------------------

WRONG = {
    "hit-policy-number": ("hit_policy: 5\nrules: []\n", 3),
    "rules-string": ("rules: everything\n", 3),
    "rule-not-mapping": ("rules:\n  - 1\n  - [a, b]\n", 4),
    "timeout-text": ("timeout_ms: fast\nrules: []\n", 3),
    "when-number": ("rules:\n  - id: r\n    when: 12\n    then: 1\n", 5),
    "binary-tag": ("default: !!binary aGVsbG8=\nrules: []\n", 3),
    "set-tag": ("default: !!set {a, b}\nrules: []\n", 3),
    "local-tag": ("default: !thing 1\nrules: []\n", 3),
    "complex-key": ("? [a, b]\n: 1\nrules: []\n", 3),
    "merge-key": ("base: &b {x: 1}\nother:\n  <<: *b\nrules: []\n", 5),
    "duplicate-key": ("rules: []\nrules: []\n", 4),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_wrong_types_are_named_with_line_and_column(admin: Admin, case: str) -> None:
    body, line = WRONG[case]
    content = f"kind: RuleSet\nname: wrong.{case}\n{body}"
    validation = _validate(admin, content)
    assert not validation.ok
    assert line in {error.line for error in validation.errors}, validation.errors
    assert all(error.message for error in validation.errors)
    error = _refused(admin, content)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"line {line}" in error.details(), error.details()


def test_the_envelope_must_have_the_right_types(admin: Admin) -> None:
    for content in ("kind: [RuleSet]\nname: x\n", "kind: RuleSet\nname: {a: 1}\n", "- just\n- a list\n", "42\n"):
        validation = _validate(admin, content)
        assert not validation.ok and validation.errors, content
        assert _refused(admin, content).code() == grpc.StatusCode.INVALID_ARGUMENT


ONE_RULE = "rules:\n  - id: r\n    then: 1\n"
PYTHON_TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:builtins.object {{}}",
]


@pytest.mark.parametrize("tag", PYTHON_TAGS)
def test_python_tags_are_refused_and_never_run(admin: Admin, tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    content = f"kind: RuleSet\nname: tags.python\ndefault: {tag.format(marker=marker)}\n{ONE_RULE}"
    validation = _validate(admin, content)
    assert not validation.ok
    assert [(e.line, e.column) for e in validation.errors] == [(3, 10)], validation.errors
    assert "tag" in validation.errors[0].message
    assert _refused(admin, content).code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not marker.exists()


# text encodings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc0\xaf", b"caf\xe9"])
def test_non_utf8_content_is_invalid_argument(document_server: ServerProcess, bad: bytes) -> None:
    payload = length_delimited(1, b"kind: RuleSet\nname: enc.bad\ndescription: " + bad + b"\nrules: []\n")
    with document_server.channel() as channel:
        for method in ("PutDocument", "ValidateDocument"):
            outcome = raw_call(
                channel,
                method_path(ADMIN_SERVICE, method),
                payload,
                metadata=document_server.admin_metadata(),
            )
            assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (method, outcome)
            assert outcome.details


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\ufffe"])
def test_control_characters_are_refused(admin: Admin, control: str) -> None:
    content = f"kind: RuleSet\nname: enc.control\ndescription: a{control}b\n{ONE_RULE}"
    validation = _validate(admin, content)
    assert not validation.ok and "control characters" in validation.errors[0].message
    error = _refused(admin, content)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "control characters" in error.details()


def test_control_characters_are_refused_with_their_position(admin: Admin) -> None:
    content = f"kind: RuleSet\nname: enc.control\ndescription: a\x00b\n{ONE_RULE}"
    validation = _validate(admin, content)
    assert [(error.line, error.column) for error in validation.errors] == [(3, 15)], validation.errors


# generated documents --------------------------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
FIELDS = ["hit_policy", "default", "on_error", "timeout_ms", "constants", "functions", "rules", "script", "other"]


@SETTINGS
@given(fields=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5), as_json=st.booleans())
def test_validate_and_put_agree_on_generated_documents(admin: Admin, fields: dict, as_json: bool) -> None:
    data = {"kind": "RuleSet", "name": "gen.document", **fields}
    content = json.dumps(data) if as_json else yaml.safe_dump(data, allow_unicode=True)
    validation = _validate(admin, content)
    try:
        admin.put(content)
        stored = True
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
        stored = False
    assert validation.ok == stored, (content, list(validation.errors))
    for error in validation.errors:
        assert error.message and error.line >= 0 and error.column >= 0


@SETTINGS
@given(text=st.text(max_size=200))
def test_arbitrary_text_gets_a_validation_answer(admin: Admin, text: str) -> None:
    validation = _validate(admin, text)
    assert validation.ok or validation.errors
