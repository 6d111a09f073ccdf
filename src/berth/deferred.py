"""Deferred stdlib imports for short-lived programs (`berth-runtime`).

`dataclasses` imports `inspect` (with ast, dis, tokenize and linecache: about 7 ms here) only
to call `inspect.signature` for a class without a docstring; berth's dataclasses all have one.
`defer("inspect")` puts a stand-in module in `sys.modules`: `import inspect` then costs
nothing, and the first attribute read loads the real module, which replaces the stand-in for
every later reader. A program calls it first thing; a process that already imported the module
keeps it (`defer` does nothing then), so importing this from a library or a test is harmless.

`importlib.util.LazyLoader` cannot do this: the import statement reads the lazy module's
`__spec__` to check for a partly initialised module, which loads it at once.
"""

from __future__ import annotations

import sys

_Module = type(sys)


class _Deferred(_Module):
    """Stands in for a module in `sys.modules` until an attribute of it is read."""

    def __getattr__(self, attr: str):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        __import__(name)
        real = sys.modules[name]
        self.__dict__.update(real.__dict__)  # later reads through this stand-in are plain lookups
        return getattr(real, attr)


def defer(*names: str) -> None:
    """Make `import name` free until the module is used, for modules not imported yet."""
    for name in names:
        if name not in sys.modules:
            stand_in = _Deferred(name)
            stand_in.__spec__ = None  # the import statement's "still initialising?" check reads it
            sys.modules[name] = stand_in
