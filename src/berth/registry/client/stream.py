"""A bounded byte pipe from the event loop to a worker thread, used to unpack a layer while
it downloads. The reader sees end-of-stream only after the writer has verified the blob's
digest (`finish()`); on `fail()` the reader raises, so a layer built from unverified bytes
is never published."""

from __future__ import annotations

import queue
import threading
import zlib

_EOF = object()


class PipeAborted(Exception):
    pass


class Pipe:
    def __init__(self, max_chunks: int = 32) -> None:
        self._q: queue.Queue[object] = queue.Queue(max_chunks)
        self._buf = b""
        self._pos = 0
        self._done = False
        self._error: BaseException | None = None
        self.closed = threading.Event()   # set when the reader gave up (or finished)

    # ---- writer side (called from a worker thread of the event loop) -----------------------
    def put(self, chunk: bytes) -> None:
        while True:
            if self.closed.is_set():
                raise PipeAborted("the layer reader stopped early")
            try:
                self._q.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        self._end(_EOF)

    def fail(self, exc: BaseException) -> None:
        self._end(exc)

    def _end(self, item: object) -> None:
        while not self.closed.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # ---- reader side (the unpacking thread) --------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        while self._pos >= len(self._buf) and not self._done:
            item = self._q.get()
            if item is _EOF:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                self._error = item
            else:
                self._buf, self._pos = item, 0  # type: ignore[assignment]
        if self._error is not None:
            raise PipeAborted(f"layer download failed: {self._error}")
        start = self._pos
        end = len(self._buf) if n is None or n < 0 else min(len(self._buf), start + n)
        self._pos = end
        if start == 0 and end == len(self._buf):
            return self._buf
        return self._buf[start:end]

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed.set()


class GunzipFeeder:
    """Decompresses gzip members as chunks arrive (in the download's worker thread, so the
    unpacking thread only parses the tar); passes anything that is not gzip through."""

    def __init__(self) -> None:
        self._mode: str | None = None    # "gzip" or "raw", decided by the first bytes
        self._head = b""
        self._z: zlib._Decompress | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._mode is None:
            self._head += chunk
            if len(self._head) < 2:
                return b""
            self._mode = "gzip" if self._head[:2] == b"\x1f\x8b" else "raw"
            chunk, self._head = self._head, b""
        if self._mode == "raw":
            return chunk
        out = []
        while chunk:
            if self._z is None:
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(self._z.decompress(chunk))
            if self._z.eof:
                chunk = self._z.unused_data   # another gzip member may follow
                self._z = None
            else:
                chunk = b""
        return b"".join(out)

    def flush(self) -> bytes:
        if self._mode is None:
            self._mode = "raw"
            return self._head
        if self._z is not None:
            tail = self._z.flush()
            if not self._z.eof:
                raise ValueError("gzip stream ended early")
            return tail
        return b""
