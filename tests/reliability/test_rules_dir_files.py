"""Issue 19 row 10: `--rules-dir` files are stat'ed before they are read; only regular files within the 1 MiB limit
are read, and never more than the limit. A symlink to /dev/zero (git stores symlinks), a FIFO and a 60 MB file are
listed as problems at no cost, and the good documents beside them are served."""

from __future__ import annotations

import os
import time
from pathlib import Path

from google.protobuf.struct_pb2 import Struct
from reliability.reliability_support import crash_lines, is_serving, proc_status_kib

from verdict.v1 import decision_pb2, decision_pb2_grpc

GOOD = "kind: RuleSet\nname: dir.good\ndefault: {ok: true}\nrules:\n  - id: r\n    when: x == 1\n    then: {ok: 1}\n"
STARTED_WITHIN_S = 30  # the 60 MB file took 51.5 s and 852 MB before the fix; a start is ~2 s
PEAK_RSS_BOUND_KIB = 256 * 1024


def test_hostile_files_in_the_rules_dir_are_refused_without_reading_them(start_server, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yaml").write_text(GOOD)
    (rules / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(rules / "pipe.yaml")
    with (rules / "big.yaml").open("w") as big:
        big.write("kind: RuleSet\nname: dir.big\n")
        line = "# " + "x" * 1022 + "\n"
        for _ in range(60 * 1024):
            big.write(line)
    started = time.monotonic()
    process = start_server("--rules-dir", str(rules))
    elapsed = time.monotonic() - started
    facts = Struct()
    facts.update({"x": 1})
    with process.channel() as channel:
        answer = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(rule_set="dir.good", facts=facts), timeout=10
        )
    assert answer.result.struct_value.fields["ok"].number_value == 1
    assert elapsed < STARTED_WITHIN_S
    assert is_serving(process)
    assert proc_status_kib(process.proc.pid, "VmHWM") < PEAK_RSS_BOUND_KIB
    log = process.stderr()
    assert crash_lines(log) == []
    assert "MemoryError" not in log
