"""`verdict serve` settings: flag > VERDICT_* environment > TOML file > default, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from verdict_server.cli import build_parser, load_serve_config
from verdict_server.service.config import ServeConfig


def _config(argv: list[str], environ: dict[str, str] | None = None) -> ServeConfig:
    return load_serve_config(build_parser().parse_args(["serve", *argv]), environ or {})


def test_defaults_are_the_embedded_local_server() -> None:
    config = _config([], {"VERDICT_DATA": "/tmp/verdict-defaults"})
    assert (config.host, config.port, config.workers, config.processes) == ("127.0.0.1", 50051, 16, 1)
    assert config.concurrency_limit() == 2048 and config.max_queue_ms == 1000 and config.problems() == []


def test_precedence_flag_over_environment_over_file(tmp_path: Path) -> None:
    file = tmp_path / "verdict.toml"
    file.write_text('[serve]\nworkers = 4\nport = 6000\nallow_adhoc = true\ndecision_log_mask = "pin"\n')
    config = _config(["--config", str(file), "--port", "7000"], {"VERDICT_WORKERS": "8"})
    assert config.port == 7000  # flag
    assert config.workers == 8  # environment
    assert config.allow_adhoc is True and config.decision_log_mask == "pin"  # file
    assert config.masked_fields() == frozenset({"pin"})


def test_data_has_a_short_flag(tmp_path: Path) -> None:
    assert _config(["--data", str(tmp_path)]).data_dir == tmp_path


def test_bad_values_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="VERDICT_WORKERS: expected int"):
        _config([], {"VERDICT_WORKERS": "many"})
    file = tmp_path / "bad.toml"
    file.write_text("colour = 'blue'\n")
    with pytest.raises(SystemExit, match="unknown settings colour"):
        _config(["--config", str(file)])
    file.write_text("port = \n")
    with pytest.raises(SystemExit, match="not valid TOML"):
        _config(["--config", str(file)])


def test_settings_that_cannot_work_together_are_reported() -> None:
    config = ServeConfig(tls_cert=Path("c.pem"), processes=0, decision_log_sample=2.0)
    problems = " | ".join(config.problems())
    assert "--tls-cert and --tls-key" in problems
    assert "--processes" in problems and "--decision-log-sample" in problems
    assert "fixed --port" in " ".join(ServeConfig(processes=2, port=0).problems())


def test_json_log_lines_carry_level_logger_and_message() -> None:
    import json
    import logging

    from verdict_server.cli import JsonLogFormatter

    record = logging.LogRecord("verdict_server.service", logging.WARNING, __file__, 1, "worker %d died", (3,), None)
    entry = json.loads(JsonLogFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "verdict_server.service"
    assert entry["message"] == "worker 3 died" and entry["pid"] > 0 and entry["ts"]
