"""`verdict serve | forward | eval | route | rules ... | select | deselect`.

Every `serve` (and `forward`) setting can come from, in order of precedence: a flag (`--max-concurrent-rpcs 64`), an environment
variable (`VERDICT_MAX_CONCURRENT_RPCS=64`), a TOML config file (`--config verdict.toml`, key `max_concurrent_rpcs`),
or the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any, get_type_hints

from . import commands
from .forward.config import FORWARD_HELP, ForwardConfig
from .service.config import ServeConfig

SERVE_HELP = {
    "host": "address to listen on",
    "port": "port to listen on (0 = any free port)",
    "data_dir": "data directory of the embedded SQLite store and the admin token",
    "store": "store URL: postgresql://USER:PASSWORD@HOST:PORT/DB, sqlite:///PATH/verdict.db or dir:///PATH"
    " (default: sqlite in --data)",
    "rules_dir": "serve a read-only folder of YAML documents instead of the SQLite store (reloaded on change)",
    "admin_token_file": "file holding the admin bearer token (default: DATA_DIR/admin.token, created if absent)",
    "workers": "RPC worker threads",
    "max_concurrent_rpcs": "calls accepted at once (running or queued) before new ones get RESOURCE_EXHAUSTED "
    "(default max(2048, 4 x workers))",
    "max_queue_ms": "a call that waited longer than this for a worker thread gets RESOURCE_EXHAUSTED instead of running",
    "max_message_bytes": "largest request or response message",
    "allow_adhoc": "allow Evaluate with an ad-hoc QL expression",
    "poll_interval_s": "seconds between checks of the store's change marker",
    "grace_s": "seconds in-flight calls get to finish on SIGTERM/SIGINT",
    "seed": "fill a brand-new store from examples/",
    "keepalive_time_s": "seconds between keepalive pings the server sends on idle connections",
    "keepalive_timeout_s": "seconds to wait for a keepalive ping's answer before closing the connection",
    "processes": "serving processes sharing the port with SO_REUSEPORT (pre-forked, restarted if they die)",
    "tls_cert": "PEM server certificate (enables TLS; needs --tls-key)",
    "tls_key": "PEM private key of --tls-cert",
    "tls_client_ca": "PEM CA bundle: require client certificates signed by it (mutual TLS)",
    "metrics_port": "serve Prometheus metrics on this port (0 = any free port; absent = off)",
    "decision_log": "append one JSON line per sampled decision to this file ('-' = stdout)",
    "decision_log_sample": "fraction of decisions written to the decision log (0..1)",
    "decision_log_mask": "comma-separated fact names (or dotted paths) whose values the decision log masks",
    "max_run_memory_mb": "the largest memory budget (MiB) one QL run may have, whatever its rule set asks",
    "max_batch_ms": "the longest one EvaluateBatch may run (it also stops at the caller's deadline)",
    "pinned_cache_mb": "estimated MiB of compiled old rule-set versions (Evaluate with a version) kept in memory",
    "max_connections": "TCP connections accepted at once (lowered to fit the open-file limit, which is raised to hard)",
    "handshake_timeout_s": "seconds a new connection gets to finish its HTTP/2 (and TLS) handshake before it is closed",
    "max_connection_idle_s": "seconds a connection without calls is kept open",
}
FLAG_ALIASES = {"data_dir": ["--data"]}  # the short name the README and operators use


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if args.log_format == "json" else logging.Formatter(TEXT_LOG_FORMAT))
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), handlers=[handler])
    return args.run(args)


TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d]: %(message)s"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (for log shippers): time, level, logger, pid, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verdict", description="Verdict: a gRPC decision service.")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("VERDICT_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("VERDICT_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="server log lines as text or as one JSON object per line",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser(
        "serve", help="run the server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    serve_parser.add_argument("--config", type=Path, help="TOML config file")
    _add_config_flags(serve_parser, ServeConfig, SERVE_HELP)
    serve_parser.set_defaults(run=_run_serve)
    forward_parser = sub.add_parser(
        "forward",
        help="consume MQ messages and publish each to the systems its route selects (docs/forwarding.md)",
        description="Consumes --queue from a RabbitMQ broker, routes every message with the store's route tables "
        "and publishes it to each destination system; settings as for serve (flag, VERDICT_*, --config [forward]).",
    )
    forward_parser.add_argument("--config", type=Path, help="TOML config file")
    _add_config_flags(forward_parser, ForwardConfig, FORWARD_HELP)
    forward_parser.set_defaults(run=_run_forward)
    commands.register(sub)
    _add_store_commands(sub)
    return parser


def _add_store_commands(sub: argparse._SubParsersAction) -> None:
    store = sub.add_parser("store", help="work on a store directly, by URL (not through a server)")
    actions = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    copy = actions.add_parser(
        "copy",
        help="copy every version, with its author and time, into an empty store (e.g. SQLite to PostgreSQL)",
        description="Store URLs: postgresql://USER:PASSWORD@HOST:PORT/DB, sqlite:///PATH/verdict.db, dir:///PATH.",
    )
    copy.add_argument("source", metavar="FROM_URL")
    copy.add_argument("target", metavar="TO_URL")
    copy.set_defaults(run=_run_store_copy)


def _run_store_copy(args: argparse.Namespace) -> int:
    from .store import StoreError, redact
    from .store.copy import copy_store

    try:
        count = copy_store(args.source, args.target)
    except StoreError as err:
        print(f"verdict store copy: {err}", file=sys.stderr)
        return 1
    print(f"copied {count} versions from {redact(args.source)} to {redact(args.target)}")
    return 0


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type, helps: dict[str, str]) -> None:
    # Flags default to None so that "not given" can fall back to the environment, the file, then the default.
    hints = get_type_hints(config_class)
    for item in dataclasses.fields(config_class):
        flags = ["--" + item.name.replace("_", "-"), *FLAG_ALIASES.get(item.name, [])]
        if hints[item.name] is bool:
            parser.add_argument(
                *flags,
                dest=item.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=helps.get(item.name),
            )
        else:
            parser.add_argument(*flags, dest=item.name, default=None, help=helps.get(item.name))


def load_serve_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> ServeConfig:
    return load_config(ServeConfig, "serve", args, environ)


def load_config(config_class: type, section: str, args: argparse.Namespace, environ: dict[str, str] | None = None):
    """Merges flag > VERDICT_* environment > config file (its [section] table, or the top level) > default,
    converting each value to its field's type."""
    environ = os.environ if environ is None else environ
    file_values = _read_config_file(args.config, section) if getattr(args, "config", None) else {}
    hints = get_type_hints(config_class)
    known = {item.name for item in dataclasses.fields(config_class)}
    unknown = set(file_values) - known
    if unknown:
        raise SystemExit(
            f"{args.config}: unknown settings {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for name in known:
        raw, source = _first_given(
            (getattr(args, name, None), f"--{name.replace('_', '-')}"),
            (environ.get(f"VERDICT_{name.upper()}"), f"VERDICT_{name.upper()}"),
            (file_values.get(name), f"{args.config}: {name}"),
        )
        if raw is not None:
            values[name] = _convert(raw, hints[name], source)
    return config_class(**values)


def _first_given(*candidates: tuple[Any, str]) -> tuple[Any, str]:
    for value, source in candidates:
        if value is not None:
            return value, source
    return None, ""


def _read_config_file(path: Path, section: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as err:
        raise SystemExit(f"cannot read config file {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SystemExit(f"config file {path} is not valid TOML: {err}") from None
    return data.get(section, data)


def _convert(raw: Any, hint: Any, source: str) -> Any:
    """Converts a flag/env string or a TOML value to the field type named by hint (e.g. `int | None`)."""
    types = [t for t in getattr(hint, "__args__", (hint,)) if t is not type(None)]
    target = types[0]
    if target is bool:
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SystemExit(f"{source}: expected true or false, got {raw!r}")
    try:
        return target(raw)
    except (TypeError, ValueError):
        raise SystemExit(f"{source}: expected {target.__name__}, got {raw!r}") from None


def _run_serve(args: argparse.Namespace) -> int:
    config = load_serve_config(args)
    problems = config.problems()
    if problems:
        for problem in problems:
            print(f"verdict serve: {problem}", file=sys.stderr)
        return 2
    if config.processes > 1:
        return _run_prefork(config)
    from .service.server import serve  # imported late: it loads gRPC and the metrics library

    return serve(config)


def _run_forward(args: argparse.Namespace) -> int:
    config = load_config(ForwardConfig, "forward", args)
    problems = config.problems()
    if problems:
        for problem in problems:
            print(f"verdict forward: {problem}", file=sys.stderr)
        return 2
    from .forward.consumer import forward  # imported late: it loads the AMQP client

    return forward(config)


def _run_prefork(config: ServeConfig) -> int:
    if config.metrics_port is not None and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before prometheus_client is first imported: it picks its value storage at import time.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="verdict-metrics-")
    from .service.prefork import supervise

    return supervise(config)


if __name__ == "__main__":
    sys.exit(main())
