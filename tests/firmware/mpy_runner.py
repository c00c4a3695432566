"""Plain runner for the portable firmware tests on MicroPython (no pytest there).

Called with the module names in `MODULES`; prints one line per test and the plain closing line
'N passed, N failed'. Each line is 'PASS module::test' or 'FAIL module::test: error'.
"""

import gc
import sys


def run(modules, only=None):
    passed = failed = 0
    print("micropython %s" % ".".join(str(v) for v in sys.implementation.version[:3]))
    for name in modules:
        mod = __import__("tests.firmware." + name, None, None, ["x"])
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            full = "%s::%s" % (name, attr)
            if only and full not in only:
                continue
            fn = getattr(mod, attr)
            gc.collect()
            try:
                fn()
            except Exception as e:  # report and go on: one failing test must not hide the others
                failed += 1
                print("FAIL %s: %s %s" % (full, type(e).__name__, e))
                sys.print_exception(e)
            else:
                passed += 1
                print("PASS %s" % full)
    print("%d passed, %d failed" % (passed, failed))
    return failed
