"""Node firmware: portable MicroPython/CPython modules; hardware sits behind board.py."""
