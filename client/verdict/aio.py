"""verdict.AsyncClient: the asyncio client (grpc.aio), with the same methods, arguments and results as verdict.Client.

Create it inside a running event loop (a grpc.aio channel belongs to the loop that first uses it) and close it with
`await client.close()` or `async with`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grpc
from grpc import aio

from . import values
from .client import (
    DEFAULT_RETRIES,
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT_S,
    Pem,
    admin_metadata,
    channel_credentials,
    channel_options_for,
)
from .errors import from_rpc_error
from .v1 import admin_pb2, admin_pb2_grpc, decision_pb2_grpc


class AsyncClient:
    """An asyncio Verdict client. See verdict.Client for the arguments."""

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
            self._channel = aio.insecure_channel(target, options=channel_options)
        else:
            self._channel = aio.secure_channel(target, credentials, options=channel_options)
        self._decision = decision_pb2_grpc.DecisionServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)

    # ------------------------------------------------------------------------------------------------- decisions

    async def evaluate(
        self,
        rule_set: str,
        facts: Mapping[str, Any],
        *,
        version: int = 0,
        explain: bool = False,
        timeout: float | None = None,
    ) -> values.Evaluation:
        request = values.evaluate_request(rule_set, facts, version=version, explain=explain)
        return values.evaluation(await self._call(self._decision.Evaluate, request, timeout))

    async def evaluate_expression(
        self, expression: str, facts: Mapping[str, Any], *, timeout: float | None = None
    ) -> values.Evaluation:
        request = values.evaluate_request("", facts, expression=expression)
        return values.evaluation(await self._call(self._decision.Evaluate, request, timeout))

    async def evaluate_batch(
        self,
        rule_set: str,
        facts_list: Iterable[Mapping[str, Any]],
        *,
        version: int = 0,
        explain: bool = False,
        timeout: float | None = None,
    ) -> list[values.Evaluation]:
        request = values.evaluate_batch_request(rule_set, facts_list, version=version, explain=explain)
        return values.evaluations(await self._call(self._decision.EvaluateBatch, request, timeout))

    async def route(
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
        request = values.route_request(
            topic, tags=tags, key=key, properties=properties, body=body, content_type=content_type
        )
        return values.routing(await self._call(self._decision.Route, request, timeout))

    # ----------------------------------------------------------------------------------------------------- admin

    async def put_document(
        self, content: str, *, expected_version: int = 0, author: str = "", timeout: float | None = None
    ) -> values.DocumentVersion:
        request = admin_pb2.PutDocumentRequest(content=content, expected_version=expected_version, author=author)
        return values.document_version(await self._admin_call(self._admin.PutDocument, request, timeout))

    async def get_document(
        self, kind: str, name: str, version: int = 0, *, timeout: float | None = None
    ) -> values.Document:
        request = admin_pb2.GetDocumentRequest(kind=kind, name=name, version=version)
        return values.document((await self._admin_call(self._admin.GetDocument, request, timeout)).document)

    async def list_documents(
        self, kind: str = "", *, include_content: bool = False, timeout: float | None = None
    ) -> list[values.Document]:
        request = admin_pb2.ListDocumentsRequest(kind=kind, include_content=include_content)
        return await self._all_pages(self._admin.ListDocuments, request, timeout)

    async def list_versions(
        self, kind: str, name: str, *, include_content: bool = False, timeout: float | None = None
    ) -> list[values.Document]:
        request = admin_pb2.ListVersionsRequest(kind=kind, name=name, include_content=include_content)
        return await self._all_pages(self._admin.ListVersions, request, timeout)

    async def _all_pages(self, method: Any, request: Any, timeout: float | None) -> list[values.Document]:
        found: list[values.Document] = []
        while True:
            response = await self._admin_call(method, request, timeout)
            found.extend(values.documents(response))
            if not response.next_page_token:
                return found
            request.page_token = response.next_page_token

    async def delete_document(
        self, kind: str, name: str, *, expected_version: int = 0, author: str = "", timeout: float | None = None
    ) -> values.DocumentVersion:
        request = admin_pb2.DeleteDocumentRequest(
            kind=kind, name=name, expected_version=expected_version, author=author
        )
        return values.document_version(await self._admin_call(self._admin.DeleteDocument, request, timeout))

    async def validate_document(self, content: str, *, timeout: float | None = None) -> values.Validation:
        request = admin_pb2.ValidateDocumentRequest(content=content)
        return values.validation(await self._admin_call(self._admin.ValidateDocument, request, timeout))

    async def activate_version(
        self,
        kind: str,
        name: str,
        version: int,
        *,
        expected_version: int = 0,
        author: str = "",
        timeout: float | None = None,
    ) -> values.DocumentVersion:
        request = admin_pb2.ActivateVersionRequest(
            kind=kind, name=name, version=version, expected_version=expected_version, author=author
        )
        return values.document_version(await self._admin_call(self._admin.ActivateVersion, request, timeout))

    async def set_selection(
        self,
        table: str,
        system: str,
        selected: bool,
        *,
        expected_version: int = 0,
        author: str = "",
        timeout: float | None = None,
    ) -> values.DocumentVersion:
        request = admin_pb2.SetSelectionRequest(
            table=table, system=system, selected=selected, expected_version=expected_version, author=author
        )
        return values.document_version(await self._admin_call(self._admin.SetSelection, request, timeout))

    # --------------------------------------------------------------------------------------------------- plumbing

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(
        self, method: Any, request: Any, timeout: float | None, metadata: Sequence[tuple[str, str]] = ()
    ) -> Any:
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    async def _admin_call(self, method: Any, request: Any, timeout: float | None) -> Any:
        return await self._call(method, request, timeout, self._admin_metadata)
