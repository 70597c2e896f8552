"""verdict.Client: the synchronous client of a Verdict server.

One gRPC channel per client, reused by every call and safe to share between threads; close it with close() or a
`with` block. Every call has a deadline (`timeout`, default 5 s). Idempotent calls (evaluate, route, get, list,
validate) are retried on UNAVAILABLE with exponential backoff by gRPC itself, through the channel's service config;
writes are never retried, since a write that reached the server before the connection broke must not happen twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grpc

from . import values
from .errors import from_rpc_error
from .v1 import admin_pb2, admin_pb2_grpc, decision_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 3
MAX_RETRIES = 4  # gRPC caps a retry policy at 5 attempts

# Calls that may safely run twice: every DecisionService method (pure) and the admin reads.
_IDEMPOTENT = [
    {"service": "verdict.v1.DecisionService"},
    {"service": "verdict.v1.AdminService", "method": "GetDocument"},
    {"service": "verdict.v1.AdminService", "method": "ListDocuments"},
    {"service": "verdict.v1.AdminService", "method": "ListVersions"},
    {"service": "verdict.v1.AdminService", "method": "ValidateDocument"},
]

Pem = bytes | str | os.PathLike[str]


class Client:
    """A synchronous Verdict client.

    ```python
    with verdict.Client("127.0.0.1:50051", token=token) as client:
        answer = client.evaluate("pharmacist.otc_block", {"scene": "NON_MEDICAL", "role": "PHARMACIST"})
        answer.result          # {'action': 'HIDE', 'reason': 'otc'}
    ```

    token: the admin bearer token, sent as `authorization: Bearer <token>` on admin calls only.
    tls: use TLS; implied by any of the certificate arguments. Certificates are PEM bytes, or a path to a PEM file.
    root_certificates: the CA that signed the server's certificate (default: the system's roots).
    client_cert, client_key: this client's certificate and key, for a server that requires mutual TLS.
    retries: extra attempts of an idempotent call that met UNAVAILABLE (0 to 4).
    options: extra gRPC channel options, e.g. [("grpc.lb_policy_name", "round_robin")].
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        tls: bool = False,
        root_certificates: Pem | None = None,
        client_cert: Pem | None = None,
        client_key: Pem | None = None,
        retries: int = DEFAULT_RETRIES,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._admin_metadata = admin_metadata(token)
        channel_options = channel_options_for(retries, options)
        credentials = channel_credentials(tls, root_certificates, client_cert, client_key)
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=channel_options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=channel_options)
        self._decision = decision_pb2_grpc.DecisionServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)

    # ------------------------------------------------------------------------------------------------- decisions

    def evaluate(
        self,
        rule_set: str,
        facts: Mapping[str, Any],
        *,
        version: int = 0,
        explain: bool = False,
        timeout: float | None = None,
    ) -> values.Evaluation:
        """Runs a rule set (version 0 = the active one) against the facts."""
        request = values.evaluate_request(rule_set, facts, version=version, explain=explain)
        return values.evaluation(self._call(self._decision.Evaluate, request, timeout))

    def evaluate_expression(
        self, expression: str, facts: Mapping[str, Any], *, timeout: float | None = None
    ) -> values.Evaluation:
        """Runs an ad-hoc QL expression (the server must run with --allow-adhoc)."""
        request = values.evaluate_request("", facts, expression=expression)
        return values.evaluation(self._call(self._decision.Evaluate, request, timeout))

    def evaluate_batch(
        self,
        rule_set: str,
        facts_list: Iterable[Mapping[str, Any]],
        *,
        version: int = 0,
        explain: bool = False,
        timeout: float | None = None,
    ) -> list[values.Evaluation]:
        """Evaluates every facts mapping against one version of the rule set; the answers are in the same order."""
        request = values.evaluate_batch_request(rule_set, facts_list, version=version, explain=explain)
        return values.evaluations(self._call(self._decision.EvaluateBatch, request, timeout))

    def route(
        self,
        topic: str,
        *,
        tags: Iterable[str] = (),
        key: str = "",
        properties: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | bytes | str | None = None,
        content_type: str = values.JSON_CONTENT_TYPE,
        timeout: float | None = None,
    ) -> values.Routing:
        """Where an MQ message must go. A dict body is sent structured; bytes/str are sent raw with content_type."""
        request = values.route_request(
            topic, tags=tags, key=key, properties=properties, body=body, content_type=content_type
        )
        return values.routing(self._call(self._decision.Route, request, timeout))

    # ----------------------------------------------------------------------------------------------------- admin

    def put_document(
        self, content: str, *, expected_version: int = 0, author: str = "", timeout: float | None = None
    ) -> values.DocumentVersion:
        """Stores a new version of a YAML/JSON document. expected_version 0 = no check; else it must be the head."""
        request = admin_pb2.PutDocumentRequest(content=content, expected_version=expected_version, author=author)
        return values.document_version(self._admin_call(self._admin.PutDocument, request, timeout))

    def get_document(self, kind: str, name: str, version: int = 0, *, timeout: float | None = None) -> values.Document:
        """One version of a document; 0 = the active one."""
        request = admin_pb2.GetDocumentRequest(kind=kind, name=name, version=version)
        return values.document(self._admin_call(self._admin.GetDocument, request, timeout).document)

    def list_documents(
        self, kind: str = "", *, include_content: bool = False, timeout: float | None = None
    ) -> list[values.Document]:
        """The active version of every document, or of every document of one kind (every page; `timeout` each)."""
        request = admin_pb2.ListDocumentsRequest(kind=kind, include_content=include_content)
        return self._all_pages(self._admin.ListDocuments, request, timeout)

    def list_versions(
        self, kind: str, name: str, *, include_content: bool = False, timeout: float | None = None
    ) -> list[values.Document]:
        """Every version of a document, newest first, deletions included (every page; `timeout` each)."""
        request = admin_pb2.ListVersionsRequest(kind=kind, name=name, include_content=include_content)
        return self._all_pages(self._admin.ListVersions, request, timeout)

    def delete_document(
        self, kind: str, name: str, *, expected_version: int = 0, author: str = "", timeout: float | None = None
    ) -> values.DocumentVersion:
        """Deletes a document (as a new version; its history stays readable)."""
        request = admin_pb2.DeleteDocumentRequest(
            kind=kind, name=name, expected_version=expected_version, author=author
        )
        return values.document_version(self._admin_call(self._admin.DeleteDocument, request, timeout))

    def validate_document(self, content: str, *, timeout: float | None = None) -> values.Validation:
        """Checks a document without storing it; every problem at once."""
        request = admin_pb2.ValidateDocumentRequest(content=content)
        return values.validation(self._admin_call(self._admin.ValidateDocument, request, timeout))

    def activate_version(
        self,
        kind: str,
        name: str,
        version: int,
        *,
        expected_version: int = 0,
        author: str = "",
        timeout: float | None = None,
    ) -> values.DocumentVersion:
        """Rollback: makes an old version the active one again, as a new version."""
        request = admin_pb2.ActivateVersionRequest(
            kind=kind, name=name, version=version, expected_version=expected_version, author=author
        )
        return values.document_version(self._admin_call(self._admin.ActivateVersion, request, timeout))

    def set_selection(
        self,
        table: str,
        system: str,
        selected: bool,
        *,
        expected_version: int = 0,
        author: str = "",
        timeout: float | None = None,
    ) -> values.DocumentVersion:
        """Switches one system of a route table on or off, as a new version of the table."""
        request = admin_pb2.SetSelectionRequest(
            table=table, system=system, selected=selected, expected_version=expected_version, author=author
        )
        return values.document_version(self._admin_call(self._admin.SetSelection, request, timeout))

    # --------------------------------------------------------------------------------------------------- plumbing

    @property
    def channel(self) -> grpc.Channel:
        """The client's channel, for other services of the same server (health, reflection) with the same TLS."""
        return self._channel

    @property
    def admin_metadata(self) -> tuple[tuple[str, str], ...]:
        """The `authorization` metadata admin calls carry (empty without a token)."""
        return self._admin_metadata

    def close(self) -> None:
        """Closes the channel; calls in progress are cancelled. Safe to call twice."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: float | None, metadata: Sequence[tuple[str, str]] = ()) -> Any:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def _admin_call(self, method: Any, request: Any, timeout: float | None) -> Any:
        return self._call(method, request, timeout, self._admin_metadata)

    def _all_pages(self, method: Any, request: Any, timeout: float | None) -> list[values.Document]:
        found: list[values.Document] = []
        while True:
            response = self._admin_call(method, request, timeout)
            found.extend(values.documents(response))
            if not response.next_page_token:
                return found
            request.page_token = response.next_page_token


# ---------------------------------------------------------------------------- shared with verdict.AsyncClient


def admin_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    if token is None:
        return ()
    token = token.strip()
    if not token:
        raise ValueError("the admin token is empty")
    return (("authorization", f"Bearer {token}"),)


def channel_options_for(retries: int, extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Channel options with a service config that retries idempotent calls on UNAVAILABLE."""
    if not 0 <= retries <= MAX_RETRIES:
        raise ValueError(f"retries must be between 0 and {MAX_RETRIES}, not {retries}")
    options: list[tuple[str, Any]] = []
    if retries:
        policy = {
            "maxAttempts": retries + 1,
            "initialBackoff": "0.1s",
            "maxBackoff": "2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
        config = {"methodConfig": [{"name": _IDEMPOTENT, "retryPolicy": policy}]}
        options.append(("grpc.service_config", json.dumps(config)))
    return options + list(extra)


def channel_credentials(
    tls: bool, root_certificates: Pem | None, client_cert: Pem | None, client_key: Pem | None
) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for a plaintext channel."""
    if (client_cert is None) != (client_key is None):
        raise ValueError("mutual TLS needs both client_cert and client_key")
    if not (tls or root_certificates or client_cert):
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(root_certificates), private_key=_pem(client_key), certificate_chain=_pem(client_cert)
    )


def _pem(source: Pem | None) -> bytes | None:
    """PEM bytes as given, or read from a file path."""
    if source is None or isinstance(source, bytes):
        return source
    with open(source, "rb") as file:
        return file.read()
