"""A bounded byte pipe from the event loop to a worker thread, used to unpack a layer while
it downloads. The reader sees end-of-stream only after the writer has verified the blob's
digest (`finish()`); on `fail()` the reader raises, so a layer built from unverified bytes
is never published."""

from __future__ import annotations

import queue
import threading

_EOF = object()


class PipeAborted(Exception):
    pass


class Pipe:
    def __init__(self, max_chunks: int = 32) -> None:
        self._q: queue.Queue[object] = queue.Queue(max_chunks)
        self._buf = b""
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
        while not self._buf and not self._done:
            item = self._q.get()
            if item is _EOF:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                self._error = item
            else:
                self._buf = item  # type: ignore[assignment]
        if self._error is not None:
            raise PipeAborted(f"layer download failed: {self._error}")
        if n is None or n < 0:
            out, self._buf = self._buf, b""
            return out
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed.set()
