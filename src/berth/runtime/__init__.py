"""berth's OCI runtime: an OCI runtime-spec bundle becomes a running container.

The library entry point is `berth.runtime.runtime.Runtime`; the runc-compatible command
line is `berth.runtime.cli` (`berth-runtime`). Modules are kept import-light because a
runtime is executed once per container operation: stdlib modules are imported where they are
used, and `typing` only by type checkers (`TYPE_CHECKING = False` then `if TYPE_CHECKING:`,
which mypy and ruff understand): importing it (with contextlib and re) costs milliseconds.
"""
