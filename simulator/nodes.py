"""Node behaviour for the simulator, vectorised over nodes: detection, false triggers, telemetry, clocks.

Every function takes arrays over nodes (or over messages) and a numpy Generator; nothing here loops
over nodes in Python, and nothing here knows about SimPy.

Detection
    `StaLtaDetector` (the default) models the node's own rule: the recursive STA/LTA triggers when the
    amplitude of the shaking stands `on` times above the node's noise (sensor self-noise over the
    pipeline bandwidth, plus the site's ambient noise), and the trigger is confirmed when the shaking
    is sustained for `confirm_s` and its PGA reaches `min_pga_gal` (firmware/config.py defaults).
    The node sees the P wave first at `p_ratio` of its final PGA; when that is too weak it may still
    trigger on the S wave. `CurveDetector` takes a measured curve instead, e.g. the detector's model
    report: JSON `{"pga_gal": [...], "p_detect": [...], "delay_s": [...]}` (delay after P, by PGA),
    either one curve for all sensors or `{"adxl355": {...}, ...}` per sensor type.

False triggers
    A Poisson process per node-day with a rate by site class.

Telemetry
    A lognormal latency per link type (Wi-Fi + MQTT, LTE), a loss probability, and outage windows
    (a broker or network outage) during which messages are either dropped or, as the firmware's outbox
    does, buffered and sent when the link is back.

The numbers below are planning assumptions, named so that a measured figure can replace each one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from ..firmware import config as fwconfig
from .physics import P_PGA_RATIO, P_PGA_RATIO_SIGMA

G_GAL = 980.665
# The node's own defaults (firmware/config.py), which the "stalta" detection model mirrors.
_NODE = fwconfig.default()
TRIGGER_ON = float(_NODE["trigger"]["on"])
TRIGGER_STA_S = float(_NODE["trigger"]["sta_s"])
CONFIRM_S = float(_NODE["detector"]["confirm_s"])
MIN_PGA_GAL = float(_NODE["detector"]["min_pga_gal"])

# Sensor self-noise density in ug/sqrt(Hz) (datasheets): ADXL355 22.5; ADXL345 290 (x, y) to 430 (z),
# taken as 360; MPU-6050 400.
SENSOR_NOISE_UG = {"adxl355": 22.5, "mpu6050": 400.0, "adxl345": 360.0}
# Ambient (cultural) noise RMS in the pipeline band, gal, by site class: an assumption (quiet rural
# ground to a factory floor); replace with heartbeat noise statistics from a deployment.
SITE_NOISE_GAL = {"quiet": 0.02, "residential": 0.1, "urban": 0.3, "industrial": 1.0}
# False detections per node-day by site class. The detector's budget is <= 1 per node-day on quiet
# sites (DESIGN.md); noisier sites are assumed worse.
FALSE_PER_DAY = {"quiet": 0.5, "residential": 1.0, "urban": 2.0, "industrial": 4.0}


def noise_rms_gal(sensor: np.ndarray, site_class: np.ndarray, sensors: tuple[str, ...], site_classes: tuple[str, ...],
                  bandwidth_hz: float = 15.0, sensor_noise_ug: dict | None = None, site_noise_gal: dict | None = None) -> np.ndarray:
    """Total noise RMS (gal) per node: sensor self-noise over `bandwidth_hz` and site noise, added in power."""
    sn = SENSOR_NOISE_UG if sensor_noise_ug is None else sensor_noise_ug
    st = SITE_NOISE_GAL if site_noise_gal is None else site_noise_gal
    sens = np.array([sn[s] * 1e-6 * G_GAL * math.sqrt(bandwidth_hz) for s in sensors], dtype=np.float64)
    site = np.array([st[c] for c in site_classes], dtype=np.float64)
    return np.hypot(sens[sensor], site[site_class])


@dataclass
class DetectDraw:
    """One draw of the detection model over nodes.

    detected: the node reports a detection; on_s: 0 when it triggered on the P wave, 1 on the S wave;
    delay_s: from that phase's arrival to the detection message; amp_ratio: the PGA it has seen when
    it reports, as a fraction of its final PGA.
    """

    detected: np.ndarray
    on_s: np.ndarray
    delay_s: np.ndarray
    amp_ratio: np.ndarray


class StaLtaDetector:
    """The node's STA/LTA trigger and confirmation rule against its noise, as a detection model.

    p(detect | amplitude a) = Phi(ln(a / a_thr) / beta) with a_thr = max(min_pga_gal, on * noise): the
    trigger needs `on` times the noise and the confirmation needs `min_pga_gal`. The median delay after
    the onset is the confirmation time plus the STA's build-up, sta_s * min(1, a_thr / a), with a
    lognormal scatter `delay_sigma`.
    """

    def __init__(self, on: float = TRIGGER_ON, sta_s: float = TRIGGER_STA_S, confirm_s: float = CONFIRM_S,
                 min_pga_gal: float = MIN_PGA_GAL, beta: float = 0.4, p_ratio: float = P_PGA_RATIO,
                 p_ratio_sigma: float = P_PGA_RATIO_SIGMA, delay_sigma: float = 0.3):
        self.on = on
        self.sta_s = sta_s
        self.confirm_s = confirm_s
        self.min_pga_gal = min_pga_gal
        self.beta = beta
        self.p_ratio = p_ratio
        self.p_ratio_sigma = p_ratio_sigma
        self.delay_sigma = delay_sigma

    def threshold_gal(self, noise: np.ndarray) -> np.ndarray:
        return np.maximum(self.min_pga_gal, self.on * noise)

    def p_detect(self, amp_gal: np.ndarray, noise: np.ndarray) -> np.ndarray:
        thr = self.threshold_gal(noise)
        with np.errstate(divide="ignore"):
            return ndtr(np.log(np.maximum(amp_gal, 1e-30) / thr) / self.beta)

    def median_delay(self, amp_gal: np.ndarray, noise: np.ndarray) -> np.ndarray:
        thr = self.threshold_gal(noise)
        return self.confirm_s + self.sta_s * np.minimum(1.0, thr / np.maximum(amp_gal, 1e-30))

    def sample(self, pga_gal: np.ndarray, sp_s: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> DetectDraw:
        """Draw detections for nodes with final PGA `pga_gal` and S-minus-P time `sp_s`.

        One uniform per node decides both phases (P first, else S), so a stronger motion never turns a
        detection into a miss; draws are made for every node whatever its state, so that the same seed
        gives the same draws to the same node in every variant of a scenario.
        """
        n = pga_gal.shape[0]
        u = rng.random(n)
        ratio = self.p_ratio * np.exp(self.p_ratio_sigma * rng.standard_normal(n))
        ratio = np.minimum(ratio, 1.0)
        z = rng.standard_normal(n)
        amp_p = pga_gal * ratio
        on_p = u < self.p_detect(amp_p, noise)
        on_s = ~on_p & (u < self.p_detect(pga_gal, noise))
        amp = np.where(on_p, amp_p, pga_gal)
        delay = self.median_delay(amp, noise) * np.exp(self.delay_sigma * z)
        # Seen amplitude at reporting time: the S wave's if it arrived before the report.
        seen = np.where(on_p & (delay < sp_s), ratio, 1.0)
        return DetectDraw(on_p | on_s, on_s.astype(np.int8), delay, seen)


class CurveDetector:
    """A measured detection curve: p_detect and median delay after P, interpolated in log PGA."""

    def __init__(self, pga_gal, p_detect, delay_s, delay_sigma: float = 0.3, p_ratio: float = P_PGA_RATIO, name: str = "curve"):
        x = np.asarray(pga_gal, dtype=np.float64)
        p = np.asarray(p_detect, dtype=np.float64)
        d = np.asarray(delay_s, dtype=np.float64)
        where = "%s: " % name
        if x.ndim != 1 or x.size < 2:
            raise ValueError(where + "pga_gal: expected a list of at least 2 numbers")
        if p.shape != x.shape or d.shape != x.shape:
            raise ValueError(where + "p_detect and delay_s: expected lists as long as pga_gal (%d)" % x.size)
        if not np.all(np.isfinite(x)) or np.any(x <= 0) or np.any(np.diff(x) <= 0):
            raise ValueError(where + "pga_gal: expected positive, strictly increasing values")
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise ValueError(where + "p_detect: expected values in [0, 1]")
        if not np.all(np.isfinite(d)) or np.any(d < 0):
            raise ValueError(where + "delay_s: expected values >= 0")
        self.logx = np.log(x)
        self.p = p
        self.d = d
        self.delay_sigma = delay_sigma
        self.p_ratio = p_ratio

    def p_detect(self, pga_gal: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        return np.interp(np.log(np.maximum(pga_gal, 1e-30)), self.logx, self.p)

    def median_delay(self, pga_gal: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        return np.interp(np.log(np.maximum(pga_gal, 1e-30)), self.logx, self.d)

    def sample(self, pga_gal: np.ndarray, sp_s: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> DetectDraw:
        n = pga_gal.shape[0]
        u = rng.random(n)
        rng.random(n)  # keep the stream in step with StaLtaDetector
        z = rng.standard_normal(n)
        det = u < self.p_detect(pga_gal)
        delay = self.median_delay(pga_gal) * np.exp(self.delay_sigma * z)
        seen = np.where(delay < sp_s, self.p_ratio, 1.0)
        return DetectDraw(det, np.zeros(n, dtype=np.int8), delay, seen)


def load_curve(path: str | Path, sensors: tuple[str, ...], p_ratio: float = P_PGA_RATIO,
               delay_sigma: float = 0.3) -> dict[str, CurveDetector]:
    """Read a detection-curve JSON: one curve for every sensor type, or one per sensor name."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise ValueError("%s: cannot read: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise ValueError("%s: not JSON: %s" % (path, e)) from None
    if not isinstance(doc, dict):
        raise ValueError("%s: expected an object" % path)
    if "pga_gal" in doc:
        c = _curve(doc, "%s" % path, p_ratio, delay_sigma)
        return {s: c for s in sensors}
    out = {}
    for key, sub in doc.items():
        if key not in sensors:
            raise ValueError("%s: %s: unknown sensor (expected one of %s)" % (path, key, ", ".join(sensors)))
        if not isinstance(sub, dict):
            raise ValueError("%s: %s: expected an object" % (path, key))
        out[key] = _curve(sub, "%s: %s" % (path, key), p_ratio, delay_sigma)
    return out


