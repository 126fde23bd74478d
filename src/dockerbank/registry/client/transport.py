"""HTTP to one registry: scheme choice, connection reuse per thread, auth challenges, errors.

Secure registries get verified HTTPS only. Insecure ones (loopback, ``registries.json``,
``--insecure-registry``) try HTTPS without verification first and fall back to plain
HTTP, as docker does. A 401 is answered once: Basic with stored credentials, or a
Bearer token fetched from the challenge's realm (cached per scope).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterable
from urllib.parse import urlencode, urljoin, urlsplit

from dockerbank.errors import DockerbankError, NotFound, Offline
from dockerbank.registry.client.auth import basic_header, parse_www_authenticate

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

    from dockerbank.streams import Reader

USER_AGENT = "dockerbank/0.1"
_TIMEOUT = 120
_BLOCK = 1 << 20  # http.client sends file bodies in blocks of this size (its default, 8 KiB, is slow)


class RegistryAuthError(DockerbankError):
    """The registry refused our credentials (or wants some)."""


class RegistryHTTPError(DockerbankError):
    """An error response of the registry, with the spec's error code when it sent one."""

    def __init__(self, message: str, status: int, code: str | None):
        super().__init__(message)
        self.status = status
        self.code = code


class Response:
    """A response whose body the caller reads (streaming) and then closes."""

    def __init__(self, raw: http.client.HTTPResponse, on_done):
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self._on_done = on_done
        self._broken: Offline | None = None

    def read(self, size: int = -1) -> bytes:
        """Read the body; a body cut short raises Offline (after returning what did arrive)."""
        if self._broken is not None:
            raise self._broken
        try:
            data = self.raw.read() if size is None or size < 0 else self.raw.read(size)
        except http.client.IncompleteRead as exc:
            self._on_done(False)
            self._broken = Offline(f"connection to the registry broke while reading: {exc}")
            if exc.partial:
                return exc.partial
            raise self._broken from exc
        except (OSError, http.client.HTTPException) as exc:
            self._on_done(False)
            raise Offline(f"connection to the registry broke while reading: {exc}") from exc
        if not data and size != 0 and self.raw.length:
            # http.client returns b"" when the peer closes before Content-Length bytes came
            self._on_done(False)
            raise Offline(f"connection to the registry broke while reading: {self.raw.length} bytes missing")
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self, reusable: bool = True) -> None:
        self._on_done(reusable and self.raw.isclosed())

    def __enter__(self) -> Response:  # noqa: PYI034 -- a final class in practice
        return self

    def __exit__(self, *exc) -> None:
        self.close(reusable=exc[0] is None)


