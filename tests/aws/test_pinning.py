"""Issue 12, defect 2: the AWS dispatcher resolves an app's host, checks every address with
the SSRF rules and connects only to the address it checked (real HTTP on loopback)."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wayline.aws.invoker import HttpxTransport
from wayline.aws.pinning import Resolver, pinned_client
from wayline.calls.cycle import Reply, Unreachable, call_response
from wayline.engine.protocol import CallResponse
from wayline.errors import ValidationError


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_POST(self) -> None:
        self.seen.append((self.path, self.headers.get("host", "")))
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("location", "http://169.254.169.254/latest/meta-data")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = b'"done"'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-inngest-sdk", "py:v0.5.19")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def app_port() -> Iterator[int]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def resolver(table: dict[str, Sequence[str]]) -> Resolver:
    def resolve(host: str, port: int) -> Sequence[str]:
        return table[host]

    return resolve


class Sender:
    """The dispatcher's transport, and what the cycle makes of its outcome."""

    def __init__(self, transport: HttpxTransport) -> None:
        self.transport = transport

    def call(self, url: str) -> CallResponse:
        reply: Reply | Unreachable
        try:
            reply = self.transport.send(url, {"content-type": "application/json"}, b"{}", 5)
        except Unreachable as exc:
            reply = exc
        return call_response(url, reply)


def invoker(**kw: object) -> Sender:
    return Sender(HttpxTransport(timeout_s=5, **kw))  # type: ignore[arg-type]


def test_a_name_resolving_to_loopback_is_refused_without_the_opt_in(app_port: int) -> None:
    resp = invoker(allow_private=False).call(f"http://localhost:{app_port}/api")
    assert resp.transport_error is not None
    assert "refused to call the app" in resp.transport_error
    assert "private or loopback address (localhost -> " in resp.transport_error
    assert Recorder.seen == []  # no connection was made


def test_a_custom_name_resolving_to_a_private_address_is_refused(app_port: int) -> None:
    resolve = resolver({"app.example.test": ["127.0.0.1"]})
    sender = invoker(allow_private=False, resolve=resolve)
    resp = sender.call(f"http://app.example.test:{app_port}/api")
    assert "app.example.test -> 127.0.0.1" in str(resp.transport_error)
    assert Recorder.seen == []


def test_one_bad_address_among_good_ones_is_enough_to_refuse(app_port: int) -> None:
    resolve = resolver({"app.example.test": ["93.184.216.34", "169.254.169.254"]})
    client = pinned_client(allow_private=True, timeout=5, resolve=resolve)
    with pytest.raises(ValidationError, match="metadata endpoint"), client:
        client.post(f"http://app.example.test:{app_port}/api")
    assert Recorder.seen == []


def test_the_connection_goes_to_the_checked_address_with_the_name_kept(app_port: int) -> None:
    # The name exists in no DNS: reaching the app proves the pinned address was used.
    resolve = resolver({"app.example.test": ["127.0.0.1"]})
    resp = invoker(allow_private=True, resolve=resolve).call(
        f"http://app.example.test:{app_port}/api?fnId=shop-charge&stepId=step"
    )
    assert resp.status == 200 and resp.body == "done"
    assert Recorder.seen == [("/api?fnId=shop-charge&stepId=step", f"app.example.test:{app_port}")]


def test_redirects_are_not_followed(app_port: int) -> None:
    with pinned_client(allow_private=True, timeout=5) as client:
        resp = client.post(f"http://127.0.0.1:{app_port}/redirect")
    assert resp.status_code == 302
    assert [path for path, _ in Recorder.seen] == ["/redirect"]


def test_environment_proxies_are_ignored(app_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with pinned_client(allow_private=True, timeout=5) as client:
        assert client.post(f"http://127.0.0.1:{app_port}/api").status_code == 200


def test_an_unresolvable_name_is_an_ordinary_transport_failure() -> None:
    def fail(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    resp = invoker(resolve=fail).call("http://nowhere.example.test/api")
    assert resp.transport_error == "could not reach http://nowhere.example.test/api: ConnectError"


def test_httpx_errors_still_map(app_port: int) -> None:
    with pinned_client(allow_private=True, timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.post("http://127.0.0.1:9/api")  # nothing listens on port 9


# ------------------------------------------------------------------ TLS keeps the name


def _certificate(name: str, directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (it is its own authority)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_verifies_the_name_while_connecting_to_the_pinned_address(tmp_path: Path) -> None:
    cert, key = _certificate("app.example.test", tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    port = int(server.server_address[1])
    trust = ssl.create_default_context(cafile=str(cert))
    resolve = resolver({"app.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    try:
        with pinned_client(allow_private=True, timeout=5, resolve=resolve, verify=trust) as c:
            assert c.post(f"https://app.example.test:{port}/api").status_code == 200
            with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|mismatch"):
                c.post(f"https://other.example.test:{port}/api")  # same address, wrong name
    finally:
        server.shutdown()
        server.server_close()
    assert Recorder.seen == [("/api", f"app.example.test:{port}")]