def _curve(doc: dict, where: str, p_ratio: float, delay_sigma: float) -> CurveDetector:
    for k in ("pga_gal", "p_detect", "delay_s"):
        if k not in doc:
            raise ValueError("%s: %s: missing" % (where, k))
    return CurveDetector(doc["pga_gal"], doc["p_detect"], doc["delay_s"], delay_sigma=delay_sigma, p_ratio=p_ratio, name=where)


def sample_detections(models: dict[int, StaLtaDetector | CurveDetector], sensor: np.ndarray, pga_gal: np.ndarray,
                      sp_s: np.ndarray, noise: np.ndarray, seed: int) -> DetectDraw:
    """Draw detections with one model per sensor index (`models[sensor_index]`).

    Every model draws for all nodes from a generator of its own, seeded with (seed, sensor index), and
    keeps the draws of its own nodes: so a node's draws do not depend on the other nodes.
    """
    n = pga_gal.shape[0]
    out = DetectDraw(np.zeros(n, bool), np.zeros(n, np.int8), np.zeros(n), np.ones(n))
    for key in sorted(models):
        m = sensor == key
        if not m.any():
            continue
        d = models[key].sample(pga_gal, sp_s, noise, np.random.default_rng([seed, key]))
        out.detected[m] = d.detected[m]
        out.on_s[m] = d.on_s[m]
        out.delay_s[m] = d.delay_s[m]
        out.amp_ratio[m] = d.amp_ratio[m]
    return out


