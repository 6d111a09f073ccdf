"""berth.deferred: a deferred module costs nothing until used, then is the real module."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_dataclasses_with_docstrings_never_load_inspect() -> None:
    code = ("import sys\n"
            "from berth.deferred import defer\n"
            "defer('inspect')\n"
            "import dataclasses\n"
            "@dataclasses.dataclass\n"
            "class A:\n"
            "    '''documented'''\n"
            "    x: int = 1\n"
            "print(A(2).x, type(sys.modules['inspect']).__name__, 'ast' in sys.modules)\n")
    assert _run(code) == ["2", "_Deferred", "False"]


def test_first_use_loads_the_real_module_for_every_reader() -> None:
    code = ("import sys\n"
            "from berth.deferred import defer\n"
            "defer('inspect')\n"
            "import inspect as early\n"
            "import dataclasses\n"
            "@dataclasses.dataclass\n"
            "class B:\n"      # no docstring: dataclasses calls inspect.signature
            "    y: int = 0\n"
            "import inspect\n"
            "print(B.__doc__.replace(' ', ''), inspect is sys.modules['inspect'], "
            "type(inspect).__name__, early.signature is inspect.signature)\n")
    assert _run(code) == ["B(y:int=0)", "True", "module", "True"]


def test_an_imported_module_is_left_alone() -> None:
    import inspect

    from berth.deferred import defer
    defer("inspect")
    assert sys.modules["inspect"] is inspect


def test_a_missing_module_fails_on_first_use() -> None:
    code = ("from berth.deferred import defer\n"
            "defer('berth_no_such_module')\n"
            "import berth_no_such_module as m\n"
            "m.anything\n")
    res = subprocess.run([sys.executable, "-s", "-c", code], capture_output=True, text=True)
    assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr


def test_runtime_run_path_skips_inspect() -> None:
    """`berth-runtime create/run` import what they need without inspect (ast, dis, tokenize)."""
    code = ("import sys\n"
            "from berth.deferred import defer\n"
            "defer('inspect')\n"
            "import berth.runtime.runtime, berth.runtime.spec, berth.runtime.init, berth.runtime.state\n"
            "import berth.runtime.cli\n"
            "print(' '.join(sorted(m for m in ('ast', 'dis', 'tokenize') if m in sys.modules)) or 'none')\n")
    assert _run(code) == ["none"]


@pytest.mark.parametrize("attr", ["signature", "getmembers"])
def test_attributes_come_from_the_real_module(attr: str) -> None:
    code = ("from berth.deferred import defer\n"
            "defer('inspect')\n"
            "import inspect\n"
            f"print(callable(inspect.{attr}))\n")
    assert _run(code) == ["True"]
