"""TLS and mutual TLS, with a CA and certificates made in the test (PEM given as bytes or as file paths)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import verdict
from verdict.v1 import decision_pb2, decision_pb2_grpc


@dataclass
class Pair:
    cert: bytes
    key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(common_name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer[0].subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    return Pair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@dataclass
class Pki:
    ca: Pair
    server: Pair
    client: Pair


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_cert, ca_key = _issue("test CA", None)
    return Pki(
        ca=_pair(ca_cert, ca_key),
        server=_pair(*_issue("server", (ca_cert, ca_key))),
        client=_pair(*_issue("client", (ca_cert, ca_key))),
    )


class Echo(decision_pb2_grpc.DecisionServiceServicer):
    def Evaluate(self, request, context):
        return decision_pb2.EvaluateResponse(rule_set=request.rule_set)


def _serve(pki: Pki, *, require_client_auth: bool) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(Echo(), server)
    credentials = grpc.ssl_server_credentials(
        [(pki.server.key, pki.server.cert)],
        root_certificates=pki.ca.cert if require_client_auth else None,
        require_client_auth=require_client_auth,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield f"localhost:{port}"
    server.stop(grace=None)


@pytest.fixture
def tls_target(pki: Pki) -> Iterator[str]:
    yield from _serve(pki, require_client_auth=False)


@pytest.fixture
def mtls_target(pki: Pki) -> Iterator[str]:
    yield from _serve(pki, require_client_auth=True)


def test_tls_with_the_ca_from_a_file(tls_target: str, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.ca.cert)
    with verdict.Client(tls_target, root_certificates=tmp_path / "ca.pem") as client:
        assert client.evaluate("over-tls", {}).rule_set == "over-tls"


def test_a_plaintext_client_cannot_talk_to_a_tls_server(tls_target: str) -> None:
    with verdict.Client(tls_target, retries=0, timeout=10) as client, pytest.raises(verdict.Unavailable):
        client.evaluate("x", {})


def test_mutual_tls_with_pem_bytes(mtls_target: str, pki: Pki) -> None:
    with verdict.Client(
        mtls_target, root_certificates=pki.ca.cert, client_cert=pki.client.cert, client_key=pki.client.key
    ) as client:
        assert client.evaluate("over-mtls", {}).rule_set == "over-mtls"


def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_target: str, pki: Pki) -> None:
    with (
        verdict.Client(mtls_target, root_certificates=pki.ca.cert, retries=0, timeout=10) as client,
        pytest.raises(verdict.Unavailable),
    ):
        client.evaluate("x", {})