class Transport:
    """Requests to one registry (``host[:port]``), safe to share between threads."""

    def __init__(self, registry: str, *, insecure: bool = False, credentials: tuple[str, str] | None = None):
        self.registry = registry
        self.host = "registry-1.docker.io" if registry == "docker.io" else registry
        self.insecure = insecure
        self.credentials = credentials
        self._scheme: str | None = None if insecure else "https"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._auth: dict[str, str] = {}  # scope -> Authorization header value

    # --- connections -----------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _new_connection(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=_TIMEOUT, context=self._ssl_context(), blocksize=_BLOCK)
        return http.client.HTTPConnection(host, timeout=_TIMEOUT, blocksize=_BLOCK)

    def scheme(self) -> str:
        """https, or http for an insecure registry that does not speak TLS (probed once)."""
        with self._lock:
            if self._scheme is None:
                probe = self._new_connection("https", self.host)
                try:
                    probe.request("GET", "/v2/", headers={"User-Agent": USER_AGENT})
                    probe.getresponse().read()
                    self._scheme = "https"
                except (ssl.SSLError, ConnectionResetError, http.client.BadStatusLine,
                        http.client.RemoteDisconnected):
                    self._scheme = "http"
                except OSError as exc:
                    raise Offline(f"cannot reach registry {self.registry}: {_reason(exc)}") from exc
                finally:
                    probe.close()
            return self._scheme

    @property
    def base_url(self) -> str:
        return f"{self.scheme()}://{self.host}"

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._new_connection(self.scheme(), self.host)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- requests --------------------------------------------------------------------------

    def request(self, method: str, path: str, *, headers: dict | None = None,
                body: bytes | Reader | Iterable[bytes] | None = None, scope: str = "",
                ok: tuple[int, ...] = (200,), follow: bool = True) -> Response:
        """Send a request (``path`` absolute or relative to the registry); return an OK response.

        A status outside ``ok`` raises NotFound / RegistryAuthError / RegistryHTTPError with the
        registry's own error message.
        """
        url = urljoin(self.base_url + "/", path)
        rewind: Any = body if hasattr(body, "tell") and hasattr(body, "seek") else None  # a file is sent again
        start = rewind.tell() if rewind is not None else None
        response = self._send(method, url, headers or {}, body, scope)
        if response.status == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.read()
            response.close()
            self._authenticate(challenge, scope)
            if start is not None:
                rewind.seek(start)
            elif body is not None and not isinstance(body, (bytes, bytearray)):
                raise RegistryAuthError(f"{self.registry} asked for credentials in the middle of an upload")
            response = self._send(method, url, headers or {}, body, scope)
        if follow and response.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
            location = urljoin(url, response.headers.get("Location", ""))
            response.read()
            response.close()
            response = self._send_elsewhere(method, location, headers or {}, scope)
        if response.status not in ok:
            raise self._error(method, url, response)
        return response

    def _send(self, method: str, url: str, headers: dict, body, scope: str) -> Response:
        parts = urlsplit(url)
        if parts.netloc != self.host:
            return self._send_elsewhere(method, url, headers, scope, body)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = {"User-Agent": USER_AGENT, **headers}
        auth = self._auth.get(scope) or self._auth.get("")
        if auth:
            all_headers["Authorization"] = auth
        chunked = body is not None and not isinstance(body, (bytes, bytearray)) and not hasattr(body, "read")
        if body is None and method in ("PUT", "POST", "PATCH"):
            all_headers.setdefault("Content-Length", "0")
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, target, body=body, headers=all_headers, encode_chunked=chunked)
                raw = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                # a kept-alive connection the server had closed: retry once on a fresh one
                self._drop_connection()
                rewindable = body is None or isinstance(body, (bytes, bytearray))
                if attempt == 2 or not rewindable:
                    raise Offline(f"connection to registry {self.registry} failed: {_reason(exc)}") from exc
            except OSError as exc:
                self._drop_connection()
                raise Offline(f"cannot reach registry {self.registry}: {_reason(exc)}") from exc

        def done(reusable: bool) -> None:
            if not reusable:
                self._drop_connection()

        return Response(raw, done)

    def _send_elsewhere(self, method: str, url: str, headers: dict, scope: str, body=None) -> Response:
        """A request to another host (a redirect to blob storage): no credentials go along."""
        parts = urlsplit(url)
        conn = self._new_connection(parts.scheme, parts.netloc)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, target, body=body, headers={"User-Agent": USER_AGENT, **headers})
            raw = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise Offline(f"cannot reach {parts.netloc}: {_reason(exc)}") from exc
        return Response(raw, lambda reusable: conn.close())

    def _error(self, method: str, url: str, response: Response) -> DockerbankError:
        try:
            body = response.read(1 << 16)
        finally:
            response.close()
        code = message = None
        try:
            errors = json.loads(body).get("errors") or []
            if errors:
                code = errors[0].get("code")
                message = f"{str(code).lower().replace('_', ' ')}: {errors[0].get('message', '')}"
                detail = errors[0].get("detail")
                if isinstance(detail, str) and detail:
                    message += f" ({detail})"
        except (ValueError, AttributeError):
            pass
        message = message or f"{method} {urlsplit(url).path}: HTTP {response.status}"
        if response.status == 401:
            return RegistryAuthError(f"unauthorized: {message}")
        if response.status == 404:
            return NotFound(message)
        return RegistryHTTPError(message, response.status, code)

    # --- authentication --------------------------------------------------------------------

    def authorize(self, scope: str) -> None:
        """Ping ``/v2/`` and obtain what the registry asks for, before large bodies are sent."""
        if scope in self._auth:
            return
        response = self._send("GET", self.base_url + "/v2/", {}, None, scope)
        response.read()
        response.close()
        if response.status == 401:
            self._authenticate(response.headers.get("WWW-Authenticate", ""), scope)
        elif response.status >= 400 and response.status != 404:
            raise RegistryHTTPError(f"registry {self.registry} answered /v2/ with HTTP {response.status}",
                                    response.status, None)

    def _authenticate(self, header: str, scope: str) -> None:
        challenges = parse_www_authenticate(header)
        for challenge in challenges:
            if challenge.scheme == "bearer" and challenge.realm:
                self._auth[scope] = "Bearer " + self._fetch_token(challenge.params, scope)
                return
            if challenge.scheme == "basic":
                if not self.credentials:
                    raise RegistryAuthError(
                        f"unauthorized: {self.registry} requires authentication: run 'dockerbank login {self.registry}'"
                    )
                self._auth[scope] = basic_header(*self.credentials)
                self._auth.setdefault("", self._auth[scope])
                return
        raise RegistryAuthError(f"unauthorized: {self.registry} sent no usable challenge ({header or 'none'})")

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        query = [("service", params["service"])] if params.get("service") else []
        for item in filter(None, (params.get("scope") or scope).split(" ")):
            query.append(("scope", item))
        realm = params["realm"]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        parts = urlsplit(url)
        conn = self._new_connection(parts.scheme, parts.netloc)
        headers = {"User-Agent": USER_AGENT}
        if self.credentials:
            headers["Authorization"] = basic_header(*self.credentials)
        try:
            conn.request("GET", parts.path + "?" + parts.query, headers=headers)
            raw = conn.getresponse()
            body = raw.read()
        except OSError as exc:
            raise Offline(f"cannot reach the token service {parts.netloc}: {_reason(exc)}") from exc
        finally:
            conn.close()
        if raw.status in (401, 403):
            raise RegistryAuthError(f"unauthorized: incorrect username or password for {self.registry}")
        if raw.status != 200:
            raise RegistryAuthError(f"token service {parts.netloc} answered HTTP {raw.status}")
        try:
            data = json.loads(body)
            return data.get("token") or data["access_token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryAuthError(f"token service {parts.netloc} sent no token") from exc

    def close(self) -> None:
        self._drop_connection()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def transport_for(registry: str, registries, credentials) -> Transport:
    """A Transport configured from ``RegistriesConfig`` and a ``CredentialStore``."""
    return Transport(registry, insecure=registries.is_insecure(registry), credentials=credentials.get(registry))
