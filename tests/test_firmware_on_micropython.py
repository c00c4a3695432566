"""Tier 2: the portable firmware tests (tests/firmware/test_*.py) on the real MicroPython VM.

The same test functions run on CPython through pytest's normal collection; here each module runs
once on MicroPython v1.27 (WebAssembly port under Node.js) and every test becomes a pytest case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seismote.host_tools import mpvm

HERE = Path(__file__).parent
MODULES = sorted(p.stem for p in (HERE / "firmware").glob("test_*.py"))
_results: dict[str, dict[str, str]] = {}


def _tests_in(module: str) -> list[str]:
    import importlib

    mod = importlib.import_module("tests.firmware." + module)
    return sorted(n for n in dir(mod) if n.startswith("test_"))


def _run_module(module: str) -> dict[str, str]:
    if module not in _results:
        code = (
            "open('/lib/tests/__init__.py', 'a').close()\n"
            "from tests.firmware import mpy_runner\n"
            "mpy_runner.run([%r])\n" % module
        )
        mounts = mpvm.firmware_mounts({str(HERE / "firmware"): "/lib/tests/firmware"})
        proc = mpvm.run(code, mounts, heap=8 << 20)
        res: dict[str, str] = {"__output__": proc.stdout + proc.stderr}
        for line in proc.stdout.splitlines():
            if line.startswith(("PASS ", "FAIL ")):
                res[line[5:].split(": ")[0]] = line
        _results[module] = res
    return _results[module]


CASES = [(m, t) for m in MODULES for t in _tests_in(m)]


@pytest.mark.micropython
@pytest.mark.parametrize("module,test", CASES, ids=["%s::%s" % c for c in CASES])
def test_on_micropython(module: str, test: str) -> None:
    try:
        res = _run_module(module)
    except mpvm.VMUnavailable as e:
        pytest.fail(str(e))
    key = "%s::%s" % (module, test)
    line = res.get(key)
    assert line is not None, "test did not run on MicroPython:\n" + res["__output__"][-3000:]
    assert line.startswith("PASS"), line + "\n" + res["__output__"][-3000:]
