"""Errors raised by the OCI runtime library.

`RuntimeFailure` is the general one; `ExecNotFound` and `ExecNotPermitted` tell the caller
that the container's command could not be invoked (Docker maps them to exit 127 and 126).
"""

from __future__ import annotations

from berth.errors import BerthError, Conflict, NotFound


class RuntimeFailure(BerthError):
    """The runtime could not do what was asked; the message says what and why."""

    status = 500


class ContainerNotFound(RuntimeFailure, NotFound):
    status = 404


class ContainerExists(RuntimeFailure, Conflict):
    status = 409


class InvalidState(RuntimeFailure, Conflict):
    """The container is not in a state that allows the operation (e.g. start twice)."""

    status = 409


class ExecNotFound(RuntimeFailure):
    """The process' executable does not exist in the container (exit 127 upstream)."""


class ExecNotPermitted(RuntimeFailure):
    """The process' executable exists but cannot be executed (exit 126 upstream)."""
