"""What every command handler receives: the daemon client, output streams, user settings."""

from __future__ import annotations

import os
import sys

from berth.cli.client import Client, CLIError

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import IO, Any


class Context:
    def __init__(self, host: str, auto_start: bool, config_dir: str, debug: bool = False,
                 out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.host = host
        self.auto_start = auto_start
        self.config_dir = config_dir
        self.debug = debug
        self.out: IO[str] = out or sys.stdout
        self.err: IO[str] = err or sys.stderr
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.host, auto_start=self.auto_start, debug=self.debug)
        return self._client

    def print(self, *args: Any, end: str = "\n") -> None:
        print(*args, end=end, file=self.out)

    def warn(self, message: str) -> None:
        print(message, file=self.err)

    def for_each(self, items: Iterable[str], action: Callable[[str], str | None]) -> int:
        """Run action per item as docker does: print what it returns, collect the errors,
        exit 1 if any failed (each error on stderr)."""
        failed = False
        for item in items:
            try:
                shown = action(item)
            except CLIError as exc:
                failed = True
                self.warn(f"berth: {exc}")
                continue
            if shown is not None:
                self.print(shown)
        return 1 if failed else 0

    def confirm(self, message: str) -> bool:
        self.err.write(f"{message}\nAre you sure you want to continue? [y/N] ")
        self.err.flush()
        try:
            answer = sys.stdin.readline()
        except (OSError, ValueError):
            answer = ""
        return answer.strip().lower() in ("y", "yes")


def default_config_dir() -> str:
    env = os.environ.get("BERTH_CONFIG")
    if env:
        return env
    return os.path.join(os.path.expanduser("~"), ".berth")
