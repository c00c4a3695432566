"""Shared pytest options. `--port /dev/ttyUSB0` runs the hardware-in-the-loop tests (marker `hil`)
against a real seismote board; without it they run against the virtual node."""

import os


def pytest_addoption(parser):
    parser.addoption("--port", default=None, help="serial port of a real seismote board for the `hil` tests (default: the virtual node)")


def pytest_configure(config):
    port = config.getoption("--port")
    if port:
        os.environ["SEISMOTE_HIL_PORT"] = port