# --- false triggers ---------------------------------------------------------------------------
def false_rates_per_day(site_class: np.ndarray, site_classes: tuple[str, ...], rates: dict | None = None) -> np.ndarray:
    r = FALSE_PER_DAY if rates is None else rates
    return np.array([r[c] for c in site_classes], dtype=np.float64)[site_class]


def false_triggers(rate_per_day: np.ndarray, t_start: float, t_end: float, rng: np.random.Generator,
                   max_count: int = 200_000_000) -> tuple[np.ndarray, np.ndarray]:
    """False triggers as independent Poisson processes: (node index, time) sorted by time."""
    dur = t_end - t_start
    if dur <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    counts = rng.poisson(rate_per_day * (dur / 86400.0))
    total = int(counts.sum())
    if total > max_count:
        raise ValueError("false triggers: %d in the window, more than %d: shorten the run" % (total, max_count))
    node = np.repeat(np.arange(rate_per_day.shape[0], dtype=np.int64), counts)
    t = t_start + dur * rng.random(total)
    order = np.argsort(t, kind="stable")
    return node[order], t[order]


def false_amplitude(threshold_gal: np.ndarray, rng: np.random.Generator, sigma: float = 0.5) -> np.ndarray:
    """PGA reported with a false trigger: at least the node's threshold, lognormal above it."""
    return threshold_gal * np.exp(np.abs(sigma * rng.standard_normal(threshold_gal.shape[0])))


