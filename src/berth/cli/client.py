"""The Engine API client: HTTP/1.1 over the daemon's unix socket, nothing else.

A minimal HTTP/1.1 exchange per request (http.client would cost ~40 ms of imports on every
command), the same socket kept raw for hijacked attach/exec streams. Every path is sent
under the API version berth speaks.

Every `berth` command imports this module, so it sticks to cheap imports: `_socket` (the C
module; socket.py's enum conversions and selectors cost ~2 ms) and its own percent-encoding
(urllib.parse pulls in ipaddress and more, ~2 ms).
"""

from __future__ import annotations

import _socket
import os

from berth import API_VERSION
from berth.cli import wirejson

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from _socket import socket as Socket
    from collections.abc import Iterator
    from typing import Any

DEFAULT_HOST = "unix:///run/berth/berth.sock"


class CLIError(Exception):
    """Fails the command with a message on stderr and an exit status.

    Like the docker CLI: 1 for a failed command, 125 when run/create/start fail before the
    container's own process runs (main applies that), 126/127 when it cannot be invoked.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class DaemonError(CLIError):
    """The daemon answered with an error status; message is its `message` field."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.http_status = http_status
        self.daemon_message = message


class DaemonUnreachable(CLIError):
    pass


def resolve_host(flag_host: str | None) -> tuple[str, bool]:
    """(host, is_default): -H/--host, else BERTH_HOST, else the default socket."""
    if flag_host:
        return flag_host, flag_host == DEFAULT_HOST
    env = os.environ.get("BERTH_HOST")
    if env:
        return env, env == DEFAULT_HOST
    return DEFAULT_HOST, True


def socket_path(host: str) -> str:
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if host.startswith("/"):
        return host
    raise CLIError(f'invalid daemon address "{host}": berth speaks to its daemon over a unix '
                   "socket (unix:///path/to/berth.sock)")


