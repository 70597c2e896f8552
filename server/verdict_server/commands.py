"""The client commands of the `verdict` CLI (eval, eval-batch, route, rules ..., select, deselect, health, call):
they call a running server.

They use the SDK (`import verdict`) like any other caller. Where they connect and with which token:

- `--target HOST:PORT`, else $VERDICT_TARGET, else 127.0.0.1:50051.
- Admin commands (rules ..., select, deselect) send a bearer token: `--token`, else `--token-file`, else
  $VERDICT_TOKEN, else the file in $VERDICT_ADMIN_TOKEN_FILE, else the server's default token file
  `<data dir>/admin.token` when it is readable (data dir: `--data`, else $VERDICT_DATA, else ~/.local/share/verdict),
  so on the server's own machine the commands work without any setup.
- `--tls` (system CAs), `--tls-ca FILE`, and `--tls-cert FILE --tls-key FILE` for mutual TLS.

Output is for people by default; `--json` prints the answer as one JSON document for scripts. A failure prints one
line on stderr and exits with 1; a usage error exits with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc

import verdict
import verdict.errors

from .locations import TOKEN_FILE_NAME, default_data_dir

DEFAULT_TARGET = "127.0.0.1:50051"


class CommandError(Exception):
    """A failure to report on one line (exit code 1)."""


class UsageError(Exception):
    """A bad argument found after parsing, e.g. --facts that is not a JSON object (exit code 2)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the client subcommands to the `verdict` parser."""
    common = _common_options()
    _add_eval(sub, common)
    _add_eval_batch(sub, common)
    _add_route(sub, common)
    _add_rules(sub, common)
    _add_selection(sub, common)
    _add_debugging(sub, common)


# -------------------------------------------------------------------------------------------------------- parsers


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument("--target", default=None, help=f"server address (default: $VERDICT_TARGET or {DEFAULT_TARGET})")
    group.add_argument("--token", default=None, help="admin bearer token (default: $VERDICT_TOKEN, then token files)")
    group.add_argument("--token-file", type=Path, default=None, help="file holding the admin bearer token")
    group.add_argument(
        "--data-dir",
        "--data",
        dest="data_dir",
        type=Path,
        default=None,
        help="the server's data directory, where its admin.token is (default: $VERDICT_DATA or ~/.local/share/verdict)",
    )
    group.add_argument("--timeout", type=float, default=5.0, help="seconds each call may take (default: 5)")
    group.add_argument("--tls", action="store_true", help="connect with TLS, trusting the system CAs")
    group.add_argument("--tls-ca", type=Path, default=None, help="PEM CA that signed the server certificate")
    group.add_argument("--tls-cert", type=Path, default=None, help="PEM client certificate (mutual TLS)")
    group.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    common.add_argument("--json", action="store_true", help="print the answer as JSON")
    return common


def _command(sub: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser, run: Callable, **kwargs):
    parser = sub.add_parser(name, parents=[common], **kwargs)
    parser.set_defaults(run=_runner(run, parser))
    return parser


def _add_eval(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = _command(sub, "eval", common, _eval, help="evaluate a rule set (or an ad-hoc QL expression)")
    parser.add_argument("rule_set", nargs="?", metavar="RULE_SET", help="rule set name")
    parser.add_argument("--expression", "-e", metavar="QL", help="ad-hoc QL instead of a rule set (--allow-adhoc)")
    parser.add_argument("--facts", default="{}", metavar="JSON", help="facts as a JSON object, @FILE, or - for stdin")
    parser.add_argument("--version", type=int, default=0, help="rule set version (default: the active one)")
    parser.add_argument("--explain", action="store_true", help="show each rule's condition")


def _add_eval_batch(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = _command(sub, "eval-batch", common, _eval_batch, help="evaluate a rule set for many facts in one call")
    parser.add_argument("rule_set", metavar="RULE_SET", help="rule set name")
    parser.add_argument(
        "--facts",
        default="-",
        metavar="FILE",
        help="a file of JSON lines (one facts object a line) or of one JSON array of objects; - for stdin (default)",
    )
    parser.add_argument("--version", type=int, default=0, help="rule set version (default: the active one)")


def _add_debugging(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    health = _command(sub, "health", common, _health, help="ask the server's health service (exit 0 when SERVING)")
    health.add_argument("service", nargs="?", default="", help="a service name (default: the whole server)")
    call = _command(
        sub, "call", common, _call, help="call any method by name through server reflection, with JSON in and out"
    )
    call.add_argument("method", metavar="SERVICE/METHOD", help="e.g. verdict.v1.DecisionService/Evaluate")
    call.add_argument(
        "-d",
        "--request",
        dest="request",
        default="{}",
        metavar="JSON",
        help="the request as JSON, @FILE, or - for stdin",
    )


def _add_route(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = _command(sub, "route", common, _route, help="where would an MQ message be forwarded")
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument("--tags", default="", help="comma-separated message tags")
    parser.add_argument("--key", default="", help="message key (gray buckets hash it)")
    parser.add_argument("--properties", default=None, metavar="JSON", help="message properties, a JSON object")
    parser.add_argument("--body", default=None, metavar="JSON", help="message body: JSON, @FILE, or - for stdin")


def _add_rules(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    rules = sub.add_parser("rules", help="manage rule sets and route tables (admin)")
    actions = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")

    put = _command(actions, "put", common, _rules_put, help="store a document as a new version")
    put.add_argument("file", metavar="FILE", help="YAML/JSON document, or - for stdin")
    _add_write_options(put)

    get = _command(actions, "get", common, _rules_get, help="print a document")
    _add_key(get)
    get.add_argument("--version", type=int, default=0, help="version (default: the active one)")

    listing = _command(actions, "list", common, _rules_list, help="list the active documents")
    listing.add_argument("--kind", default="", help="RuleSet or RouteTable (default: both)")

    history = _command(actions, "history", common, _rules_history, help="list every version of a document")
    _add_key(history)

    activate = _command(actions, "activate", common, _rules_activate, help="roll back to an old version")
    _add_key(activate)
    activate.add_argument("version", type=int, metavar="VERSION")
    _add_write_options(activate)

    delete = _command(actions, "delete", common, _rules_delete, help="delete a document (history is kept)")
    _add_key(delete)
    _add_write_options(delete)

    validate = _command(actions, "validate", common, _rules_validate, help="check a document without storing it")
    validate.add_argument("file", metavar="FILE", help="YAML/JSON document, or - for stdin")


def _add_selection(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    for name, selected in (("select", True), ("deselect", False)):
        state = "on" if selected else "off"
        parser = _command(sub, name, common, _selection, help=f"switch a system of a route table {state}")
        parser.add_argument("table", metavar="TABLE")
        parser.add_argument("system", metavar="SYSTEM")
        _add_write_options(parser)
        parser.set_defaults(selected=selected)


def _add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", metavar="KIND", help="RuleSet or RouteTable")
    parser.add_argument("name", metavar="NAME")


def _add_write_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expected-version", type=int, default=0, help="write only if this is the current version (default: no check)"
    )
    parser.add_argument("--author", default=None, help="recorded with the new version (default: your login name)")


# ----------------------------------------------------------------------------------------------------- commands


def _eval(args: argparse.Namespace, client: verdict.Client) -> None:
    if (args.rule_set is None) == (args.expression is None):
        raise UsageError("give a RULE_SET or --expression, not both or neither")
    facts = _json_object(_argument_text(args.facts), "--facts")
    if args.expression is not None:
        answer = client.evaluate_expression(args.expression, facts)
    else:
        answer = client.evaluate(args.rule_set, facts, version=args.version, explain=args.explain)
    _print(args, answer, _describe_evaluation)


def _eval_batch(args: argparse.Namespace, client: verdict.Client) -> None:
    facts_list = _facts_lines(_read_file(args.facts.removeprefix("@")))
    answers = client.evaluate_batch(args.rule_set, facts_list, version=args.version)
    _print(args, answers, lambda found: "\n".join(_describe_batch_item(i, a) for i, a in enumerate(found)))


def _facts_lines(text: str) -> list[dict[str, Any]]:
    stripped = text.strip()
    if stripped.startswith("["):
        parsed = _json_value(stripped, "--facts")
        if not isinstance(parsed, list):
            raise UsageError("--facts: a JSON array of objects was expected")
        items = parsed
    else:
        items = [_json_value(line, f"--facts line {n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise UsageError(f"--facts entry {index + 1} must be a JSON object, not {type(item).__name__}")
    return items


def _health(args: argparse.Namespace, client: verdict.Client) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(client.channel)
    try:
        answer = stub.Check(health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
    except grpc.RpcError as err:
        raise verdict.errors.from_rpc_error(err) from err
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    _print(args, {"service": args.service, "status": status}, lambda _: status)
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


def _call(args: argparse.Namespace, client: verdict.Client) -> None:
    """One unary call of any service the server reflects: the request JSON is parsed against the method's input type
    fetched through reflection, so no stubs are needed (what grpcurl does, installed with Verdict)."""
    from google.protobuf import descriptor_pool, json_format, message_factory
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    # SERVICE/METHOD as in the gRPC path, or SERVICE.METHOD as grpcurl also accepts.
    service_name, _, method_name = args.method.rpartition("/" if "/" in args.method else ".")
    if not service_name or not method_name:
        raise UsageError("give the method as SERVICE/METHOD, e.g. verdict.v1.DecisionService/Evaluate")
    logging.getLogger("grpc_reflection").setLevel(logging.WARNING)  # it logs every file it fetches at INFO
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(client.channel))
    try:
        service = pool.FindServiceByName(service_name)
    except KeyError:
        raise CommandError(f"the server does not offer the service {service_name}") from None
    method = service.methods_by_name.get(method_name)
    if method is None:
        offered = ", ".join(sorted(service.methods_by_name))
        raise CommandError(f"{service_name} has no method {method_name} (it has {offered})")
    if method.client_streaming or method.server_streaming:
        raise CommandError(f"{args.method} is a streaming method; verdict call makes unary calls only")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    try:
        request = json_format.Parse(_argument_text(args.request), request_class())
    except json_format.ParseError as err:
        raise UsageError(f"--data does not fit {method.input_type.full_name}: {err}") from None
    unary = client.channel.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    metadata = client.admin_metadata if service_name.endswith("AdminService") else ()
    try:
        response = unary(request, timeout=args.timeout, metadata=metadata)
    except grpc.RpcError as err:
        raise verdict.errors.from_rpc_error(err) from err
    print(json_format.MessageToJson(response, preserving_proto_field_name=False, indent=2))


def _route(args: argparse.Namespace, client: verdict.Client) -> None:
    properties = _json_object(args.properties, "--properties") if args.properties is not None else None
    if properties and not all(isinstance(value, str) for value in properties.values()):
        raise UsageError("--properties values must be strings")
    body = _body(_argument_text(args.body)) if args.body is not None else None
    tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
    answer = client.route(args.topic, tags=tags, key=args.key, properties=properties, body=body)
    _print(args, answer, _describe_routing)


def _rules_put(args: argparse.Namespace, client: verdict.Client) -> int:
    content = _read_file(args.file)
    try:
        written = client.put_document(content, expected_version=args.expected_version, author=_author(args))
    except verdict.DocumentInvalid:
        # The same lines as `rules validate`, one problem each, instead of the status message's single line.
        problems = _describe_validation(args.file, client.validate_document(content))
        print(f"verdict: {args.file} was not stored:\n{problems}", file=sys.stderr)
        return 1
    _print(args, written, _describe_written("stored"))
    return 0


def _rules_get(args: argparse.Namespace, client: verdict.Client) -> None:
    document = client.get_document(args.kind, args.name, args.version)
    _print(args, document, lambda d: d.content.rstrip("\n"))


def _rules_list(args: argparse.Namespace, client: verdict.Client) -> None:
    documents = client.list_documents(args.kind)
    rows = [(d.kind, d.name, str(d.version), d.author, _when(d.created_at)) for d in documents]
    _print(args, documents, lambda _: _table(("KIND", "NAME", "VERSION", "AUTHOR", "WRITTEN"), rows))


def _rules_history(args: argparse.Namespace, client: verdict.Client) -> None:
    versions = client.list_versions(args.kind, args.name)
    rows = [(str(d.version), _state(d), d.author, _when(d.created_at)) for d in versions]
    _print(args, versions, lambda _: _table(("VERSION", "STATE", "AUTHOR", "WRITTEN"), rows))


def _rules_activate(args: argparse.Namespace, client: verdict.Client) -> None:
    written = client.activate_version(
        args.kind, args.name, args.version, expected_version=args.expected_version, author=_author(args)
    )
    _print(
        args,
        written,
        lambda w: (
            f"unchanged: {w.kind} {w.name} version {w.version} already has the content of version {args.version}"
            if w.unchanged
            else f"activated version {args.version} of {w.kind} {w.name} as version {w.version}"
        ),
    )


def _rules_delete(args: argparse.Namespace, client: verdict.Client) -> None:
    written = client.delete_document(args.kind, args.name, expected_version=args.expected_version, author=_author(args))
    _print(args, written, lambda w: f"deleted {w.kind} {w.name} (version {w.version} records the deletion)")


def _rules_validate(args: argparse.Namespace, client: verdict.Client) -> int:
    validation = client.validate_document(_read_file(args.file))
    _print(args, validation, lambda v: _describe_validation(args.file, v))
    return 0 if validation.valid else 1


def _selection(args: argparse.Namespace, client: verdict.Client) -> None:
    written = client.set_selection(
        args.table, args.system, args.selected, expected_version=args.expected_version, author=_author(args)
    )
    state = "selected" if args.selected else "deselected"
    _print(
        args,
        written,
        lambda w: (
            f"unchanged: {args.system} is already {state} in {w.name} (version {w.version})"
            if w.unchanged
            else f"{state} {args.system} in {w.name} (version {w.version})"
        ),
    )


# --------------------------------------------------------------------------------------------- running a command


def _runner(command: Callable[[argparse.Namespace, verdict.Client], int | None], parser: argparse.ArgumentParser):
    """Wraps a command: opens the client, turns every expected failure into one line on stderr and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            with _client(args) as client:
                return command(args, client) or 0
        except UsageError as err:
            parser.error(str(err))  # prints the usage and exits with 2
        except verdict.VerdictError as err:
            return _fail(f"{err.code.name}: {err.message}{_hint(err, args)}")
        except CommandError as err:
            return _fail(str(err))
        except BrokenPipeError:
            # The reader went away (`verdict rules list | head`): stop quietly, and keep Python from complaining
            # again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1

    return run


