"""The SSRF guard of webhook URLs: checked when an endpoint is created or its URL changed, and
again before every delivery (the name may resolve elsewhere by then: DNS rebinding), so the
delivery connects to an address this module has just approved.

Only `https` (`http` too with WEBHOOK_ALLOW_HTTP), no userinfo, at most 2,048 characters, and
every address the host resolves to public: not private, loopback, link-local, multicast,
reserved or unspecified, IPv4-mapped IPv6 judged as the IPv4 it maps. WEBHOOK_ALLOW_PRIVATE
lifts the address rule (tests, a laptop), never the others.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from system.kernel.exceptions import DomainError

MAX_URL_LENGTH = 2048
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlRefused(DomainError):
    code = "invalid_webhook_url"
    http_status = 400
    message = "The webhook URL is not allowed."

    def __init__(self, reason: str) -> None:
        super().__init__(f"The webhook URL is not allowed: {reason}.", details={"url": [reason]})
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL that passed the guard, with the addresses it resolved to (all approved)."""

    scheme: str
    host: str  # as in the URL (the Host header and the TLS server name)
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]


def address_is_public(address: _IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return address_is_public(mapped)
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _resolve(host: str, port: int) -> list[_IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    # An IPv6 scope id ("fe80::1%eth0") is dropped: the address alone decides.
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def webhook_url_resolve(url: str) -> CheckedUrl:
    """Check `url` and resolve its host now; raises WebhookUrlRefused with the reason."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlRefused(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookUrlRefused(f"not a valid URL ({error})") from None
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        raise WebhookUrlRefused("the scheme must be " + " or ".join(allowed))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookUrlRefused("credentials in the URL are not allowed")
    host = parts.hostname
    if not host:
        raise WebhookUrlRefused("the URL has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not addresses:
        raise WebhookUrlRefused(f"the host {host} does not resolve")
    if not settings.WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not address_is_public(address):
                raise WebhookUrlRefused(f"the host resolves to a non-public address ({address})")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return CheckedUrl(
        scheme=parts.scheme,
        host=host,
        port=port,
        target=target,
        addresses=tuple(str(address) for address in addresses),
    )


def webhook_url_check(url: str) -> None:
    """Raise WebhookUrlRefused unless `url` may receive webhooks (see the module's rules)."""
    webhook_url_resolve(url)


@dataclass(frozen=True, slots=True)
class PostResult:
    """What a POST got: a status (None when no response came), a Retry-After value, an error
    (short, no secrets)."""

    status: int | None
    retry_after: str | None = None
    error: str = ""


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the approved address; TLS checks the certificate against the URL's host."""

    def __init__(self, address: str, port: int, *, server_name: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_name)


def _host_header(checked: CheckedUrl) -> str:
    host = f"[{checked.host}]" if ":" in checked.host else checked.host
    default = 443 if checked.scheme == "https" else 80
    return host if checked.port == default else f"{host}:{checked.port}"


def pinned_post(
    checked: CheckedUrl, *, body: bytes, headers: dict[str, str], timeout: float, max_bytes: int
) -> PostResult:
    """POST `body` to the URL at one of its approved addresses (the next one when a connection
    is refused), never following a redirect, reading at most `max_bytes` of the answer, the
    whole exchange within about `timeout` seconds."""
    deadline = time.monotonic() + timeout
    error = "no address"
    for address in checked.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return PostResult(None, error="timeout")
        if checked.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPSConnection(
                address, checked.port, server_name=checked.host, timeout=remaining
            )
        else:
            conn = http.client.HTTPConnection(address, checked.port, timeout=remaining)
        try:
            try:
                conn.connect()
            except (ConnectionError, socket.gaierror) as exc:
                error = f"connection failed ({type(exc).__name__})"
                continue  # nothing was sent: the next address may answer
            conn.request(
                "POST",
                checked.target,
                body=body,
                headers={"Host": _host_header(checked), **headers},
            )
            sock = conn.sock  # the response reads from it after getresponse drops it
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            response = conn.getresponse()
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            response.read(max_bytes)
            return PostResult(response.status, retry_after=response.getheader("Retry-After"))
        except TimeoutError:
            return PostResult(None, error="timeout")
        except ssl.SSLError as exc:
            return PostResult(None, error=f"TLS error ({exc.reason or type(exc).__name__})")
        except (OSError, http.client.HTTPException) as exc:
            return PostResult(None, error=f"connection error ({type(exc).__name__})")
        finally:
            conn.close()
    return PostResult(None, error=error)
