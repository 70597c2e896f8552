"""The docs run: every ```python block and every grpcurl / buf curl command of README.md, docs/*.md and
examples/**/README.md is executed against a real, freshly seeded server, like a reader following the page.

Conventions (what the test may change in a snippet, and nothing else):
- A page is run top to bottom against its own new server (`verdict serve` on an empty data directory, so the
  examples are seeded, with `--allow-adhoc`). Its python blocks share one namespace, in order: a block may use
  `client` from the block before. The working directory is the repository root (where the README's commands run).
- The address `127.0.0.1:50051` / `localhost:50051` (the server's default) is replaced by the test server's. The
  server's data directory is in `$VERDICT_DATA`, as for a user who started it with that variable set (the default
  is `~/.local/share/verdict`); the docs read the admin token from there, the way they tell a user to.
- A python line `expression  # => VALUE` is checked: the expression must equal VALUE (a Python literal, else its repr
  must read VALUE). For `print(...)  # => TEXT` the printed line must be TEXT.
- A block that must not run (pseudo-code, an API summary) is fenced as ```python no-run. They are counted and must
  stay few (MAX_NO_RUN).
- Shell: a command starting with `grpcurl`, `buf curl`, `verdict call` or `verdict health` in a ```sh block runs in
  bash, preceded by the page's earlier `NAME=...` lines; `verdict` finds the server through `$VERDICT_TARGET`,
  as the CLI documents. Without a real grpcurl, tests/docs/grpcurl_via_buf.py stands in for it. Each
  must succeed; an Evaluate must reach a rule (a matched rule or a QL error) unless it is an ad-hoc expression, a
  batch must have one matched result, a Route must name a destination. When a ```json block follows a command
  directly, the answer must equal it (decision ids aside).
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import ROOT, ServerProcess

PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").glob("**/README.md")],
    key=lambda page: str(page),
)
DEFAULT_ADDRESSES = ("127.0.0.1:50051", "localhost:50051")
MAX_NO_RUN = 2
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
EXPECTATION = re.compile(r"#\s*=>\s*(?P<expected>.+?)\s*$")
COMMAND = re.compile(r"^(grpcurl|buf curl|verdict call|verdict health)\b")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
BUF = Path(sys.executable).with_name("buf")


@dataclass(frozen=True)
class Block:
    page: Path
    language: str
    flags: tuple[str, ...]
    body: str
    line: int  # of the first body line in the markdown file
    start: int  # offsets of the opening fence and just after the closing one
    end: int

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        language, *flags = match["info"].split() or [""]
        line = text.count("\n", 0, match.start("body")) + 1
        found.append(Block(page, language, tuple(flags), match["body"], line, match.start(), match.end()))
    return found


def with_test_address(code: str, target: str) -> str:
    for address in DEFAULT_ADDRESSES:
        code = code.replace(address, target)
    return code


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# ------------------------------------------------------------------------------------------------- python blocks


def python_pages() -> list[Path]:
    return [page for page in PAGES if any(b.language == "python" for b in blocks_of(page))]


def test_every_page_is_found_and_few_blocks_are_marked_no_run() -> None:
    python_blocks = [b for page in PAGES for b in blocks_of(page) if b.language == "python"]
    no_run = [b.where for b in python_blocks if "no-run" in b.flags]
    assert len(python_blocks) >= 6, [b.where for b in python_blocks]
    assert len(no_run) <= MAX_NO_RUN, f"too many ```python no-run blocks: {no_run}"


@pytest.fixture
def doc_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data", "--allow-adhoc") as server:
        yield server


@pytest.mark.parametrize("page", python_pages(), ids=page_id)
def test_python_blocks_run(page: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    runnable = [b for b in blocks_of(page) if b.language == "python" and "no-run" not in b.flags]
    target = ""
    if any(address in b.body for b in runnable for address in DEFAULT_ADDRESSES):  # else in-process only
        server: ServerProcess = request.getfixturevalue("doc_server")
        target = server.target
        monkeypatch.setenv("VERDICT_DATA", str(server.data_dir))
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "__docs__", "__check__": check_expectation}
    assert runnable, f"{page_id(page)} has only no-run python blocks"
    for block in runnable:
        tree = checked_tree(with_test_address(block.body, target), block)
        code = compile(tree, str(page), "exec")  # line numbers are the page's: tracebacks show the markdown
        exec(code, namespace)  # noqa: S102 - running the docs is the point


def checked_tree(source: str, block: Block) -> ast.Module:
    """The block's code, with every `expr  # => VALUE` line turned into a check of the value."""
    expectations = expectations_by_line(source)
    tree = ast.parse(source, block.where)
    tree = ExpectationChecker(expectations, block.where, block.line).visit(tree)
    ast.increment_lineno(tree, block.line - 1)  # tracebacks point at the markdown line
    return ast.fix_missing_locations(tree)


def expectations_by_line(source: str) -> dict[int, str]:
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and (match := EXPECTATION.match(token.string)):
            found[token.start[0]] = match["expected"]
    return found


class ExpectationChecker(ast.NodeTransformer):
    def __init__(self, expectations: dict[int, str], where: str, first_line: int) -> None:
        self.expectations = expectations
        self.where = where
        self.first_line = first_line
        self.used: set[int] = set()

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self.generic_visit(node)
        unused = sorted(set(self.expectations) - self.used)
        assert not unused, f"{self.where}: '# =>' on lines {unused} is not on an expression statement"
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        expected = self.expectations.get(node.end_lineno or node.lineno)
        if expected is None:
            return node
        self.used.add(node.end_lineno or node.lineno)
        is_print = isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "print"
        where = f"{self.where.rsplit(':', 1)[0]}:{self.first_line + node.lineno - 1}"
        thunk = ast.Lambda(args=ast.arguments([], [], None, [], [], None, []), body=node.value)
        call = ast.Call(
            ast.Name("__check__", ast.Load()),
            [thunk, ast.Constant(expected), ast.Constant(is_print), ast.Constant(where)],
            [],
        )
        return ast.copy_location(ast.Expr(call), node)


