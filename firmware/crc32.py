"""CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): the same values as zlib.crc32 and
binascii.crc32.

`crc32(data, crc=0)` takes bytes, bytearray or memoryview and a running value, so a long stream
can be checked piecewise: `crc32(b, crc32(a)) == crc32(a + b)`. It is `binascii.crc32` (C code)
where the port has it (MicroPython ESP32 and CPython do); otherwise `crc32_py`, a pure-Python
version with a 16-entry nibble table: slow (two table steps per byte) but correct, meant for
ports built without binascii. Both are tested against each other on both interpreters.
"""

try:
    from binascii import crc32 as _c_crc32
except ImportError:  # a port built without binascii (or without its crc32)
    _c_crc32 = None  # type: ignore[assignment]

# CRC of one 4-bit value, reflected polynomial 0xEDB88320.
_NIBBLE = (
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
    0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
    0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
    0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
)


def crc32_py(data, crc=0):
    """CRC-32 of `data` continuing from `crc`, in pure Python (the fallback)."""
    tab = _NIBBLE
    crc = (crc & 0xFFFFFFFF) ^ 0xFFFFFFFF
    for b in data:
        crc ^= b
        crc = (crc >> 4) ^ tab[crc & 15]
        crc = (crc >> 4) ^ tab[crc & 15]
    return crc ^ 0xFFFFFFFF


if _c_crc32 is not None:

    def crc32(data, crc=0):
        """CRC-32 of `data` continuing from `crc` (unsigned 32-bit result)."""
        return _c_crc32(data, crc) & 0xFFFFFFFF

else:
    crc32 = crc32_py