def _fail(message: str) -> int:
    print(f"verdict: {message}", file=sys.stderr)
    return 1


def _hint(err: verdict.VerdictError, args: argparse.Namespace) -> str:
    if isinstance(err, verdict.Unauthenticated) and not args.token_used:
        return " (no admin token found: pass --token or --token-file, or set VERDICT_TOKEN)"
    if isinstance(err, verdict.Unavailable):
        return f" (is a server running at {args.target_used}?)"
    return ""


def _client(args: argparse.Namespace) -> verdict.Client:
    args.target_used = args.target or os.environ.get("VERDICT_TARGET") or DEFAULT_TARGET
    args.token_used = _find_token(args)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    try:
        return verdict.Client(
            args.target_used,
            token=args.token_used,
            timeout=args.timeout,
            tls=args.tls,
            root_certificates=args.tls_ca,
            client_cert=args.tls_cert,
            client_key=args.tls_key,
        )
    except OSError as err:
        raise CommandError(f"cannot read {err.filename}: {err.strerror}") from None
    except ValueError as err:
        raise UsageError(str(err)) from None


def _find_token(args: argparse.Namespace) -> str | None:
    """The first token given: --token, --token-file, $VERDICT_TOKEN, $VERDICT_ADMIN_TOKEN_FILE, the data dir's file."""
    if args.token:
        return args.token.strip()
    if args.token_file is not None:
        return _read_token(args.token_file)
    if os.environ.get("VERDICT_TOKEN", "").strip():
        return os.environ["VERDICT_TOKEN"].strip()
    if os.environ.get("VERDICT_ADMIN_TOKEN_FILE"):
        return _read_token(Path(os.environ["VERDICT_ADMIN_TOKEN_FILE"]))
    default_file = (args.data_dir or default_data_dir()) / TOKEN_FILE_NAME
    try:
        return default_file.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None  # not on the server's machine, or not its user: admin calls will say the token is missing


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise CommandError(f"cannot read the token file {path}: {err.strerror}") from None
    if not token:
        raise CommandError(f"the token file {path} is empty")
    return token