# --- telemetry ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    """A telemetry link: lognormal latency (median, sigma of ln) and a loss probability per message."""

    name: str
    median_s: float
    sigma_ln: float
    loss_p: float


# Wi-Fi to an MQTT broker, LTE modem: assumptions to be replaced by measured round trips.
DEFAULT_LINKS = (Link("wifi", 0.25, 0.6, 0.01), Link("lte", 0.6, 0.5, 0.005))


@dataclass(frozen=True)
class Outage:
    """A telemetry outage window [start_s, end_s) on a fraction of the nodes (optionally of one link)."""

    start_s: float
    end_s: float
    fraction: float = 1.0
    link: str | None = None
    mode: str = "buffer"  # "buffer": sent when the link is back (the firmware's outbox); "drop": lost


def assign_links(n: int, lte_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Link index per node (0 = first link, 1 = second): LTE for a random `lte_fraction` of the nodes."""
    return (rng.random(n) < lte_fraction).astype(np.int8)


def deliver(send_t: np.ndarray, node: np.ndarray, link_of_node: np.ndarray, links: tuple[Link, ...],
            outages: tuple[Outage, ...], outage_u: np.ndarray, rng: np.random.Generator,
            zero_latency: bool = False) -> np.ndarray:
    """Arrival time of each message at the aggregator (NaN when lost).

    `outage_u[j, node]` are uniforms per outage and node that choose the affected nodes
    (u < fraction), drawn once per node so that a wider outage always contains a narrower one.
    """
    m = send_t.shape[0]
    link = link_of_node[node]
    u_loss = rng.random(m)
    z = rng.standard_normal(m)
    t = send_t.copy()
    lost = np.zeros(m, dtype=bool)
    link_names = [lk.name for lk in links]
    for j, o in enumerate(outages):
        hit = (t >= o.start_s) & (t < o.end_s) & (outage_u[j][node] < o.fraction)
        if o.link is not None:
            hit &= link == link_names.index(o.link)
        if o.mode == "drop":
            lost |= hit
        else:
            t = np.where(hit, o.end_s, t)
    if not zero_latency:
        med = np.array([lk.median_s for lk in links])[link]
        sig = np.array([lk.sigma_ln for lk in links])[link]
        loss = np.array([lk.loss_p for lk in links])[link]
        t = t + med * np.exp(sig * z)
        lost |= u_loss < loss
    t[lost] = np.nan
    return t


def online(outage_p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Nodes up at the time of the scenario: each is down with its own probability `outage_p`."""
    return rng.random(outage_p.shape[0]) >= outage_p


def clock_offsets(clock_err_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clock offset per node (s): normal with the node's standard deviation `clock_err_s`."""
    return clock_err_s * rng.standard_normal(clock_err_s.shape[0])
