"""Fast gzip for pushing layers: `pigz` (multi-threaded) when installed, else zlib level 1.
The compressed bytes go to a temp file while their sha256 is computed in the same pass."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 20


@dataclass
class Compressed:
    path: str
    digest: str
    size: int


def _pigz() -> str | None:
    return shutil.which("pigz")


def gzip_file(src: BinaryIO, tmp_dir: str, level: int = 1) -> Compressed:
    """Compress `src` (an uncompressed tar stream) into a temp file under `tmp_dir`.
    The caller removes `path` when done."""
    fd, path = tempfile.mkstemp(prefix="push-", suffix=".tar.gz", dir=tmp_dir)
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            pigz = _pigz()
            if pigz:
                stdin_arg: int | BinaryIO
                try:
                    stdin_arg = src.fileno()  # type: ignore[assignment]
                    feed = False
                except (AttributeError, OSError, ValueError):
                    stdin_arg = subprocess.PIPE  # type: ignore[assignment]
                    feed = True
                proc = subprocess.Popen([pigz, f"-{level}", "-n", "-c"], stdin=stdin_arg, stdout=subprocess.PIPE)
                assert proc.stdout is not None
                import threading

                feeder = None
                if feed:
                    def pump() -> None:
                        assert proc.stdin is not None
                        try:
                            while chunk := src.read(CHUNK):
                                proc.stdin.write(chunk)
                        except BrokenPipeError:
                            pass
                        finally:
                            proc.stdin.close()
                    feeder = threading.Thread(target=pump, daemon=True)
                    feeder.start()
                while chunk := proc.stdout.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                if feeder is not None:
                    feeder.join()
                if proc.wait() != 0:
                    raise RuntimeError(f"pigz failed with exit status {proc.returncode}")
            else:
                comp = zlib.compressobj(level, zlib.DEFLATED, 31)
                while chunk := src.read(CHUNK):
                    data = comp.compress(chunk)
                    if data:
                        h.update(data)
                        out.write(data)
                        size += len(data)
                data = comp.flush()
                h.update(data)
                out.write(data)
                size += len(data)
        return Compressed(path, "sha256:" + h.hexdigest(), size)
    except BaseException:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        raise