def _author(args: argparse.Namespace) -> str:
    if args.author is not None:
        return args.author
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return ""


# ------------------------------------------------------------------------------------------------ input helpers


def _argument_text(value: str) -> str:
    """An argument's text: as given, `@FILE` for a file's content, or `-` for standard input."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        return _read_file(value[1:])
    return value


def _read_file(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except OSError as err:
        raise CommandError(f"cannot read {name}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{name} is not UTF-8 text") from None


def _body(text: str) -> dict[str, Any] | str:
    """A JSON object is sent structured (body_json); any other JSON value is sent as raw JSON text."""
    try:
        parsed = json.loads(text)
    except ValueError as err:
        raise UsageError(f"--body is not valid JSON: {err}") from None
    return _json_object(text, "--body") if isinstance(parsed, dict) else text


def _json_value(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise UsageError(f"{option} is not valid JSON: {err}") from None


def _json_object(text: str, option: str) -> dict[str, Any]:
    parsed = _json_value(text, option)
    if not isinstance(parsed, dict):
        raise UsageError(f"{option} must be a JSON object ({{...}}), not {type(parsed).__name__}")
    try:
        verdict.to_struct(parsed)  # refuse what the SDK cannot send now, as a usage error
    except (TypeError, ValueError) as err:
        raise UsageError(f"{option}: {err}") from None
    return parsed


# ----------------------------------------------------------------------------------------------------- output


def _print(args: argparse.Namespace, answer: Any, describe: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(_jsonable(answer), ensure_ascii=False, indent=2))
    else:
        text = describe(answer)
        if text:
            print(text)


def _jsonable(answer: Any) -> Any:
    if isinstance(answer, list):
        return [_jsonable(item) for item in answer]
    if dataclasses.is_dataclass(answer) and not isinstance(answer, type):
        return {field.name: _jsonable(getattr(answer, field.name)) for field in dataclasses.fields(answer)}
    if isinstance(answer, datetime):
        return answer.isoformat()
    return answer


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _describe_evaluation(answer: verdict.Evaluation) -> str:
    lines = [_json(answer.result)]
    if answer.rule_set:
        lines.append(f"rule set: {answer.rule_set} v{answer.version}")
    if answer.matched_rules:
        lines.append(f"matched: {', '.join(answer.matched_rules)}")
    elif answer.defaulted:
        lines.append("matched: (none: the default)")
    elif answer.rule_set:
        lines.append("computed by the rule set's script")
    if answer.degraded or answer.error is not None:
        lines.append(f"degraded: {_describe_error(answer.error)}" if answer.error else "degraded")
    for entry in answer.trace:
        lines.append(f"  {entry.rule_id}: {_describe_trace(entry)}")
    lines.append(f"decision: {answer.decision_id}")
    return "\n".join(lines)


def _describe_batch_item(index: int, answer: verdict.Evaluation) -> str:
    how = ", ".join(answer.matched_rules) or ("the default" if answer.defaulted else "script")
    flag = " (degraded)" if answer.degraded else ""
    return f"{index}: {_json(answer.result)}  [{how}]{flag}"


def _describe_trace(entry: verdict.RuleTrace) -> str:
    if not entry.evaluated:
        return entry.note or "not evaluated"  # the server's note says why, e.g. "disabled"
    if entry.error is not None:
        return f"error: {_describe_error(entry.error)}"
    return f"{'matched' if entry.matched else 'no match'} (condition {_json(entry.condition)})"


def _describe_error(error: verdict.EvalError) -> str:
    where = f" at line {error.line}, column {error.column}" if error.line else ""
    rule = f" in rule {error.rule_id}" if error.rule_id else ""
    return f"{error.code}{rule}{where}: {error.message}"


def _describe_routing(answer: verdict.Routing) -> str:
    lines = [
        f"deliver {d.system} -> {d.target} (table {d.table} v{d.version}, priority {d.priority})"
        for d in answer.destinations
    ]
    if not answer.destinations:
        lines.append("no destination")
    for skipped in answer.skipped:
        detail = f": {skipped.detail}" if skipped.detail else ""
        lines.append(f"skip {skipped.system} {skipped.reason}{detail} (table {skipped.table} v{skipped.version})")
    lines.append(f"decision: {answer.decision_id}")
    return "\n".join(lines)


def _describe_written(action: str) -> Callable[[verdict.DocumentVersion], str]:
    def describe(written: verdict.DocumentVersion) -> str:
        if written.unchanged:
            return f"unchanged: {written.kind} {written.name} is still version {written.version} (same content)"
        return f"{action} {written.kind} {written.name} version {written.version}"

    return describe


def _describe_validation(file: str, validation: verdict.Validation) -> str:
    if validation.valid:
        return f"{file}: ok ({validation.kind} {validation.name})"
    lines = []
    for problem in validation.problems:
        where = f"{problem.line}:{problem.column}:" if problem.line else ""
        path = f" {problem.path}:" if problem.path else ""
        code = f" [{problem.code}]" if problem.code else ""
        lines.append(f"{file}:{where}{path} {problem.message}{code}")
    return "\n".join(lines)


def _state(document: verdict.Document) -> str:
    if document.deleted:
        return "deleted"
    return "active" if document.active else ""


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else ""


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
