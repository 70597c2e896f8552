"""The CLI as a debugging user meets it, against a real server: health, eval-batch, `call` through reflection (no
grpcurl needed), writes that change nothing, document problems one per line, and a port already in use."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from harness import ServerProcess

PHARMACIST = {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001}


def test_health_exits_zero_when_serving(server: ServerProcess) -> None:
    done = server.cli("health")
    assert (done.returncode, done.stdout.strip()) == (0, "SERVING")
    done = server.cli("health", "verdict.v1.DecisionService", "--json")
    assert json.loads(done.stdout)["status"] == "SERVING"


def test_eval_batch_reads_json_lines(server: ServerProcess) -> None:
    lines = "\n".join(json.dumps(facts) for facts in ({"role": "DOCTOR"}, PHARMACIST)) + "\n"
    done = server.cli("eval-batch", "pharmacist.otc_block", input_text=lines)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        '0: {"action": "SHOW"}  [the default]',
        '1: {"action": "HIDE", "reason": "otc"}  [block-otc]',
    ]
    done = server.cli("eval-batch", "pharmacist.otc_block", input_text='[{"role": "DOCTOR"}, 3]')
    assert done.returncode == 2 and "entry 2 must be a JSON object" in done.stderr


def test_call_invokes_any_method_through_reflection(server: ServerProcess) -> None:
    request = {"rule_set": "pharmacist.otc_block", "facts_json": json.dumps(PHARMACIST)}
    done = server.cli("call", "verdict.v1.DecisionService/Evaluate", "-d", json.dumps(request))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["result"] == {"action": "HIDE", "reason": "otc"} and answer["matchedRules"] == ["block-otc"]
    assert "Loading descriptors" not in done.stderr
    listed = server.cli("call", "verdict.v1.AdminService.ListDocuments", "-d", '{"kind": "RouteTable"}')
    assert listed.returncode == 0, listed.stderr  # the admin token goes with AdminService calls
    assert {d["name"] for d in json.loads(listed.stdout)["documents"]} >= {"order-events"}


def test_call_names_what_is_wrong(server: ServerProcess) -> None:
    missing = server.cli("call", "verdict.v1.DecisionService/Nope")
    assert missing.returncode == 1 and "has no method Nope (it has Evaluate, EvaluateBatch, Route)" in missing.stderr
    bad = server.cli("call", "verdict.v1.DecisionService/Evaluate", "-d", '{"no_such_field": 1}')
    assert bad.returncode == 2 and "does not fit verdict.v1.EvaluateRequest" in bad.stderr
    refused = server.cli("call", "verdict.v1.DecisionService/Evaluate", "-d", '{"rule_set": "nope"}')
    assert refused.returncode == 1 and refused.stderr.startswith("verdict: NOT_FOUND:")


def test_eval_says_how_the_result_was_reached(server: ServerProcess, tmp_path) -> None:
    default = server.cli("eval", "pharmacist.otc_block", "--facts", '{"role": "DOCTOR"}')
    assert "matched: (none: the default)" in default.stdout
    script = tmp_path / "script.yaml"
    script.write_text("kind: RuleSet\nname: cli.script\nscript: \"{'n': n + 1}\"\n")
    assert server.cli("rules", "put", str(script)).returncode == 0
    computed = server.cli("eval", "cli.script", "--facts", '{"n": 1}')
    assert computed.stdout.splitlines()[:3] == [
        '{"n": 2}',
        "rule set: cli.script v1",
        "computed by the rule set's script",
    ]
    adhoc = server.cli("eval", "--expression", "1 + 2")
    assert "matched" not in adhoc.stdout


def test_writes_that_change_nothing_say_so(server: ServerProcess, tmp_path) -> None:
    document = tmp_path / "same.yaml"
    document.write_text("kind: RuleSet\nname: cli.same\ndefault: 1\nscript: '1'\n")
    first = server.cli("rules", "put", str(document))
    again = server.cli("rules", "put", str(document))
    assert first.stdout.strip() == "stored RuleSet cli.same version 1"
    assert again.stdout.strip() == "unchanged: RuleSet cli.same is still version 1 (same content)"
    table = tmp_path / "table.yaml"
    table.write_text("kind: RouteTable\nname: cli.table\ntopic: cli.t\nsystems:\n  - system: a\n    target: a.in\n")
    server.cli("rules", "put", str(table))
    off = server.cli("deselect", "cli.table", "a")
    off_again = server.cli("deselect", "cli.table", "a")
    assert off.stdout.strip() == "deselected a in cli.table (version 2)"
    assert off_again.stdout.strip() == "unchanged: a is already deselected in cli.table (version 2)"


def test_rules_put_prints_each_problem_on_its_own_line(server: ServerProcess, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            kind: RuleSet
            name: cli.bad
            rules:
              - id: a
                when: "1 +"
                then: 1
              - id: b
                when: "&&"
                then: 1
            """
        )
    )
    done = server.cli("rules", "put", str(bad))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == f"verdict: {bad} was not stored:"
    assert [line.split(":")[1:3] for line in lines[1:]] == [["5", "15"], ["8", "12"]]
    assert all("[SYNTAX_ERROR]" in line for line in lines[1:])


def test_a_port_in_use_suggests_another(server: ServerProcess, tmp_path) -> None:
    port = server.target.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "verdict_server", "serve", "--port", port, "--data", str(tmp_path / "d")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "choose another with --port N" in done.stderr
    assert "Traceback" not in done.stderr
