"""Synthetic non-earthquake signals as a node's accelerometer records them (gal, columns Z, N, E).

    acc = synth_noise("door", "adxl355", 50.0, 30.0, np.random.default_rng(3))   # (1500, 3)
    acc, onsets_s = synth_noise_events("bump", "mpu6050", 50.0, 30.0, rng)        # and event onsets

Every kind includes the sensor's self-noise (`sensor_noise`, white at the datasheet density), and every
kind but "sensor" includes some ambient building noise, so each output is a complete recording.
Parameters are drawn at random per call (levels span two to three decades), so that the detector
learns the character of each source, not one instance of it.

Kinds (NOISE_KINDS; the first nine are the issue's list, "carried" and "tools" are additions):
- sensor:       self-noise only (a quiet vault).
- ambient:      building ambient noise: broadband cultural noise (1-20 Hz), 1-3 building/floor modes,
                microseism, slowly modulated; 0.003-1 gal rms.
- footsteps:    people walking or running past a node on the floor: heel strikes at 1.5-3.2 steps/s
                exciting 1-2 floor modes (6-30 Hz); amplitude rises and falls as the walker passes.
- door:         door slams: an impact ringing 2-4 wall/floor modes (4-40 Hz), sometimes a swing before
                and a latch bounce after; impulsive and short (< ~1 s of energy).
- traffic:      vehicles passing: emergent band-limited noise (1-25 Hz) under a bell envelope of
                several seconds, truck suspension peaks (1.5-4 Hz), occasional pothole impacts.
- machinery:    rotating and reciprocating machines (motors at mains-locked speeds, pumps, fans,
                compressors, washing machines): harmonic lines with slow wander, on/off spin-up and
                spin-down; periodic, with spectral peaks (aliased through the node's decimation the way
                the node would alias them).
- construction: jackhammers (15-33 blows/s), pile driving and hammering (0.4-2 s between blows),
                heavy drops with long ringing, vibratory rollers and excavators.
- bump:         knocks on the node or its mount: a contact pulse of a few ms ringing the mount (10-60
                Hz), up to clipping; sometimes a tilt step (the node moved), rarely a drop (free fall,
                impact, new attitude).
- sway:         building sway: narrow-band resonance of the first modes at 0.1-1 Hz (2 orthogonal
                modes, torsion), wind gusts; mostly horizontal.
- carried:      a phone or node carried by a person: standing, walking, running, stairs, being picked
                up and put down; gait harmonics of 0.1-1.5 g, a slowly turning attitude (gravity moves
                between the axes).
- tools:        hand-held power tools (drills, grinders, saws: 50-300 Hz motors that spin up through
                every frequency, aliased by the node; hammer drills) and manual hammering.

High-frequency sources are synthesised at the sensor's own output data rate (SENSOR_ODR_BW: 250 Hz
for the ADXL355, 100 Hz for the others), low-pass filtered at the sensor's bandwidth and averaged
in blocks down to `rate` (the node's boxcar decimation, see firmware/conditioner.py), so tones
above the pipeline's Nyquist frequency alias as they would on the node.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from .synth_quake import G_GAL

NOISE_KINDS = ("sensor", "ambient", "footsteps", "door", "traffic", "machinery", "construction", "bump", "sway",
               "carried", "tools")
# Datasheet noise densities, ug/sqrt(Hz), for the columns [Z, N, E] (vertical = the sensor's z axis):
# ADXL355 22.5 (all axes, datasheet Table 1); ADXL345 290 (x, y) and 430 (z) (datasheet noise
# specification at 100 Hz ODR, as ug/sqrt(Hz)); MPU-6050 400 (all axes, product specification 6.2).
SENSOR_NOISE_UG = {
    "adxl355": (22.5, 22.5, 22.5),
    "adxl345": (430.0, 290.0, 290.0),
    "mpu6050": (400.0, 400.0, 400.0),
}
# Default output data rate (Hz, config.DEFAULT_ODR) and the sensor's own bandwidth at that rate
# (ADXL355: ODR/4 digital filter; MPU-6050: DLPF 44 Hz, the widest below ODR/2 (firmware driver);
# ADXL345: ODR/2).
SENSOR_ODR_BW = {"adxl355": (250, 62.5), "mpu6050": (100, 44.0), "adxl345": (100, 50.0)}


# ---------------------------------------------------------------------------------------------
# Public API


def sensor_noise(sensor, n, rate, rng):
    """White self-noise of `sensor` at its datasheet density: (n, 3) gal, columns Z, N, E."""
    try:
        dens = np.asarray(SENSOR_NOISE_UG[sensor]) * 1e-6 * G_GAL
    except KeyError:
        raise ValueError("Invalid sensor: %r (one of %s)" % (sensor, ", ".join(sorted(SENSOR_NOISE_UG)))) from None
    return rng.standard_normal((int(n), 3)) * (dens * math.sqrt(rate / 2.0))


def synth_noise(kind, sensor, rate=50.0, duration_s=30.0, rng=None):
    """A recording of one non-earthquake `kind` (see NOISE_KINDS): (n, 3) gal, columns Z, N, E."""
    return synth_noise_events(kind, sensor, rate, duration_s, rng)[0]


def synth_noise_events(kind, sensor, rate=50.0, duration_s=30.0, rng=None, level=1.0, with_background=True):
    """As synth_noise, and the onset times (s) of the discrete events in the record.

    `level` scales the source signal (not the sensor's self-noise). With `with_background` False the
    source alone is returned: no self-noise, no ambient noise under it ("sensor" gives zeros).
    """
    if kind not in NOISE_KINDS:
        raise ValueError("Invalid noise kind: %r (one of %s)" % (kind, ", ".join(NOISE_KINDS)))
    if sensor not in SENSOR_NOISE_UG:
        raise ValueError("Invalid sensor: %r" % (sensor,))
    if rng is None:
        rng = np.random.default_rng()
    rate = float(rate)
    n = int(round(duration_s * rate))
    out = np.zeros((n, 3))
    onsets: list[float] = []
    if kind == "ambient":
        out += level * ambient(rng, n, rate, _loguniform(rng, 0.003, 1.0))
    elif kind != "sensor":
        odr, bw = SENSOR_ODR_BW[sensor]
        dec = int(round(odr / rate)) if (odr > rate and abs(odr / rate - round(odr / rate)) < 1e-9) else 1
        hi = rate * dec
        ctx = _Ctx(rng, hi, n * dec)
        x = _GENERATORS[kind](ctx)
        if bw < 0.45 * hi:
            sos = signal.butter(2, bw, fs=hi, output="sos")
            x = signal.sosfilt(sos, x, axis=0)
        if dec > 1:
            x = x.reshape(n, dec, 3).mean(axis=1)
        out += level * x
        onsets = sorted(ctx.onsets)
        if with_background:
            out += ambient(rng, n, rate, _loguniform(rng, 0.003, 0.3))
    if with_background:
        out += sensor_noise(sensor, n, rate, rng)
    return out, onsets


# ---------------------------------------------------------------------------------------------
# Building blocks


class _Ctx:
    """What a generator needs: the rng, the synthesis rate and length, and a list for onsets."""

    def __init__(self, rng, rate, n):
        self.rng = rng
        self.rate = rate
        self.n = n
        self.t = np.arange(n) / rate
        self.dur = n / rate
        self.onsets: list[float] = []


def _loguniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / max(np.linalg.norm(v), 1e-12)


def _direction(rng, vertical):
    """A random unit vector [Z, N, E] with |Z| around `vertical` (0 = horizontal, 1 = vertical)."""
    az = rng.uniform(0, 2 * math.pi)
    z = float(np.clip(vertical + 0.15 * rng.standard_normal(), 0.0, 1.0))
    h = math.sqrt(max(0.0, 1.0 - z * z))
    return np.array([z * rng.choice((-1.0, 1.0)), h * math.cos(az), h * math.sin(az)])


def _mix(rng, vertical, spread=0.35):
    """Component weights [Z, N, E]: a direction plus some energy on every axis (scattering)."""
    d = np.abs(_direction(rng, vertical))
    w = (1 - spread) * d + spread * rng.uniform(0.2, 1.0, 3)
    return w / np.linalg.norm(w)


def _band_noise(rng, n, rate, f_lo, f_hi, k=1, order=2):
    """k independent series of Gaussian noise band-limited to [f_lo, f_hi] Hz, unit rms: (n, k)."""
    nfft = 1 << int(math.ceil(math.log2(max(n, 16))))
    f = np.fft.rfftfreq(nfft, 1.0 / rate)
    f[0] = 1e-6
    shape = 1.0 / np.sqrt(1.0 + (f_lo / f) ** (2 * order)) / np.sqrt(1.0 + (f / f_hi) ** (2 * order))
    z = np.fft.rfft(rng.standard_normal((k, nfft)), axis=1) * shape
    x = np.fft.irfft(z, nfft, axis=1)[:, :n].T
    return x / np.maximum(x.std(axis=0), 1e-12)


def _shaped_noise(rng, n, rate, psd_fn, k=1):
    """k series of Gaussian noise with power spectrum proportional to psd_fn(f), unit rms: (n, k)."""
    nfft = 1 << int(math.ceil(math.log2(max(n, 16))))
    f = np.fft.rfftfreq(nfft, 1.0 / rate)
    amp = np.sqrt(np.maximum(psd_fn(np.maximum(f, 1e-6)), 0.0))
    amp[0] = 0.0
    z = np.fft.rfft(rng.standard_normal((k, nfft)), axis=1) * amp
    x = np.fft.irfft(z, nfft, axis=1)[:, :n].T
    return x / np.maximum(x.std(axis=0), 1e-12)


def _resonance(f, f0, zeta):
    """|H|^2 of a damped oscillator (relative response to white forcing)."""
    r = f / f0
    return 1.0 / ((1 - r * r) ** 2 + (2 * zeta * r) ** 2)


def _slow_envelope(rng, n, rate, tau_s, depth):
    """exp(depth * smooth Gaussian noise): slow amplitude modulation around 1."""
    m = _band_noise(rng, n, rate, 1e-4, 1.0 / max(tau_s, 0.1), order=1)[:, 0]
    return np.exp(depth * m - 0.5 * depth * depth)


def _ring_kernel(rate, modes, length_s=None):
    """Impulse response: sum of damped sinusoids [(f, zeta, weight)], peak-normalised."""
    if length_s is None:
        length_s = max(math.log(1000.0) / (2 * math.pi * f * z) for f, z, _ in modes)
    length_s = min(length_s, 8.0)
    t = np.arange(max(2, int(length_s * rate))) / rate
    k = np.zeros_like(t)
    for f, z, w in modes:
        fd = f * math.sqrt(max(1e-6, 1 - z * z))
        k += w * np.exp(-2 * math.pi * f * z * t) * np.sin(2 * math.pi * fd * t + 0.3)
    return k / max(np.abs(k).max(), 1e-12)


def _pulse(rate, width_s):
    """Half-sine contact pulse of `width_s`, unit area in samples (at least one sample)."""
    m = max(1, int(round(width_s * rate)))
    p = np.sin(math.pi * (np.arange(m) + 0.5) / m)
    return p / p.sum()


def _place(x, t0, rate, kernel, vec):
    """Add kernel (1-D) times direction vec (3,) into x starting at time t0 (clipped to x)."""
    i = int(round(t0 * rate))
    if i >= len(x) or i + len(kernel) <= 0:
        return
    a, b = max(0, i), min(len(x), i + len(kernel))
    x[a:b] += np.outer(kernel[a - i:b - i], vec)


def _rotate_small(rng, x, max_tilt_deg=5.0):
    """Random azimuth and a small tilt of the node: x (n, 3) [Z, N, E] -> rotated copy."""
    az = rng.uniform(0, 2 * math.pi)
    tilt = math.radians(rng.uniform(0, max_tilt_deg))
    ca, sa = math.cos(az), math.sin(az)
    rz = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ct, st = math.cos(tilt), math.sin(tilt)
    rt = np.array([[ct, -st, 0], [st, ct, 0], [0, 0, 1]])
    return x @ (rt @ rz).T


def _rodrigues(theta):
    """Rotation matrices for rotation vectors theta (n, 3): (n, 3, 3)."""
    ang = np.linalg.norm(theta, axis=1)
    k = theta / np.maximum(ang, 1e-12)[:, None]
    kx, ky, kz = k[:, 0], k[:, 1], k[:, 2]
    zero = np.zeros_like(kx)
    kmat = np.stack([np.stack([zero, -kz, ky], 1), np.stack([kz, zero, -kx], 1), np.stack([-ky, kx, zero], 1)], 1)
    s = np.sin(ang)[:, None, None]
    c = (1 - np.cos(ang))[:, None, None]
    return np.eye(3)[None] + s * kmat + c * (kmat @ kmat)


def ambient(rng, n, rate, rms_gal):
    """Building ambient noise, (n, 3) gal, about `rms_gal` rms per horizontal component."""
    f1 = _loguniform(rng, 0.5, 2.5)
    f2 = _loguniform(rng, 5.0, 20.0)
    modes_h = [(_loguniform(rng, 1.0, 12.0), rng.uniform(0.02, 0.08), _loguniform(rng, 0.3, 3.0))
               for _ in range(int(rng.integers(1, 4)))]
    mode_v = (_loguniform(rng, 6.0, 22.0), rng.uniform(0.02, 0.08), _loguniform(rng, 0.3, 3.0))
    micro = _loguniform(rng, 0.01, 0.3)
    fm = rng.uniform(0.12, 0.3)

    def psd(f, modes):
        base = 1.0 / (1.0 + (f1 / f) ** 4) / (1.0 + (f / f2) ** 2)
        for f0, z, w in modes:
            base = base + w * 0.02 * _resonance(f, f0, z) * (2 * z) ** 2 * 10
        return base + micro * np.exp(-0.5 * ((f - fm) / (0.3 * fm)) ** 2)

    h = _shaped_noise(rng, n, rate, lambda f: psd(f, modes_h), k=2)
    v = _shaped_noise(rng, n, rate, lambda f: psd(f, [mode_v]), k=1)
    x = np.concatenate([v * rng.uniform(0.4, 1.0), h * rng.uniform(0.6, 1.0, 2)], axis=1)
    env = _slow_envelope(rng, n, rate, rng.uniform(2.0, 20.0), rng.uniform(0.1, 0.6))
    return x * env[:, None] * rms_gal


# ---------------------------------------------------------------------------------------------
# Generators: each returns (n, 3) gal at ctx.rate and appends event onsets (s) to ctx.onsets


def _gen_footsteps(c):
    rng, x = c.rng, np.zeros((c.n, 3))
    for _ in range(int(rng.integers(1, 4))):
        running = rng.random() < 0.15
        rate_steps = rng.uniform(2.5, 3.2) if running else rng.uniform(1.5, 2.3)
        walk = rng.uniform(3.0, 25.0)
        t0 = rng.uniform(-0.5 * walk, c.dur - 1.0)
        tc = t0 + rng.uniform(0.2, 0.8) * walk
        a0 = _loguniform(rng, 0.1, 30.0) * (2.5 if running else 1.0)
        speed = rng.uniform(0.3, 1.2)  # (walking speed / closest distance), 1/s
        nsteps = int(walk * rate_steps) + 1
        times = t0 + np.cumsum(rng.normal(1.0 / rate_steps, 0.04 / rate_steps, nsteps))
        times = times[(times >= 0) & (times < c.dur)]
        if not len(times):
            continue
        c.onsets.append(float(times[0]))
        modes = [(_loguniform(rng, 6.0, 30.0), rng.uniform(0.02, 0.08), 1.0)]
        if rng.random() < 0.6:
            modes.append((_loguniform(rng, 10.0, 45.0), rng.uniform(0.02, 0.1), rng.uniform(0.2, 0.8)))
        kern = np.convolve(_pulse(c.rate, rng.uniform(0.02, 0.08)), _ring_kernel(c.rate, modes))
        kern /= np.abs(kern).max()
        kern_h = np.convolve(_pulse(c.rate, 0.05), _ring_kernel(c.rate, [(_loguniform(rng, 4.0, 20.0), 0.05, 1.0)]))
        kern_h /= np.abs(kern_h).max()
        wh = rng.uniform(0.1, 0.5)
        hdir = _direction(rng, 0.0)
        train = np.zeros(c.n)
        idx = np.clip(np.round(times * c.rate).astype(int), 0, c.n - 1)
        amp = a0 / np.sqrt(1.0 + ((times - tc) * speed) ** 2) * rng.uniform(0.8, 1.2, len(times))
        amp *= np.where(np.arange(len(times)) % 2 == 0, 1.0, rng.uniform(0.7, 1.0))
        np.add.at(train, idx, amp)
        x[:, 0] += signal.fftconvolve(train, kern)[:c.n]
        hs = signal.fftconvolve(train, kern_h)[:c.n] * wh
        x[:, 1] += hs * hdir[1]
        x[:, 2] += hs * hdir[2]
    return _rotate_small(rng, x)


def _gen_door(c):
    rng, x = c.rng, np.zeros((c.n, 3))
    for _ in range(int(rng.integers(1, 4))):
        t = rng.uniform(0.0, c.dur - 0.5)
        amp = _loguniform(rng, 0.3, 100.0)
        modes = [(_loguniform(rng, 4.0, 40.0), rng.uniform(0.03, 0.12), rng.uniform(0.3, 1.0))
                 for _ in range(int(rng.integers(2, 5)))]
        kern = np.convolve(_pulse(c.rate, rng.uniform(0.003, 0.02)), _ring_kernel(c.rate, modes))
        kern /= np.abs(kern).max()
        vec = _direction(rng, rng.uniform(0.2, 0.7))
        start = t
        if rng.random() < 0.5:  # the swing before the slam
            sw = rng.uniform(0.3, 1.5)
            m = int(sw * c.rate)
            sig = _band_noise(rng, m, c.rate, 1.0, 4.0)[:, 0] * np.linspace(0, 1, m) ** 2
            _place(x, t - sw, c.rate, sig * amp * rng.uniform(0.02, 0.1), _direction(rng, 0.3))
            start = max(0.0, t - sw)
        _place(x, t, c.rate, kern * amp, vec)
        if rng.random() < 0.6:  # latch / bounce
            _place(x, t + rng.uniform(0.05, 0.4), c.rate, kern * amp * rng.uniform(0.1, 0.5), vec)
        c.onsets.append(float(start))
    return _rotate_small(rng, x)


def _gen_traffic(c):
    rng, x = c.rng, np.zeros((c.n, 3))
    rumble = _loguniform(rng, 0.005, 0.3)
    x += _band_noise(rng, c.n, c.rate, 2.0, 15.0, k=3) * rumble * _mix(rng, 0.5)
    gap = rng.uniform(5.0, 60.0)
    t = rng.uniform(-10.0, min(gap, c.dur))
    while t < c.dur + 10.0:
        sigma = rng.uniform(1.5, 8.0)
        amp = _loguniform(rng, 0.02, 20.0)
        heavy = rng.random() < 0.3
        f_lo, f_hi = rng.uniform(1.0, 4.0), rng.uniform(8.0, 25.0)
        seg = np.arange(max(0, int((t - 4 * sigma) * c.rate)), min(c.n, int((t + 4 * sigma) * c.rate)))
        if len(seg) > 8:
            env = np.exp(-0.5 * ((seg / c.rate - t) / sigma) ** 2)
            noise = _band_noise(rng, len(seg), c.rate, f_lo, f_hi, k=3)
            if heavy:  # suspension / axle hop, and the building's response to it
                fs = rng.uniform(1.5, 4.0)
                noise += rng.uniform(0.5, 1.5) * _shaped_noise(rng, len(seg), c.rate,
                                                                lambda f: _resonance(f, fs, 0.1), k=3)
            x[seg] += noise * (env * amp * (2.0 if heavy else 1.0))[:, None] * _mix(rng, 0.55)
            c.onsets.append(float(max(0.0, t - 2 * sigma)))
            if rng.random() < 0.3:  # pothole / expansion joint
                kern = _ring_kernel(c.rate, [(_loguniform(rng, 5.0, 25.0), 0.1, 1.0)])
                _place(x, t + rng.normal(0, sigma / 2), c.rate, kern * amp * rng.uniform(1, 4), _direction(rng, 0.6))
        t += rng.exponential(gap) + 2.0
    return _rotate_small(rng, x)


def _tone_series(c, f_of_t, harmonics, phases):
    """sum_h a_h sin(h * phi(t) + ph_h), phi = 2 pi int f dt; harmonics beyond 0.5 rate are dropped."""
    phi = 2 * math.pi * np.cumsum(f_of_t) / c.rate
    out = np.zeros(c.n)
    for h, a in harmonics:
        keep = (h * f_of_t) < 0.49 * c.rate
        out += np.where(keep, a * np.sin(h * phi + phases.get(h, 0.0)), 0.0)
    return out


def _on_off(c, rng, ramp_s):
    """Machine state over time: (gain 0..1 array, onset list). Always on, starting, or stopping."""
    u = rng.random()
    g = np.ones(c.n)
    if u < 0.55:
        return g, []
    t0 = rng.uniform(0.2, 0.8) * c.dur
    ramp = np.clip((c.t - t0) / ramp_s, 0.0, 1.0)
    if u < 0.8:  # starts at t0
        return ramp, [t0]
    return 1.0 - ramp, []  # stops at t0 (spins down)


def _gen_machinery(c):
    rng, x = c.rng, np.zeros((c.n, 3))
    for _ in range(int(rng.integers(1, 3))):
        kind = rng.choice(["motor", "washer", "compressor", "fan"], p=[0.4, 0.2, 0.2, 0.2])
        amp = _loguniform(rng, 0.05, 10.0)
        if kind == "motor":
            f0 = rng.choice([24.2, 24.7, 29.2, 48.5, 49.3, 58.3, _loguniform(rng, 10.0, 60.0)])
            harm = [(1, 1.0), (2, rng.uniform(0.1, 0.8)), (3, rng.uniform(0.0, 0.4)), (4, rng.uniform(0.0, 0.2))]
            if rng.random() < 0.3:
                harm.append((0.5, rng.uniform(0.1, 0.5)))
            ramp_s = rng.uniform(0.5, 5.0)
        elif kind == "washer":
            f0 = _loguniform(rng, 0.5, 20.0)
            harm = [(1, 1.0), (2, rng.uniform(0.05, 0.3))]
            amp *= 3.0
            ramp_s = rng.uniform(5.0, 20.0)
        elif kind == "compressor":
            f0 = rng.uniform(8.0, 25.0)
            harm = [(h, rng.uniform(0.2, 1.0) / h) for h in range(1, 7)]
            ramp_s = rng.uniform(0.3, 2.0)
        else:
            f0 = rng.uniform(5.0, 20.0)
            harm = [(1, 1.0), (rng.integers(3, 8), rng.uniform(0.2, 1.0))]
            ramp_s = rng.uniform(2.0, 10.0)
        gain, on = _on_off(c, rng, ramp_s)
        c.onsets.extend(on)
        wander = 1.0 + rng.uniform(0.001, 0.01) * _band_noise(rng, c.n, c.rate, 1e-3, 0.2, order=1)[:, 0]
        f_t = f0 * wander * np.maximum(gain, 0.02)  # spin-up / down sweeps the frequency
        phases = {h: rng.uniform(0, 2 * math.pi) for h, _ in harm}
        s1 = _tone_series(c, f_t, harm, phases)
        s2 = _tone_series(c, f_t, harm, {h: p + math.pi / 2 for h, p in phases.items()})
        tone = np.stack([s1, s2], axis=1) * gain[:, None]
        if kind == "compressor":  # valve clicks once per revolution
            phi = np.cumsum(f_t) / c.rate
            clicks = np.flatnonzero(np.diff(np.floor(phi)) > 0)
            train = np.zeros(c.n)
            train[clicks] = gain[clicks]
            click = _ring_kernel(c.rate, [(_loguniform(rng, 20.0, 60.0), 0.1, 1.0)])
            tone[:, 0] += signal.fftconvolve(train, click)[:c.n] * rng.uniform(0.3, 1.5)
        w = _mix(rng, rng.uniform(0.2, 0.8))
        x[:, 0] += amp * w[0] * tone[:, 0]
        x[:, 1] += amp * w[1] * tone[:, 1]
        x[:, 2] += amp * w[2] * (0.6 * tone[:, 0] + 0.8 * tone[:, 1])
        x += amp * rng.uniform(0.02, 0.2) * _band_noise(rng, c.n, c.rate, 2.0, 0.45 * c.rate, k=3) * gain[:, None]
    return _rotate_small(rng, x)


def _impact_train(c, rng, times, amps, kern, vec):
    train = np.zeros(c.n)
    idx = np.round(np.asarray(times) * c.rate).astype(int)
    ok = (idx >= 0) & (idx < c.n)
    np.add.at(train, idx[ok], np.asarray(amps)[ok])
    return np.outer(signal.fftconvolve(train, kern)[:c.n], vec)


def _bursts(c, rng, min_s, max_s):
    """Random on-periods (start, stop) covering part of the record."""
    out, t = [], rng.uniform(-min_s, 0.5 * c.dur)
    while t < c.dur:
        d = rng.uniform(min_s, max_s)
        out.append((max(0.0, t), min(c.dur, t + d)))
        t += d + rng.uniform(0.5, 10.0)
    return out


def _gen_construction(c):
    rng, x = c.rng, np.zeros((c.n, 3))
    kinds = rng.choice(["jackhammer", "piling", "drop", "roller"], size=int(rng.integers(1, 3)), replace=False)
    for kind in kinds:
        amp = _loguniform(rng, 0.1, 30.0)
        vec = _mix(rng, rng.uniform(0.3, 0.8))
        if kind == "jackhammer":
            rate_b = rng.uniform(15.0, 33.0)
            kern = _ring_kernel(c.rate, [(_loguniform(rng, 10.0, 40.0), rng.uniform(0.05, 0.2), 1.0),
                                         (_loguniform(rng, 5.0, 15.0), 0.1, 0.5)])
            for a, b in _bursts(c, rng, 1.0, 15.0):
                times = np.arange(a, b, 1.0 / rate_b)
                times = times + rng.normal(0, 0.002, len(times))
                x += _impact_train(c, rng, times, amp * rng.uniform(0.7, 1.0, len(times)), kern, vec)
                c.onsets.append(a)
        elif kind == "piling":
            period = rng.uniform(0.4, 2.0)
            kern = _ring_kernel(c.rate, [(_loguniform(rng, 3.0, 15.0), rng.uniform(0.05, 0.2), 1.0),
                                         (_loguniform(rng, 10.0, 30.0), 0.1, 0.5)])
            for a, b in _bursts(c, rng, 3.0, 30.0):
                times = np.arange(a, b, period)
                times = times + rng.normal(0, 0.02 * period, len(times))
                x += _impact_train(c, rng, times, amp * rng.uniform(0.6, 1.0, len(times)), kern, vec)
                c.onsets.append(a)
        elif kind == "drop":
            for _ in range(int(rng.integers(1, 4))):
                t = rng.uniform(0, c.dur - 0.5)
                kern = _ring_kernel(c.rate, [(_loguniform(rng, 3.0, 12.0), rng.uniform(0.02, 0.08), 1.0),
                                             (_loguniform(rng, 8.0, 30.0), 0.05, rng.uniform(0.3, 1.0))])
                kern = np.convolve(_pulse(c.rate, rng.uniform(0.01, 0.05)), kern)
                _place(x, t, c.rate, kern / np.abs(kern).max() * amp * 2.0, _direction(rng, 0.7))
                c.onsets.append(t)
        else:  # vibratory roller / excavator: periodic line + irregular low-frequency rumble
            f0 = rng.uniform(25.0, 35.0)
            gain, on = _on_off(c, rng, rng.uniform(1.0, 4.0))
            c.onsets.extend(on)
            phi = 2 * math.pi * np.cumsum(f0 * np.maximum(gain, 0.05)) / c.rate
            line = np.sin(phi) * gain * rng.uniform(0.0, 1.0)
            rumble = _band_noise(rng, c.n, c.rate, 1.0, 8.0, k=3) * _slow_envelope(rng, c.n, c.rate, 2.0, 0.8)[:, None]
            x += amp * 0.5 * (np.outer(line, vec) + rumble * vec)
    return _rotate_small(rng, x)


def _gen_bump(c):
    rng, x = c.rng, np.zeros((c.n, 3))
    for _ in range(int(rng.integers(1, 4))):
        t = rng.uniform(0.0, c.dur - 0.3)
        amp = _loguniform(rng, 2.0, 3000.0)
        modes = [(_loguniform(rng, 10.0, 60.0), rng.uniform(0.05, 0.3), 1.0)]
        if rng.random() < 0.5:
            modes.append((_loguniform(rng, 15.0, 80.0), rng.uniform(0.05, 0.3), rng.uniform(0.2, 0.8)))
        kern = np.convolve(_pulse(c.rate, rng.uniform(0.002, 0.012)), _ring_kernel(c.rate, modes))
        kern /= np.abs(kern).max()
        vec = _direction(rng, rng.uniform(0.0, 1.0))
        u = rng.random()
        if u < 0.08:  # dropped: free fall (reads 0 g: -1 g on the vertical), impact, new attitude
            fall = rng.uniform(0.05, 0.3)
            i0, i1 = int(t * c.rate), int(min(c.dur, t + fall) * c.rate)
            x[i0:i1, 0] -= G_GAL
            t += fall
            amp = max(amp, 500.0)
            u = 0.0
        _place(x, t, c.rate, kern * amp, vec)
        if u < 0.3:  # the node moved: a tilt step (gravity shifts between axes)
            tilt = math.radians(_loguniform(rng, 0.05, 2.0) if u > 0.0 else rng.uniform(2.0, 30.0))
            az = rng.uniform(0, 2 * math.pi)
            step = G_GAL * np.array([math.cos(tilt) - 1.0, math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az)])
            i = int(round(t * c.rate))
            if i < c.n:
                ramp = np.clip(np.arange(c.n - i) / max(1.0, rng.uniform(0.01, 0.3) * c.rate), 0, 1)
                x[i:] += np.outer(ramp, step)
        c.onsets.append(t)
    return x


def _gen_sway(c):
    rng = c.rng
    f1 = _loguniform(rng, 0.1, 1.0)
    zeta = rng.uniform(0.005, 0.03)
    rms = _loguniform(rng, 0.05, 5.0)
    gust = _slow_envelope(rng, c.n, c.rate, rng.uniform(5.0, 30.0), rng.uniform(0.2, 0.8))[:, None]
    fx, fy = f1, f1 * rng.uniform(0.85, 1.15)
    ft = f1 * rng.uniform(1.2, 1.6)
    sx = _shaped_noise(rng, c.n, c.rate, lambda f: _resonance(f, fx, zeta) + 0.02 * _resonance(f, 3 * fx, zeta))
    sy = _shaped_noise(rng, c.n, c.rate, lambda f: _resonance(f, fy, zeta) + 0.02 * _resonance(f, 3 * fy, zeta))
    st = _shaped_noise(rng, c.n, c.rate, lambda f: _resonance(f, ft, zeta))
    x = np.zeros((c.n, 3))
    x[:, 1] = sx[:, 0] + 0.3 * rng.uniform(0, 1) * st[:, 0]
    x[:, 2] = sy[:, 0] * rng.uniform(0.3, 1.0) + 0.3 * rng.uniform(0, 1) * st[:, 0]
    x[:, 0] = 0.05 * rng.uniform(0, 1) * sx[:, 0]
    return _rotate_small(rng, x * gust * rms)


def _gen_carried(c):
    """Body-frame motion (vertical, forward, lateral) plus gravity, seen in a turning sensor frame."""
    rng = c.rng
    world = np.zeros((c.n, 3))  # [Z, N, E] in the world frame, gravity excluded
    theta = np.zeros((c.n, 3))  # attitude of the sensor (rotation vector), rad
    t = 0.0
    state = rng.choice(["still", "walk"])
    heading = rng.uniform(0, 2 * math.pi)
    while t < c.dur:
        d = rng.uniform(2.0, 15.0)
        a, b = int(t * c.rate), int(min(c.dur, t + d) * c.rate)
        seg = np.arange(a, b)
        if not len(seg):
            break
        tt = seg / c.rate
        if state in ("walk", "run", "stairs"):
            fs = {"walk": rng.uniform(1.5, 2.2), "run": rng.uniform(2.5, 3.2), "stairs": rng.uniform(1.2, 1.8)}[state]
            lo, hi = {"walk": (0.1, 0.35), "run": (0.5, 1.5), "stairs": (0.15, 0.4)}[state]
            av = G_GAL * rng.uniform(lo, hi)  # vertical gait acceleration, g -> gal
            ph = rng.uniform(0, 2 * math.pi, 6)
            w = 2 * math.pi * fs * (tt - tt[0]) * (1 + 0.01 * rng.standard_normal())
            vert = av * (np.sin(w + ph[0]) + rng.uniform(0.2, 0.5) * np.sin(2 * w + ph[1])
                         + rng.uniform(0.05, 0.2) * np.sin(3 * w + ph[2]))
            fwd = av * rng.uniform(0.3, 0.7) * (np.sin(w + ph[3]) + 0.3 * np.sin(2 * w + ph[4]))
            lat = av * rng.uniform(0.2, 0.5) * np.sin(0.5 * w + ph[5])
            heel = np.zeros(len(seg))
            steps = np.arange(0, len(seg), c.rate / fs).astype(int)
            heel[steps] = av * rng.uniform(0.3, 1.0)
            vert = vert + signal.fftconvolve(heel, _ring_kernel(c.rate, [(_loguniform(rng, 8.0, 25.0), 0.2, 1.0)]))[:len(seg)]
            ramp = np.clip((tt - tt[0]) / 0.8, 0, 1)  # gait starts over the first step
            world[seg, 0] += vert * ramp
            world[seg, 1] += (fwd * math.cos(heading) - lat * math.sin(heading)) * ramp
            world[seg, 2] += (fwd * math.sin(heading) + lat * math.cos(heading)) * ramp
            swing = math.radians(rng.uniform(5.0, 40.0))  # pocket: swings with the leg at the stride rate
            axis = _unit(rng.standard_normal(3))
            theta[seg] += np.outer(swing * np.sin(0.5 * w + rng.uniform(0, 6)) * ramp, axis)
            c.onsets.append(float(tt[0]))
        elif state == "handle":  # picked up / put down / turned over: a large, smooth attitude change
            m = len(seg)
            dur = min(d, rng.uniform(0.5, 2.0))
            k = min(m, int(dur * c.rate))
            prof = np.zeros(m)
            prof[:k] = 0.5 - 0.5 * np.cos(math.pi * np.arange(k) / max(k, 1))
            prof[k:] = 1.0
            dtheta = _unit(rng.standard_normal(3)) * math.radians(rng.uniform(10.0, 120.0))
            theta[seg] += np.outer(prof, dtheta)
            h_cm = rng.uniform(-1.0, 1.0) * _loguniform(rng, 5.0, 100.0)  # lifted or lowered
            tk = np.arange(k) / c.rate
            world[seg[:k], 0] += h_cm * 0.5 * (math.pi / dur) ** 2 * np.cos(math.pi * tk / dur)
            if k < m and rng.random() < 0.5:  # set down with a knock
                kern = _ring_kernel(c.rate, [(_loguniform(rng, 10.0, 60.0), 0.15, 1.0)])
                _place(world, (a + k) / c.rate, c.rate, kern * _loguniform(rng, 10.0, 500.0), _direction(rng, 0.8))
            c.onsets.append(float(tt[0]))
        else:  # still in a hand: tremor (8-12 Hz) and slow drift
            trem = _band_noise(rng, len(seg), c.rate, 7.0, 13.0, k=3) * G_GAL * _loguniform(rng, 0.0005, 0.01)
            world[seg] += trem
            theta[seg] += _band_noise(rng, len(seg), c.rate, 0.05, 1.0, k=3) * math.radians(rng.uniform(0.2, 3.0))
        if b < c.n:  # carry the attitude reached at the end of the segment into the rest
            theta[b:] += theta[b - 1]
        t += d
        state = rng.choice(["still", "walk", "run", "stairs", "handle"], p=[0.25, 0.4, 0.1, 0.1, 0.15])
        heading += rng.normal(0, 0.5)
    base = _rodrigues(_unit(rng.standard_normal(3))[None] * rng.uniform(0, math.pi))[0]
    rot = _rodrigues(theta) @ base  # sensor attitude over time
    g = np.array([G_GAL, 0.0, 0.0])
    total = world + g  # specific force: what an accelerometer measures, world frame
    sensed = np.einsum("nji,nj->ni", rot, total)  # R^T (world) -> sensor frame
    g0 = rot[0].T @ g
    return sensed - g0[None]  # the node's counts add the gravity of the initial attitude back


def _gen_tools(c):
    rng, x = c.rng, np.zeros((c.n, 3))
    for _ in range(int(rng.integers(1, 3))):
        kind = rng.choice(["motor", "hammer_drill", "hammering"], p=[0.5, 0.25, 0.25])
        amp = _loguniform(rng, 0.1, 50.0)
        vec = _mix(rng, rng.uniform(0.2, 0.9))
        for a, b in _bursts(c, rng, 0.5, 10.0):
            i0, i1 = int(a * c.rate), int(b * c.rate)
            m = i1 - i0
            if m < 4:
                continue
            c.onsets.append(a)
            tt = np.arange(m) / c.rate
            if kind == "hammering":
                period = rng.uniform(0.3, 1.0)
                times = np.arange(a, b, period)
                times = times + rng.normal(0, 0.03, len(times))
                kern = _ring_kernel(c.rate, [(_loguniform(rng, 8.0, 50.0), rng.uniform(0.05, 0.2), 1.0)])
                x += _impact_train(c, rng, times, amp * rng.uniform(0.5, 1.0, len(times)), kern, vec)
                continue
            f0 = _loguniform(rng, 50.0, 300.0) if kind == "motor" else rng.uniform(30.0, 60.0)
            spin = rng.uniform(0.1, 0.5)
            f_t = f0 * np.clip(tt / spin, 0.02, 1.0) * np.clip((tt[-1] - tt) / (0.5 * spin), 0.02, 1.0)
            phi = 2 * math.pi * np.cumsum(f_t) / c.rate
            s = np.sin(phi) + rng.uniform(0.1, 0.6) * np.sin(2 * phi + 1.0)
            s = np.where(f_t < 0.49 * c.rate, s, 0.0)
            s += rng.uniform(0.2, 1.0) * _band_noise(rng, m, c.rate, 5.0, 0.45 * c.rate)[:, 0]
            if kind == "hammer_drill":
                s += 1.5 * (np.sin(phi) > 0.95)
            x[i0:i1] += np.outer(s * amp, vec)
    return _rotate_small(rng, x)


_GENERATORS = {
    "footsteps": _gen_footsteps, "door": _gen_door, "traffic": _gen_traffic, "machinery": _gen_machinery,
    "construction": _gen_construction, "bump": _gen_bump, "sway": _gen_sway, "carried": _gen_carried,
    "tools": _gen_tools,
}
