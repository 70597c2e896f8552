"""Issue 19 row 13: every start-up failure is one line naming what to fix; a 0-byte database is seeded, not served
empty; the data directory is created 0700 and the database is 0600; a token file others can write is refused."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.struct_pb2 import Struct
from harness import ROOT
from reliability.reliability_support import DB_FILE, crash_lines

from verdict.v1 import decision_pb2, decision_pb2_grpc


def _failed_start(*args: str) -> list[str]:
    """Runs `verdict serve` that must not start; returns its stderr lines (it must exit non-zero)."""
    done = subprocess.run(
        [sys.executable, "-m", "verdict_server", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert crash_lines(done.stderr) == [] and "Traceback" not in done.stderr, done.stderr
    return [line for line in lines if "[pid " not in line]  # the failure, not the log lines before it


@pytest.mark.parametrize("damage", ["garbage", "directory", "unreadable"])
def test_a_database_that_cannot_be_opened_stops_the_start_with_one_line(tmp_path: Path, damage: str) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    db = data / DB_FILE
    if damage == "garbage":
        db.write_bytes(b"this is not an SQLite database, just some text " * 100)
    elif damage == "directory":
        db.mkdir()
    else:
        db.write_bytes(b"")
        db.chmod(0)
        if subprocess.run(["test", "-r", str(db)]).returncode == 0:  # root reads anything
            db.chmod(0o600)
            db.write_bytes(b"\x00" * 4096 + b"SQLite format 3\x00")
    lines = _failed_start("--data", str(data))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"verdict: cannot open the database {db}")


def test_a_zero_byte_database_is_seeded_like_a_new_one(start_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / DB_FILE).touch()
    process = start_server(data_dir=data)
    facts = Struct()
    facts.update({"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001})
    with process.channel() as channel:
        answer = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=facts), timeout=10
        )
    assert answer.result.struct_value.fields["action"].string_value == "HIDE"


def test_a_new_data_directory_and_its_files_are_private(start_server, tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    # The harness makes its own data directory; the later --data wins, so this one is made by the server.
    process = start_server("--data", str(data), data_dir=tmp_path / "harness")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in (DB_FILE, "admin.token"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert process.stop() == 0


def test_a_token_file_others_can_write_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a-token-long-enough-0123456789\n")
    token.chmod(0o666)
    lines = _failed_start("--data", str(tmp_path / "data"), "--admin-token-file", str(token))
    assert len(lines) == 1, lines
    assert str(token) in lines[0] and "writable by other users" in lines[0]
