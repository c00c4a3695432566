"""Helpers for the portable firmware tests (they run on CPython under pytest and on MicroPython)."""

import os

_counter = [0]


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def rmtree(path):
    for name in os.listdir(path):
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:  # S_IFDIR
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def tmpdir(prefix="sm"):
    """A fresh, empty directory (no tempfile module on MicroPython)."""
    base = "/tmp"
    if not _exists(base):
        os.mkdir(base)
    while True:
        _counter[0] += 1
        path = "%s/%s-%d-%d" % (base, prefix, os.getpid() if hasattr(os, "getpid") else 0, _counter[0])
        if _exists(path):
            continue
        os.mkdir(path)
        return path


def raises(exc_type, fn, *args):
    """Call fn(*args) and return the exception it raises; fail if it raises nothing or another type."""
    try:
        fn(*args)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised by %r" % (exc_type.__name__, fn))