def check_expectation(thunk, expected: str, is_print: bool, where: str) -> None:
    if is_print:
        captured = io.StringIO()
        with redirect_stdout(captured):
            thunk()
        sys.stdout.write(captured.getvalue())
        assert captured.getvalue().rstrip("\n") == expected, f"{where}: printed {captured.getvalue()!r}"
        return
    value = thunk()
    try:
        wanted = ast.literal_eval(expected)
    except (ValueError, SyntaxError):
        assert repr(value) == expected, f"{where}: got {value!r}, the doc says {expected}"
    else:
        assert value == wanted, f"{where}: got {value!r}, the doc says {expected}"


# ---------------------------------------------------------------------------------------------- shell commands


@dataclass(frozen=True)
class Command:
    block: Block
    text: str  # continuation lines joined
    answer: str | None  # the ```json block that directly follows, if the block holds only this command


def commands_of(page: Path) -> tuple[list[str], list[Command]]:
    """The page's grpcurl / buf curl commands in order, and its NAME=value lines (kept with their position)."""
    blocks = blocks_of(page)
    text = page.read_text()
    steps: list[str] = []
    commands: list[Command] = []
    for index, block in enumerate(blocks):
        if block.language not in ("sh", "bash", "shell"):
            continue
        lines = logical_lines(block.body)
        runnable = [line for line in lines if COMMAND.match(line)]
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        answer_block = following if following and following.language == "json" else None
        if answer_block and text[block.end : answer_block.start].strip():
            answer_block = None  # prose between them: not the answer of this command
        for line in lines:
            if ASSIGNMENT.match(line):
                steps.append(line)
            elif COMMAND.match(line):
                answer = answer_block.body if answer_block and len(runnable) == 1 else None
                commands.append(Command(block, line, answer))
                steps.append(f"\0{len(commands) - 1}")
    return steps, commands


def logical_lines(body: str) -> list[str]:
    """The block's shell commands, each with its continuation lines and multi-line quoted arguments."""
    commands: list[str] = []
    pending = ""
    for line in body.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line.strip()
        if not pending.endswith("\\") and quotes_balanced(pending):
            commands.append(pending)
            pending = ""
    assert not pending, f"an unfinished shell command: {pending}"
    return commands


def quotes_balanced(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def shell_pages() -> list[Path]:
    return [page for page in PAGES if commands_of(page)[1]]


def test_shell_pages_are_found() -> None:
    names = {page_id(page) for page in shell_pages()}
    assert {"README.md", "docs/grpcurl.md", "examples/rule-sets/README.md"} <= names, names


@pytest.fixture(scope="module")
def grpcurl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH entry with `grpcurl`: the real one when installed, else the buf curl stand-in."""
    folder = tmp_path_factory.mktemp("bin")
    shim = folder / "grpcurl"
    if real := shutil.which("grpcurl"):
        shim.symlink_to(real)
    else:
        script = Path(__file__).with_name("grpcurl_via_buf.py")
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.mark.parametrize("page", shell_pages(), ids=page_id)
def test_shell_commands_succeed(page: Path, doc_server: ServerProcess, grpcurl_dir: Path) -> None:
    assert BUF.exists(), f"buf is a dev dependency (buf-bin) and should be at {BUF}"
    env = {
        **os.environ,
        "VERDICT_DATA": str(doc_server.data_dir),
        "VERDICT_TARGET": doc_server.target,
        "PATH": f"{grpcurl_dir}{os.pathsep}{BUF.parent}{os.pathsep}{os.environ['PATH']}",
        "BUF": str(BUF),
    }
    steps, commands = commands_of(page)
    assignments: list[str] = []
    for step in steps:
        if not step.startswith("\0"):
            assignments.append(with_test_address(step, doc_server.target))
            continue
        command = commands[int(step[1:])]
        script = "\n".join([*assignments, with_test_address(command.text, doc_server.target)])
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        where = f"{command.block.where}: {command.text}"
        assert done.returncode == 0, f"{where}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        check_answer(command, done.stdout, where)


def check_answer(command: Command, stdout: str, where: str) -> None:
    method = re.search(r"DecisionService/(\w+)", command.text)
    if method is None and command.answer is None:
        return
    answer = json.loads(stdout)
    if method is not None:
        check_decision(method[1], command.text, answer, where)
    if command.answer is not None:
        documented = json.loads(command.answer)
        assert without_decision_ids(answer) == without_decision_ids(documented), f"{where}\nanswered {stdout}"


def check_decision(method: str, text: str, answer: dict, where: str) -> None:
    if method == "Evaluate" and '"expression"' not in text:
        assert answer.get("matchedRules") or answer.get("error"), f"{where}: the facts reach no rule: {answer}"
    elif method == "EvaluateBatch":
        results = answer.get("results", [])
        assert any(r.get("matchedRules") for r in results), f"{where}: the facts reach no rule: {answer}"
    elif method == "Route":
        assert answer.get("destinations"), f"{where}: the message goes nowhere: {answer}"


def without_decision_ids(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_decision_ids(v) for k, v in value.items() if k != "decisionId"}
    if isinstance(value, list):
        return [without_decision_ids(v) for v in value]
    return value
