"""The SSRF guard of webhook URLs (system.notify.ssrf)."""

import pytest

from system.notify.ssrf import (
    PostResult,
    WebhookUrlRefused,
    pinned_post,
    webhook_url_check,
    webhook_url_resolve,
)

pytestmark = pytest.mark.embedded


@pytest.fixture
def strict(settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE = False
    return settings


def refusal(url: str) -> WebhookUrlRefused:
    with pytest.raises(WebhookUrlRefused) as caught:
        webhook_url_check(url)
    return caught.value


def test_public_ip_literal_over_https_is_allowed_without_dns(strict):
    checked = webhook_url_resolve("https://93.184.216.34:8443/hooks?x=1")

    assert checked.addresses == ("93.184.216.34",)
    assert (checked.host, checked.port, checked.target) == ("93.184.216.34", 8443, "/hooks?x=1")


def test_http_is_refused_unless_allowed(strict):
    error = refusal("http://93.184.216.34/hook")

    assert error.code == "invalid_webhook_url"
    assert error.http_status == 400
    assert "scheme" in error.details["url"][0]
    strict.WEBHOOK_ALLOW_HTTP = True
    webhook_url_check("http://93.184.216.34/hook")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://localhost/hook",
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(strict, url):
    error = refusal(url)

    assert "non-public address" in error.details["url"][0]
    strict.WEBHOOK_ALLOW_PRIVATE = True
    webhook_url_check(url)


def test_a_host_that_does_not_resolve_is_refused_even_when_private_is_allowed(strict):
    strict.WEBHOOK_ALLOW_PRIVATE = True

    error = refusal("https://no-such-host.invalid/hook")

    assert "does not resolve" in error.details["url"][0]


def test_credentials_in_the_url_are_refused(strict):
    strict.WEBHOOK_ALLOW_PRIVATE = True

    error = refusal("https://user:secret@93.184.216.34/hook")

    assert "credentials" in error.details["url"][0]
    assert "secret" not in error.message


def test_overlong_urls_and_missing_hosts_are_refused(strict):
    assert "longer than" in refusal("https://93.184.216.34/" + "a" * 2048).details["url"][0]
    assert "no host" in refusal("https:///hook").details["url"][0]


def self_signed(tmp_path, host: str):
    """A certificate for `host` (and its key) in PEM files."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate for "localhost", recording the TLS
    server name and the Host header of each request."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert_path, key_path = self_signed(tmp_path, "localhost")
    seen: dict[str, list] = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen["host"].append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.server_address[1], cert_path, seen
    server.shutdown()
    server.server_close()


def post(url: str) -> PostResult:
    return pinned_post(webhook_url_resolve(url), body=b"{}", headers={}, timeout=5, max_bytes=1024)


def test_https_connects_to_the_checked_address_with_the_urls_name_for_tls(
    settings, tls_receiver, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    port, cert_path, seen = tls_receiver

    untrusted = post(f"https://localhost:{port}/hooks")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))  # now the receiver's certificate is trusted
    trusted = post(f"https://localhost:{port}/hooks")

    assert untrusted.status is None
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.error
    assert trusted.status == 204
    assert seen["sni"] == ["localhost", "localhost"]
    assert seen["host"] == [f"localhost:{port}"]
