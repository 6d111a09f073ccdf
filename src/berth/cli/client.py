"""The Engine API client: HTTP/1.1 over the daemon's unix socket, nothing else.

Plain `http.client` for ordinary calls (fast to import), a raw socket for the hijacked
attach/exec streams. Every path is sent under the API version berth speaks.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_HOST = "unix:///run/berth/berth.sock"
API_VERSION = "1.45"


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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


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
            clean.append((k, json.dumps(v, separators=(",", ":"))))
        elif isinstance(v, list | tuple):
            clean.extend((k, str(x)) for x in v)   # repeated keys (`changes=..&changes=..`)
        else:
            clean.append((k, str(v)))
    return "?" + urlencode(clean) if clean else ""


def path_part(s: str) -> str:
    return quote(s, safe="")


class Response:
    """A streamed response: `.status`, `.headers`, and readers for its body."""

    def __init__(self, conn: _UnixConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self.raw = resp
        self.status = resp.status
        self.headers = resp.headers

    def read(self) -> bytes:
        try:
            return self.raw.read()
        finally:
            self.close()

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data.strip() else None

    def read_exact(self, n: int) -> bytes:
        """Up to n bytes; fewer only at the end of the body."""
        return self.raw.read(n)

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        while True:
            data = self.raw.read1(size)
            if not data:
                return
            yield data

    def json_stream(self) -> Iterator[dict[str, Any]]:
        """Docker's progress streams: JSON objects, one per line (or back to back)."""
        dec = json.JSONDecoder()
        buf = ""
        for chunk in self.chunks():
            buf += chunk.decode("utf-8", "replace")
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = dec.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                yield obj
        buf = buf.strip()
        if buf:
            try:
                yield json.loads(buf)
            except ValueError:
                pass

    def close(self) -> None:
        self.raw.close()
        self._conn.close()


