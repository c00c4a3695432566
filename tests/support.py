"""Helpers shared by the host tests."""

import importlib
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str):
    """benchmarks/<name>.py as a module, so a test checks the figure the benchmark reports with the
    benchmark's own code (benchmarks/ is on sys.path only while it imports, as when it runs)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def cli_runner():
    """A click CliRunner whose result keeps stdout and stderr apart on every click this project allows."""
    from click.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()
