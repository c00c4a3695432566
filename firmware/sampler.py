"""Fixed-rate sampling: drain the sensor FIFO into a preallocated ring buffer of raw counts.

`poll()` is the producer (called often enough that the sensor FIFO never fills: the ADXL355 holds
32 samples, 128 ms at 250 Hz); `drain(sink)` is the consumer, handing every sample in order to
`sink.push(x, y, z)`. Samples the ring had no room for are counted in `dropped`, never silently
lost; FIFO overflows are counted by the driver (`sensor.overflows`, `sensor.lost`).
"""

from array import array


class Sampler:
    def __init__(self, sensor, ring_samples=128):
        self.sensor = sensor
        self.burst = array("i", [0] * (3 * sensor.max_burst))
        self.size = ring_samples
        self.ring = array("i", [0] * (3 * ring_samples))
        self.head = 0  # next write slot (sample index into the ring)
        self.count = 0  # samples waiting in the ring
        self.total = 0  # samples accepted since start
        self.dropped = 0  # samples lost because the consumer fell behind

    def poll(self):
        """Read the sensor FIFO once; return the number of samples read."""
        n = self.sensor.read_fifo(self.burst)
        burst = self.burst
        ring = self.ring
        size = self.size
        for i in range(n):
            if self.count >= size:
                self.dropped += n - i
                break
            j = 3 * self.head
            k = 3 * i
            ring[j] = burst[k]
            ring[j + 1] = burst[k + 1]
            ring[j + 2] = burst[k + 2]
            self.head += 1
            if self.head >= size:
                self.head = 0
            self.count += 1
            self.total += 1
        return n

    def drain(self, sink, limit=0):
        """Hand waiting samples to sink.push(x, y, z), oldest first; stop early on a non-zero status.

        Returns the last status from the sink (0 when all were consumed quietly); the caller reacts
        to a status (an onset, a detection) and calls drain again for the rest.
        """
        ring = self.ring
        size = self.size
        while self.count:
            j = self.head - self.count
            if j < 0:
                j += size
            j *= 3
            self.count -= 1
            status = sink.push(ring[j], ring[j + 1], ring[j + 2])
            if status:
                return status
        return 0