class Client:
    def __init__(self, host: str, auto_start: bool = False) -> None:
        self.host = host
        self.path = socket_path(host)
        self.auto_start = auto_start
        self.prefix = f"/v{API_VERSION}"
        self._checked = False

    # -- plumbing --------------------------------------------------------------------------
    def _ensure_daemon(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self.auto_start:
            from berth.cli import autostart

            autostart.ensure_daemon(self.path)

    def _send(self, method: str, path: str, params: dict[str, Any] | None = None,
              body: Any = None, headers: dict[str, str] | None = None,
              timeout: float | None = None) -> Response:
        self._ensure_daemon()
        conn = _UnixConnection(self.path, timeout=timeout)
        hdrs = {"User-Agent": f"berth-cli/{API_VERSION}"}
        hdrs.update(headers or {})
        data: Any = None
        if body is not None:
            if isinstance(body, bytes | bytearray):
                data = bytes(body)
                hdrs.setdefault("Content-Type", "application/octet-stream")
            elif hasattr(body, "read"):
                data = body
                hdrs.setdefault("Content-Type", "application/x-tar")
            else:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
        try:
            if data is not None and hasattr(data, "read") and "Content-Length" not in hdrs:
                conn.putrequest(method, self.prefix + path + query(params))
                hdrs["Transfer-Encoding"] = "chunked"
                for k, v in hdrs.items():
                    conn.putheader(k, v)
                conn.endheaders()
                while True:
                    piece = data.read(1 << 20)
                    if not piece:
                        break
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.send(b"0\r\n\r\n")
            else:
                conn.request(method, self.prefix + path + query(params), body=data, headers=hdrs)
            raw = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError):
            conn.close()
            raise DaemonUnreachable(
                f"Cannot connect to the berth daemon at {self.host}. Is the berth daemon running?"
            ) from None
        except PermissionError:
            conn.close()
            raise DaemonUnreachable(
                f"permission denied while trying to connect to the berth daemon socket at {self.host}"
            ) from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            conn.close()
            raise CLIError(f"the connection to the berth daemon was lost ({exc})") from None
        return Response(conn, raw)

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None,
                stream: bool = False, timeout: float | None = None) -> Any:
        """Send a request; raise DaemonError on >= 400. stream=True returns the Response."""
        resp = self._send(method, path, params, body, headers, timeout)
        if resp.status >= 400:
            data = resp.read()
            raise DaemonError(resp.status, _error_message(resp.status, data))
        if stream:
            return resp
        data = resp.read()
        ctype = resp.headers.get("Content-Type", "")
        if not data.strip():
            return None
        if "json" in ctype or data[:1] in (b"{", b"["):
            try:
                return json.loads(data)
            except ValueError:
                return data.decode("utf-8", "replace")
        return data.decode("utf-8", "replace")

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("GET", path, params, **kw)

    def post(self, path: str, params: dict[str, Any] | None = None, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, params, body, **kw)

    def delete(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.request("DELETE", path, params, **kw)

    def ping(self, timeout: float = 2.0) -> bool:
        try:
            resp = self._send("GET", "/_ping", timeout=timeout)
            resp.read()
            return resp.status == 200
        except (CLIError, OSError):
            return False

    # -- hijacked streams (attach, exec start) ---------------------------------------------
    def hijack(self, path: str, params: dict[str, Any] | None = None, body: Any = None) -> HijackedStream:
        self._ensure_daemon()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            raise DaemonUnreachable(
                f"Cannot connect to the berth daemon at {self.host}. Is the berth daemon running?"
            ) from None
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {self.prefix}{path}{query(params)} HTTP/1.1\r\n"
                "Host: localhost\r\n"
                f"User-Agent: berth-cli/{API_VERSION}\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        s.sendall(head + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            more = s.recv(65536)
            if not more:
                s.close()
                raise CLIError("the berth daemon closed the connection before answering")
            buf += more
        header, _, rest = buf.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            s.close()
            raise CLIError(f"unexpected answer from the berth daemon: {lines[0]!r}") from None
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status >= 400:
            body_bytes = rest
            length = int(hdrs.get("content-length", "-1"))
            while length < 0 or len(body_bytes) < length:
                more = s.recv(65536)
                if not more:
                    break
                body_bytes += more
            s.close()
            if hdrs.get("transfer-encoding", "").lower() == "chunked":
                body_bytes = _dechunk(body_bytes)
            raise DaemonError(status, _error_message(status, body_bytes))
        return HijackedStream(s, rest, chunked=status == 200 and
                              hdrs.get("transfer-encoding", "").lower() == "chunked")


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def _error_message(status: int, data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
        if isinstance(obj, dict) and obj.get("message"):
            return str(obj["message"])
    except ValueError:
        pass
    return text or f"{status} {http.client.responses.get(status, '')}".strip()


class HijackedStream:
    """The raw two-way byte stream after `Upgrade: tcp` (or a 200 that keeps the socket)."""

    def __init__(self, sock: socket.socket, initial: bytes, chunked: bool = False) -> None:
        self.sock = sock
        self._pending = initial
        self._chunked = chunked
        self._chunk_left = 0
        self._eof = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, n: int = 65536) -> bytes:
        if self._chunked:
            return self._recv_chunked(n)
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        try:
            return self.sock.recv(n)
        except (ConnectionResetError, OSError):
            return b""

    def _fill(self) -> bool:
        try:
            more = self.sock.recv(65536)
        except OSError:
            more = b""
        if not more:
            return False
        self._pending += more
        return True

    def _recv_chunked(self, n: int) -> bytes:
        if self._eof:
            return b""
        while self._chunk_left == 0:
            while b"\r\n" not in self._pending:
                if not self._fill():
                    self._eof = True
                    return b""
            line, _, self._pending = self._pending.partition(b"\r\n")
            if not line.strip():
                continue
            try:
                self._chunk_left = int(line.split(b";")[0], 16)
            except ValueError:
                self._eof = True
                return b""
            if self._chunk_left == 0:
                self._eof = True
                return b""
        if not self._pending and not self._fill():
            self._eof = True
            return b""
        take = min(n, self._chunk_left, len(self._pending))
        data, self._pending = self._pending[:take], self._pending[take:]
        self._chunk_left -= take
        return data

    def recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            more = self.recv(n - len(out))
            if not more:
                break
            out += more
        return out

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