def query(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    clean: list[tuple[str, str]] = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            clean.append((k, "1" if v else "0"))
        elif isinstance(v, dict):
            clean.append((k, wirejson.dumps(v, compact=True)))
        elif isinstance(v, list | tuple):
            clean.extend((k, str(x)) for x in v)   # repeated keys (`changes=..&changes=..`)
        else:
            clean.append((k, str(v)))
    return "?" + "&".join(f"{_escape(k, True)}={_escape(v, True)}" for k, v in clean) if clean else ""


# urllib.parse's always-safe bytes; everything else is sent as %XX of its UTF-8 bytes
_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
_ESCAPED = [chr(b) if b in _SAFE else f"%{b:02X}" for b in range(256)]
_ESCAPED_PLUS = [*_ESCAPED[:32], "+", *_ESCAPED[33:]]


def _escape(s: str, plus: bool = False) -> str:
    """urllib.parse.quote(s, safe="") (quote_plus when plus: a space as "+")."""
    table = _ESCAPED_PLUS if plus else _ESCAPED
    return "".join([table[b] for b in s.encode("utf-8")])


def path_part(s: str) -> str:
    return _escape(s)


class _Conn:
    """One HTTP/1.1 exchange over a unix socket, read through a small buffer.

    http.client would cost ~40 ms of imports (email, ssl) on every `berth` command."""

    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        try:
            more = self.sock.recv(65536)
        except (ConnectionResetError, OSError):
            more = b""
        if not more:
            self.eof = True
            return False
        self.buf += more
        return True

    def take(self, n: int) -> bytes:
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                raise ConnectionResetError("Remote end closed connection without response")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(None, 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            raise CLIError(f"unexpected answer from the berth daemon: {lines[0]!r}") from None
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class _Chunked:
    """A chunked body (Transfer-Encoding: chunked) read through a _Conn's buffer."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn
        self._left = 0       # bytes of the current chunk still to come
        self._done = False

    def read1(self, n: int) -> bytes:
        """Some bytes of the body (at most n); b"" at its end (the last chunk, a cut-off
        connection or a chunk size that is not hex)."""
        if self._done:
            return b""
        c = self._conn
        while self._left == 0:
            while b"\r\n" not in c.buf:
                if not c.fill():
                    return self._end()
            line, _, c.buf = c.buf.partition(b"\r\n")
            if not line.strip():
                continue
            try:
                self._left = int(line.split(b";")[0], 16)
            except ValueError:
                return self._end()
            if self._left == 0:
                return self._end()
        if not c.buf and not c.fill():
            return self._end()
        data = c.take(min(n, self._left))
        self._left -= len(data)
        return data

    def _end(self) -> bytes:
        self._done = True
        return b""


class Response:
    """A streamed response: `.status`, `.headers` (lower-case names), and body readers."""

    def __init__(self, conn: _Conn, status: int, headers: dict[str, str], method: str = "GET") -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        self._chunks = _Chunked(conn) if chunked else None
        length = headers.get("content-length")
        self._left: int | None = int(length) if length is not None and not chunked else None
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._left = 0
        self._done = False

    def read1(self, n: int = 65536) -> bytes:
        """Some bytes of the body (at most n); b"" at its end."""
        if self._done:
            return b""
        if self._chunks is not None:
            return self._chunks.read1(n)
        c = self._conn
        if self._left is not None:
            if self._left == 0:
                self._done = True
                return b""
            n = min(n, self._left)
        if not c.buf and not c.fill():
            self._done = True
            return b""
        data = c.take(n)
        if self._left is not None:
            self._left -= len(data)
        return data

    def read(self) -> bytes:
        try:
            return b"".join(self.chunks())
        finally:
            self.close()

    def json(self) -> Any:
        data = self.read()
        return wirejson.loads(data) if data.strip() else None

    def first_json(self) -> Any:
        """The body's first JSON value (None if there is none), without waiting for the
        rest, as the docker CLI decodes a wait answer: the daemon may end the body later."""
        try:
            return next(self.json_stream(), None)
        finally:
            self.close()

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        while True:
            data = self.read1(size)
            if not data:
                return
            yield data

    def json_stream(self) -> Iterator[dict[str, Any]]:
        """Docker's progress streams: JSON objects, one per line (or back to back)."""
        import codecs

        text = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span chunks
        buf = ""
        for chunk in self.chunks():
            buf += text.decode(chunk)
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = wirejson.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                yield obj
        buf = buf.strip()
        if buf:
            try:
                yield wirejson.loads(buf)
            except ValueError:
                pass

    def close(self) -> None:
        self._conn.close()


class Client:
    def __init__(self, host: str, auto_start: bool = False, debug: bool = False) -> None:
        self.debug = debug
        self.host = host
        self.path = socket_path(host)
        self.auto_start = auto_start
        self.prefix = f"/v{os.environ.get('BERTH_API_VERSION') or API_VERSION}"
        self._version_settled = bool(os.environ.get("BERTH_API_VERSION"))
        self._autostarted = False

    # -- API version: berth speaks 1.45; an older daemon (Debian's dockerd: 1.41) says so
    def _downgrade(self, status: int, data: bytes) -> bool:
        """After `client version X is too new. Maximum supported API version is Y`: use Y."""
        if status != 400 or self._version_settled:
            return False
        import re

        m = re.search(r"Maximum supported API version is (\d+\.\d+)", _error_message(status, data))
        if not m:
            return False
        self.prefix = f"/v{m.group(1)}"
        self._version_settled = True
        return True

    def _settle_version(self) -> None:
        """Before a body that cannot be sent twice: ask /_ping which version the daemon speaks."""
        if self._version_settled:
            return
        self._version_settled = True
        resp = self._send("GET", "/_ping", versioned=False)
        resp.read()
        theirs = resp.headers.get("api-version", "")
        try:
            if tuple(int(x) for x in theirs.split(".")) < tuple(int(x) for x in API_VERSION.split(".")):
                self.prefix = f"/v{theirs}"
        except ValueError:
            pass

    # -- plumbing --------------------------------------------------------------------------
    def _connect(self, timeout: float | None = None) -> Socket:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        if timeout is not None:
            sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if self.auto_start and not self._autostarted:
                # nobody answers on the default socket: start berthd (root only), once; the
                # common case (a daemon answers) pays neither the check nor its imports
                from berth.cli import autostart

                self._autostarted = True
                autostart.ensure_daemon(self.path)
                return self._connect(timeout)
            raise DaemonUnreachable(
                f"Cannot connect to the berth daemon at {self.host}. Is the berth daemon running?"
            ) from None
        except PermissionError:
            sock.close()
            raise DaemonUnreachable(
                f"permission denied while trying to connect to the berth daemon socket at {self.host}"
            ) from None
        return sock

    def _head(self, method: str, path: str, params: dict[str, Any] | None,
              headers: dict[str, str], versioned: bool = True) -> bytes:
        prefix = self.prefix if versioned else ""
        if self.debug:
            import sys

            print(f"berth: debug: {method} {prefix}{path}{query(params)}", file=sys.stderr)
        lines = [f"{method} {prefix}{path}{query(params)} HTTP/1.1", "Host: localhost",
                 f"User-Agent: berth-cli/{API_VERSION}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def _send(self, method: str, path: str, params: dict[str, Any] | None = None,
              body: Any = None, headers: dict[str, str] | None = None,
              timeout: float | None = None, versioned: bool = True) -> Response:
        hdrs = dict(headers or {})
        data: Any = None
        if body is not None:
            if isinstance(body, bytes | bytearray):
                data = bytes(body)
                hdrs.setdefault("Content-Type", "application/octet-stream")
            elif hasattr(body, "read"):
                data = body
                hdrs.setdefault("Content-Type", "application/x-tar")
            else:
                data = wirejson.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
        streaming = data is not None and hasattr(data, "read")
        if streaming and versioned:
            self._settle_version()
        if streaming and "Content-Length" not in hdrs:
            hdrs["Transfer-Encoding"] = "chunked"
        elif not streaming:
            hdrs["Content-Length"] = str(len(data) if data is not None else 0)
        hdrs.setdefault("Connection", "close")
        sock = self._connect(timeout)
        conn = _Conn(sock)
        try:
            head = self._head(method, path, params, hdrs, versioned)
            if streaming:
                sock.sendall(head)
                chunked = "Transfer-Encoding" in hdrs
                while True:
                    piece = data.read(1 << 20)
                    if not piece:
                        break
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
            else:
                sock.sendall(head + (data or b""))
            status, rh = conn.read_head()
            while status == 100:
                status, rh = conn.read_head()
        except (BrokenPipeError, ConnectionResetError) as exc:
            # the daemon may refuse early and close while we still send: read its answer
            conn.close()
            raise CLIError(f"the connection to the berth daemon was lost ({exc})") from None
        except TimeoutError:
            conn.close()
            raise CLIError("the berth daemon did not answer in time") from None
        return Response(conn, status, rh, method)

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None,
                stream: bool = False, timeout: float | None = None) -> Any:
        """Send a request; raise DaemonError on >= 400. stream=True returns the Response."""
        resp = self._send(method, path, params, body, headers, timeout)
        if resp.status >= 400:
            data = resp.read()
            if self._downgrade(resp.status, data):
                return self.request(method, path, params, body, headers, stream, timeout)
            raise DaemonError(resp.status, _error_message(resp.status, data))
        if stream:
            return resp
        data = resp.read()
        ctype = resp.headers.get("content-type", "")
        if not data.strip():
            return None
        if "json" in ctype or data[:1] in (b"{", b"["):
            try:
                return wirejson.loads(data)
            except ValueError:
                return data.decode("utf-8", "replace")
        return data.decode("utf-8", "replace")

    def begin(self, method: str, path: str, params: dict[str, Any] | None = None,
              head_timeout: float = 5.0) -> Response | None:
        """Send a body-less request and wait only for the response head.

        Used for `wait` before `start`, as the docker CLI does: the daemon sends the head
        once the waiter is registered, so no exit can slip by. None if the head does not
        come within head_timeout (a daemon that answers only at the end)."""
        sock = self._connect()
        conn = _Conn(sock)
        try:
            sock.sendall(self._head(method, path, params, {"Content-Length": "0", "Connection": "close"}))
            sock.settimeout(head_timeout)
            status, hdrs = conn.read_head()
            sock.settimeout(None)
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            conn.close()
            return None
        resp = Response(conn, status, hdrs, method)
        if status >= 400:
            data = resp.read()
            if self._downgrade(status, data):
                return self.begin(method, path, params, head_timeout)
            raise DaemonError(status, _error_message(status, data))
        return resp

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("GET", path, params, **kw)

    def post(self, path: str, params: dict[str, Any] | None = None, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, params, body, **kw)

    def delete(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("DELETE", path, params, **kw)

    def experimental(self) -> bool:
        """Whether the daemon runs with experimental features (/_ping's Docker-Experimental)."""
        resp = self._send("GET", "/_ping", versioned=False)
        resp.read()
        return resp.headers.get("docker-experimental", "") == "true"

    def ping(self, timeout: float = 2.0) -> bool:
        try:
            resp = self._send("GET", "/_ping", timeout=timeout, versioned=False)
            resp.read()
            return resp.status == 200
        except (CLIError, OSError):
            return False

    # -- hijacked streams (attach, exec start) ---------------------------------------------
    def hijack(self, path: str, params: dict[str, Any] | None = None, body: Any = None) -> HijackedStream:
        """POST with `Upgrade: tcp`; after the 101 (or 200) the socket carries raw stdio."""
        sock = self._connect()
        data = wirejson.dumps(body).encode() if body is not None else b""
        head = self._head("POST", path, params, {
            "Connection": "Upgrade", "Upgrade": "tcp", "Content-Type": "application/json",
            "Content-Length": str(len(data))})
        conn = _Conn(sock)
        try:
            sock.sendall(head + data)
            status, hdrs = conn.read_head()
        except (BrokenPipeError, ConnectionResetError) as exc:
            conn.close()
            raise CLIError(f"the connection to the berth daemon was lost ({exc})") from None
        if status >= 400:
            data = Response(conn, status, hdrs).read()
            if self._downgrade(status, data):
                return self.hijack(path, params, body)
            raise DaemonError(status, _error_message(status, data))
        return HijackedStream(sock, conn.buf, chunked=status == 200 and
                              hdrs.get("transfer-encoding", "").lower() == "chunked")


def _error_message(status: int, data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    try:
        obj = wirejson.loads(text)
        if isinstance(obj, dict) and obj.get("message"):
            return str(obj["message"])
    except ValueError:
        pass
    return text or f"HTTP status {status}"


class HijackedStream:
    """The raw two-way byte stream after `Upgrade: tcp` (or a 200 that keeps the socket)."""

    def __init__(self, sock: Socket, initial: bytes, chunked: bool = False) -> None:
        self.sock = sock
        self._conn = _Conn(sock)
        self._conn.buf = initial     # what came after the answer's head
        self._chunks = _Chunked(self._conn) if chunked else None

    def fileno(self) -> int:
        return self.sock.fileno()

    def buffered(self) -> bool:
        """Whether recv() has bytes already read to hand out at once (a raw stream's: a
        chunked one's buffer may hold part of a chunk's size line only)."""
        return self._chunks is None and bool(self._conn.buf)

    def recv(self, n: int = 65536) -> bytes:
        if self._chunks is not None:
            return self._chunks.read1(n)
        if self._conn.buf:
            return self._conn.take(n)
        try:
            return self.sock.recv(n)
        except (ConnectionResetError, OSError):
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
