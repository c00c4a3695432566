"""No heap allocation per sample: 60 s of 100 Hz 3-axis data through sensor FIFO -> driver ->
sampler -> conditioner -> STA/LTA -> event features, with the heap locked around every read.

On MicroPython, micropython.heap_lock() makes any allocation raise MemoryError, so this is a
proof, not an estimate; gc.mem_alloc() is checked as well. On CPython the same path runs (the
functional part) without the heap checks.
"""

import sys
from array import array

from seismote.firmware import config, pipeline
from seismote.firmware.chipmodels.mpu6050 import MPU6050Model
from seismote.firmware.sampler import Sampler
from seismote.firmware.sensors import open_sensor
from tests.firmware.support import synthetic_counts

MICROPYTHON = sys.implementation.name == "micropython"


def test_sixty_seconds_at_100_hz_allocate_nothing_per_sample():
    import gc

    rate = 100
    data = array("i", synthetic_counts(60 * rate, rate, quake_at=40 * rate, quake_amp=3000, gravity=16384))
    chip = MPU6050Model()
    sensor = open_sensor("mpu6050", chip, None, 0x68, rate, 2)
    cfg = config.validate({"node_id": "heap", "sensor": {"type": "mpu6050", "odr_hz": rate}, "trigger": {"lta_s": 10}})
    pipe = pipeline.Pipeline(cfg, sensor.counts_per_g, rate)
    sampler = Sampler(sensor)
    statuses = array("i", [0] * 8)  # preallocated: recording a status must not allocate either
    if MICROPYTHON:
        import micropython

        lock, unlock = micropython.heap_lock, micropython.heap_unlock
    else:
        lock = unlock = lambda: None
    gc.collect()
    grew = 0
    for start in range(0, len(data), 3 * 10):  # the chip produces 10 samples (100 ms) per loop
        for i in range(start, start + 30, 3):
            chip.push(data[i], data[i + 1], data[i + 2])
        if MICROPYTHON:
            m0 = gc.mem_alloc()
        lock()
        try:
            sampler.poll()
            while True:
                st = sampler.drain(pipe)
                if not st:
                    break
                statuses[st] += 1
        finally:
            unlock()
        if MICROPYTHON and gc.mem_alloc() != m0:
            grew += 1
    assert sampler.total == 60 * rate and sampler.dropped == 0 and sensor.overflows == 0
    # The quake exercised the trigger and detection branches under the lock.
    assert statuses[pipeline.TRIGGER] == 1 and statuses[pipeline.DETECTION] == 1
    if MICROPYTHON:
        assert grew == 0  # (the chip model's pushes, outside the lock, may allocate: it is not firmware)
