"""TLS with certificates made here (their own CA): gRPC server TLS and mutual TLS, HTTPS on the gateway;
a client trusting another CA, or without its certificate under mTLS, cannot talk to them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ordo.app import AppContext
from ordo.client import OrdoClient
from ordo.config import Settings
from ordo.processes import free_port
from ordo.v1 import ingest_pb2


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: tuple | None, *, ca: bool, sans: bool = False) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(subject) if issuer is None else issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(key if issuer is None else issuer[1], hashes.SHA256())
    return cert, key


def _write(folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    crt, pem = folder / f"{name}.crt", folder / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(crt), str(pem)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    ca = _cert("ordo test CA", None, ca=True)
    other_ca = _cert("some other CA", None, ca=True)
    server = _cert("ordo", ca, ca=False, sans=True)
    client = _cert("worker-1", ca, ca=False)
    ca_crt, _ = _write(folder, "ca", *ca)
    other_crt, _ = _write(folder, "other-ca", *other_ca)
    server_crt, server_key = _write(folder, "server", *server)
    client_crt, client_key = _write(folder, "client", *client)
    return {
        "ca": ca_crt,
        "other_ca": other_crt,
        "server_crt": server_crt,
        "server_key": server_key,
        "client_crt": client_crt,
        "client_key": client_key,
    }


def _serve(tmp_path: Path, tiny_clip_dir: Path, **tls: str) -> Iterator[int]:
    from ordo.grpc_api.server import OrdoServer

    ctx = AppContext(Settings(data_dir=tmp_path, model=str(tiny_clip_dir), **tls))
    server = OrdoServer(ctx, ("ingest",), "127.0.0.1", 0).start()
    try:
        yield server.port
    finally:
        server.stop(0)
        ctx.close()


def _client(port: int, **tls: str) -> OrdoClient:
    return OrdoClient(Settings(address=f"localhost:{port}", **tls))


def test_grpc_tls_and_a_wrong_ca(tmp_path: Path, tiny_clip_dir: Path, pki: dict[str, str]) -> None:
    for port in _serve(tmp_path, tiny_clip_dir, tls_cert=pki["server_crt"], tls_key=pki["server_key"]):
        good = _client(port, tls_ca=pki["ca"])
        assert good.health("ingest") == "SERVING"
        assert good.ingest.ListJobs(ingest_pb2.ListJobsRequest(), timeout=10) is not None
        assert _client(port, tls_ca=pki["other_ca"]).health("ingest") == "UNREACHABLE"  # wrong CA
        assert _client(port).health("ingest") == "UNREACHABLE"  # plaintext to a TLS port


def test_grpc_mutual_tls(tmp_path: Path, tiny_clip_dir: Path, pki: dict[str, str]) -> None:
    server_tls = {"tls_cert": pki["server_crt"], "tls_key": pki["server_key"], "tls_client_ca": pki["ca"]}
    for port in _serve(tmp_path, tiny_clip_dir, **server_tls):
        assert _client(port, tls_ca=pki["ca"]).health("ingest") == "UNREACHABLE"  # no client certificate
        worker = _client(port, tls_ca=pki["ca"], tls_client_cert=pki["client_crt"], tls_client_key=pki["client_key"])
        assert worker.health("ingest") == "SERVING"


def test_gateway_https(pki: dict[str, str]) -> None:
    from ordo.gateway.server import GatewayThread

    port = free_port()
    settings = Settings(address="127.0.0.1:1", tls_cert=pki["server_crt"], tls_key=pki["server_key"])
    gateway = GatewayThread(settings, "127.0.0.1", port)
    assert gateway.start()
    try:
        assert httpx.get(
            f"https://localhost:{port}/healthz", verify=ssl.create_default_context(cafile=pki["ca"])
        ).json()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://localhost:{port}/healthz", verify=ssl.create_default_context(cafile=pki["other_ca"]))
    finally:
        gateway.stop()


def test_half_configured_tls_fails_at_start(tmp_path: Path, tiny_clip_dir: Path, pki: dict[str, str]) -> None:
    from ordo.errors import InvalidInput

    with pytest.raises(InvalidInput, match="ORDO_TLS_KEY"):
        next(_serve(tmp_path, tiny_clip_dir, tls_cert=pki["server_crt"]))
