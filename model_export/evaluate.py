"""Held-out evaluation of the detector: windows, the full node pipeline, and two STA/LTA baselines.

    res = evaluate(ds, Path("firmware/model"), Path("build/model/report"))   # report.md + PNGs

What is measured (all on data the model never saw in training):
1. Windows: the test split's int8 TFLM scores -> ROC and precision-recall curves, and the rate at
   the decision threshold per kind of window.
2. Continuous synthetic recordings (dataset.continuous_records, seeds disjoint from the data set's):
   one per scenario (quiet site, home, office, street, industrial, tower, carried phone), with
   labelled quakes (drawn so that the BA08 median PGA is >= 8x the quiet background rms; "clearly
   visible" = measured SNR >= VISIBLE_SNR: the quake's peak over the rms of everything in the 30 s
   before P, activity under way included; the rates are given for those and for all), plus quake-rich
   recordings for the detection rate by magnitude and distance, and four days of the quiet site
   without quakes (QUIET_HOURS: a false rate per node-day needs days, not hours). Each goes through
   - "model": the node pipeline (seismote replay's path: resampled to the sensor rate, counts,
     firmware Pipeline.push) with the exported model in the TFLM kernels (firmware/detector.py);
   - "rule": the same pipeline with the rule instead of the model (`--no-model`);
   - "openeew": OpenEEW's firmware trigger (openeew-firmware Main/src/main.cpp): on each axis,
     |a - mean over the last 11 s|, classic STA 1 s / LTA 10 s, threshold 4 on any axis. Computed
     with obspy.signal.trigger.classic_sta_lta on sqrt|a - offset| (ObsPy squares its input, so
     this is the firmware's mean-|a| ratio) and trigger_onset(on 4, off 2);
   - "rsudp": rsudp's alert module defaults: the vertical channel band-passed 0.8-9 Hz
     (obspy bandpass, 4 corners, causal), recursive_sta_lta 6 s / 30 s, threshold 3.95, reset 0.9.
   A detection inside [P - 2 s, end of the quake's shaking] detects that quake (delay = detection
   - P); any other detection is false. False detections are counted per scenario and attributed
   to the activity under way (door, footsteps, machinery, ...) when there is one.
3. Real records: the OpenEEW test events (real.split_events: the 2018 Mw 7.2 Pinotepa event and
   one more), every device, replayed the same way at their own rate; "clearly visible" = the
   records.csv label earthquake_visible. Detections before P - 2 s, or anywhere in a record without
   a quake, are false (real noise: the node-day figure); detections after P + 90 s are listed but
   not counted (the event's coda and aftershocks, which the catalogue misses minutes after a large
   event: both the model and the rule fire on the same ones).
4. By sensor: the same activity and quake-rich recordings as read by each sensor the firmware
   drives (SENSORS; the ADXL355 first, whose figures are the headline and the targets): the
   MPU6050 and ADXL345 are 13-19x noisier, so fewer small quakes are visible on them; each runs
   the rule its node would (model.json `decision_by_sensor` if the export calibrated one, else
   `decision`).
5. The targets (`targets`): each headline figure against the detector's target with a 95%
   interval (exact binomial, exact Poisson, order statistics for the median delay); a target is
   met only if the whole interval meets it, since 18 h of activity or 18 real records are few.
Writes report.md, the figures, results.json, and the headline metrics into model.json.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..firmware import detector as fwdetector
from ..firmware.config import COUNTS_PER_G
from .node_windows import Probe, drive, node_model


METHODS = ("model", "rule", "openeew", "rsudp")
LABELS = {"model": "node + model", "rule": "node, rule only", "openeew": "OpenEEW STA/LTA", "rsudp": "rsudp STA/LTA"}
EVAL_SEED = 7001  # continuous recordings: seeds far from the data set's
BEFORE_P_S = 2.0
REAL_AFTER_P_S = 90.0
VISIBLE_SNR = 8.0  # "clearly visible": peak >= 8x the noise rms before P (the OpenEEW records.csv label's rule)
# "P clearly visible": the same rule on the first second after P alone. A quake clearly visible by its
# S wave can have a P wave buried in the noise, and no detector can then confirm it within 1 s of P.
P_VISIBLE_S = 1.0
MAG_BINS = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
# SNR bands for where the delay after P goes: the trigger's part and the model's confirmation
SNR_BINS = (VISIBLE_SNR, 30.0, 100.0, math.inf)
DIST_BINS = (0.0, 10.0, 30.0, 100.0, 300.0)
SENSORS = tuple(COUNTS_PER_G)  # the sensors the firmware drives; SENSORS[0] (the ADXL355) is the headline's


# --- the baselines (ObsPy) ----------------------------------------------------------------------


def openeew_trigger(acc: np.ndarray, rate: float, sta_s: float = 1.0, lta_s: float = 10.0, on: float = 4.0,
                    off: float = 2.0, offset_s: float = 11.0) -> list[float]:
    """Onsets (s) of OpenEEW's firmware STA/LTA on (n, 3) acceleration."""
    from obspy.signal.trigger import classic_sta_lta, trigger_onset

    a = np.asarray(acc, dtype=float)
    n = len(a)
    nsta, nlta, noff = int(round(sta_s * rate)), int(round(lta_s * rate)), int(round(offset_s * rate))
    if n <= nlta + 1:
        return []
    c = np.cumsum(np.vstack([np.zeros((1, a.shape[1])), a]), axis=0)
    lo = np.maximum(np.arange(n) + 1 - noff, 0)
    offset = (c[np.arange(n) + 1] - c[lo]) / (np.arange(n) + 1 - lo)[:, None]
    ratio = np.zeros(n)
    for k in range(a.shape[1]):
        ratio = np.maximum(ratio, classic_sta_lta(np.sqrt(np.abs(a[:, k] - offset[:, k])), nsta, nlta))
    ratio[: nlta + noff] = 0.0  # the firmware starts once its queue is full
    return [float(i) / rate for i, _ in trigger_onset(ratio, on, off)]


def rsudp_trigger(acc: np.ndarray, rate: float, sta_s: float = 6.0, lta_s: float = 30.0, on: float = 3.95,
                  off: float = 0.9, band: tuple[float, float] = (0.8, 9.0)) -> list[float]:
    """Onsets (s) of rsudp's alert module on the vertical (column 0)."""
    from obspy.signal.filter import bandpass
    from obspy.signal.trigger import recursive_sta_lta, trigger_onset

    z = np.asarray(acc, dtype=float)[:, 0]
    nsta, nlta = int(round(sta_s * rate)), int(round(lta_s * rate))
    if len(z) <= nlta + 1:
        return []
    f = bandpass(z - z[: nlta].mean(), band[0], min(band[1], 0.45 * rate), df=rate, corners=4, zerophase=False)
    cft = recursive_sta_lta(f, nsta, nlta)
    cft[: 2 * nlta] = 0.0  # rsudp fills its LTA buffer first; the recursive LTA needs it to settle
    return [float(i) / rate for i, _ in trigger_onset(cft, on, off)]


# --- the node -----------------------------------------------------------------------------------


def node_detections(rec, sensor: str, model_dir: Path | None) -> tuple[list[float], list[float]]:
    """Detection times and trigger (STA/LTA onset) times, s after the record's first sample, of the node pipeline."""
    from ..host_tools.replay import replay_record

    dets, trig = [], []
    for e in replay_record(rec, node_model(sensor, model_dir)):
        if e["event"] == "detection":
            dets.append(float(e["t"]))
        elif e["event"] == "trigger":
            trig.append(float(e["t"]))
    return dets, trig


def _baselines(rec) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"openeew": [], "rsudp": []}
    for seg in rec.segments:
        out["openeew"] += [seg.offset_s + t for t in openeew_trigger(seg.data, rec.rate)]
        out["rsudp"] += [seg.offset_s + t for t in rsudp_trigger(seg.data, rec.rate)]
    return out


def _all_methods(rec, sensor: str, model_dir: Path) -> dict:
    dets: dict[str, list[float]] = {}
    dets["model"], trig = node_detections(rec, sensor, model_dir)
    dets["rule"], _ = node_detections(rec, sensor, None)
    dets.update(_baselines(rec))
    return {"detections": dets, "trigger_times": trig}


def _continuous_job(args) -> dict:
    from .dataset import continuous_records

    scenario, seed, hours, quakes_per_hour, model_dir, group, sensor = args
    rec = next(continuous_records(seed=seed, hours=hours, scenarios=(scenario,), quakes_per_hour=quakes_per_hour, sensor=sensor))
    record = rec.to_record()
    out = _all_methods(record, rec.sensor, model_dir)
    out.update(group=group, name=rec.name, scenario=scenario, sensor=rec.sensor, duration_s=rec.duration_s, activities=rec.activities,
               quakes=[dict(q, p_snr=snr_after_p(record, q["p_s"], P_VISIBLE_S)) for q in rec.quakes])
    return out


def data_seed_and_catalog(ds) -> tuple[int, str]:
    """The data set's seed and records catalogue (its config), which place the real events in splits."""
    cfg = ds.config if isinstance(getattr(ds, "config", None), dict) else {}
    return cfg.get("seed", 0), cfg.get("records", "")


def visible_real(ex: dict) -> bool:
    """A real OpenEEW record (real.openeew_examples) is clearly visible by its records.csv label."""
    return ex["label"] == "earthquake_visible"


def snr_after_p(rec, p_s: float, after_s: float) -> float | None:
    """The record's peak in [P, P + after_s] (DC removed as the node does, any component) over the rms
    of everything in the 30 s before P, up to P - BEFORE_P_S: VISIBLE_SNR's measure. None when P's
    segment has no 30 s before it."""
    from .dataset import _hp

    pre_n = int(30 * rec.rate)
    for seg in rec.segments:
        i = int(round((p_s - seg.offset_s) * rec.rate))
        if pre_n <= i < len(seg.data):
            lead = max(0, i - 2 * pre_n)  # the high-pass, primed at the slice's start, settles long before the noise window
            x = _hp(np.asarray(seg.data[lead:i + max(1, int(after_s * rec.rate))], dtype=float))
            i -= lead
            rms = float(np.sqrt(np.mean(x[i - pre_n:i - int(BEFORE_P_S * rec.rate)] ** 2)))
            peak = float(np.abs(x[i:]).max())
            return peak / rms if rms > 0 else math.inf
    return None


def _real_job(args) -> list[dict]:
    from . import real

    event, model_dir, catalog, root, sensor = args  # root None: the catalogue's records alone
    out = []
    for ex in real.examples(events=[event], root=root, catalog=catalog):
        rec = ex["record"]
        res = _all_methods(rec, sensor, model_dir)
        res.update(group="real", name=ex["file"], event_id=event, device=ex["device"], label=ex["label"],
                   positive=ex["positive"], visible=visible_real(ex), p_s=ex["p_offset_s"],
                   p_snr=snr_after_p(rec, ex["p_offset_s"], P_VISIBLE_S),
                   mag=ex["mag"], epi_km=ex["epi_km"], duration_s=rec.duration_s)
        out.append(res)
    return out


def score_records(catalog: str, model_dir: Path, workers: int = 2, progress=None, sensor: str = "adxl355") -> dict:
    """Every record of a catalogue (real.read_catalog), whatever its split, through a node with `sensor`
    and the model of `model_dir`, and with the baselines, scored as the evaluation scores the real test
    records: {"records": real_rows, "summary": real_summary without the per-record delays}."""
    from . import real

    say = progress or (lambda stage, done, total: None)
    events = sorted({r["event"] for r in real.read_catalog(catalog)})
    runs: list[dict] = []
    say("records through the node", 0, len(events))
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn")) as ex:
        for i, r in enumerate(ex.map(_real_job, [(ev, Path(model_dir).resolve(), str(catalog), None, sensor) for ev in events])):
            runs.extend(r)
            say("records through the node", i + 1, len(events))
    rows = real_rows(runs)
    summary = real_summary(rows)
    summary.pop("delays")
    return {"records": rows, "summary": summary}


# --- calibration of the decision rule on score traces -------------------------------------------


class TraceDetector(Probe):
    """A Probe that scores every inference with the firmware Detector `det`, logging each score.

    The pipeline then runs the model for the whole of every event (as it would until a
    confirmation), so the decision rule can be replayed offline for any thresholds: `log` holds
    (offset, onset_n, n, q, pga_counts) per inference, n in pipeline samples.
    """

    def __init__(self, det):
        # max_runs 0, the whole event, and every look-back window calibration may choose: simulate() applies the rule's
        super().__init__(det.stride, 0, det.buf, MAX_LOOKBACK)
        self.det = det
        self.log: list[tuple[float, int, int, int, int]] = []

    def infer(self, window=None):
        return self.det.infer(window)

    def update(self, q):
        p = self.pipe
        self.peak_q = max(self.peak_q, q)
        self.log.append((self.offset, p.onset_n, p.n, int(q), p.feat.pga_counts()))
        return False


def trace_record(rec, sensor: str, model_dir: Path, trigger: dict | None = None) -> dict:
    """Score traces of every event of the node pipeline on `rec` (one segment); `trigger`: node_model's."""
    from ..firmware.config import PIPELINE_RATE_HZ
    from ..host_tools.replay import load_detector

    node = node_model(sensor, trigger=trigger)
    tr = TraceDetector(load_detector(model_dir))
    onsets = drive(rec, node, tr)
    fs = PIPELINE_RATE_HZ
    per_gal = node.counts_per_g / 980.665
    events: dict[tuple, dict] = {k: {"back": [], "trace": []} for k in onsets}
    for off, onset_n, n, q, pga in tr.log:
        ev = events.setdefault((off, onset_n), {"back": [], "trace": []})
        # the look-back windows are scored at the onset (the only inferences there), oldest first; a
        # confirmation among them is reported on the next sample
        ev["back" if n == onset_n else "trace"].append((off + (n + (n == onset_n)) / fs, q, pga / per_gal))
    return {"events": [{"onset_t": k[0] + k[1] / fs, **v} for k, v in sorted(events.items())],
            "min_pga_gal": node.cfg["detector"]["min_pga_gal"]}


def simulate(events: list[dict], on_q: int, off_q: int, confirm_n: int, min_pga_gal: float, max_runs: int = 0,
             every: int = 1, lookback: int = 0) -> list[float]:
    """Detection times the pipeline would give with these thresholds (from TraceDetector traces).

    `max_runs`: inferences per event (0 = all), the look-back ones included; `every`: use every k-th
    inference (a stride k times the traced one); `lookback`: windows scored at the onset (the last
    `lookback` of those traced).
    """
    if lookback and every != 1:
        raise ValueError("look-back windows are traced at the node's stride only (every=1)")
    out = []
    for ev in events:
        back = ev.get("back", [])
        if lookback > len(back):
            raise ValueError("%d look-back windows asked for, %d traced" % (lookback, len(back)))
        run, confirmed = 0, False
        for i, (t, q, pga) in enumerate((back[len(back) - lookback:] if lookback else []) + ev["trace"]):
            if i % every:
                continue
            if max_runs and i // every >= max_runs and not confirmed:
                break
            if not confirmed:
                if q >= on_q:
                    run += 1
                elif q < off_q:
                    run = 0
                confirmed = run >= confirm_n
            if confirmed and pga >= min_pga_gal:
                out.append(t)
                break
    return out


def _trace_job(args, trigger: dict | None = None) -> dict:
    from .dataset import continuous_records

    scenario, seed, hours, quakes_per_hour, model_dir, group, sensor = args
    rec = next(continuous_records(seed=seed, hours=hours, scenarios=(scenario,), quakes_per_hour=quakes_per_hour, sensor=sensor))
    out = trace_record(rec.to_record(), rec.sensor, model_dir, trigger)
    out.update(group=group, scenario=scenario, sensor=sensor, duration_s=rec.duration_s, quakes=rec.quakes, activities=rec.activities)
    return out


def _real_trace_job(args, trigger: dict | None = None) -> list[dict]:
    from . import real

    event, model_dir, catalog = args
    out = []
    for ex in real.examples(events=[event], catalog=catalog):
        r = trace_record(ex["record"], "adxl355", model_dir, trigger)
        vis = visible_real(ex)
        r.update(group="real", scenario="real", duration_s=ex["record"].duration_s, activities=[],
                 quakes=[{"p_s": ex["p_offset_s"], "end_s": ex["p_offset_s"] + REAL_AFTER_P_S}] if vis else [])
        out.append(r)
    return out


CAL_SEED = 5001  # calibration recordings: neither the data set's nor the evaluation's seeds
# Hours per scenario of calibration recordings (`seismote model export --cal-hours`). The choice is
# the best of ~2300 rules on a rate counted from a handful of false detections, so it favours rules
# that were lucky there: at 2 h (12 h of activity) the held-out rates of four models came out
# 1.0-7x the calibrated ones (0.42 -> 1.11/h, 0.08 -> 0.61/h); at 6 h the first fell to 0.89/h.
# The previous committed model (24 h of node windows) got the same held-out figures either way.
CAL_HOURS = 6.0
TARGET_FPH = 0.5  # false detections per hour under activity allowed in calibration: half the 1/h target, a margin for held-out data


def _recordings(seed: int, hours: float, quake_hours: float, model_dir: Path, sensor: str) -> list[tuple]:
    """Every scenario (4 quakes an hour), then quake-rich ones (40 an hour), as read by `sensor`:
    `_continuous_job` / `_trace_job` arguments, seeds from `seed` up."""
    jobs = [(sc, seed + i, hours, 4.0, model_dir, "activity", sensor) for i, sc in enumerate(_scenarios())]
    return jobs + [(sc, seed + 100 + i, quake_hours, 40.0, model_dir, "quakes", sensor)
                   for i, sc in enumerate(("quiet", "home", "office", "street"))]


def calibration_jobs(model_dir: Path, hours: float, quake_hours: float, sensor: str = SENSORS[0]) -> list[tuple]:
    """The calibration recordings as read by `sensor` (`_recordings` from CAL_SEED)."""
    return _recordings(CAL_SEED, hours, quake_hours, model_dir, sensor)


def trace_runs(jobs: list[tuple], real_events, model_dir: Path, workers: int = 2, progress=None,
               stage: str = "calibration recordings", trigger: dict | None = None, catalog: str = "") -> list[dict]:
    """Score traces (trace_record) of the recordings `jobs` and of the real events' records (OpenEEW's,
    and the records `catalog`'s of its events), by a node with the default trigger or with `trigger`'s fields overridden."""
    say = progress or (lambda stage, done, total: None)
    runs: list[dict] = []
    total = len(jobs) + len(real_events)
    say(stage, 0, total)
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn")) as ex:
        futs = ([ex.submit(_trace_job, j, trigger) for j in jobs]
                + [ex.submit(_real_trace_job, (e, model_dir, catalog), trigger) for e in real_events])
        for i, f in enumerate(futs):
            r = f.result()
            runs.extend(r if isinstance(r, list) else [r])
            say(stage, i + 1, total)
    return runs


def rule_metrics(runs: list[dict], detect) -> dict:
    """How a decision rule does on traced runs; `detect(run)` gives its detection times.

    detected: share of the synthetic quakes; detected_real: of the real records' (None without any);
    false_per_hour: under activity (quiet scenario left out); false_per_day_quiet: over the "quiet"
    group (None without one); median delays after P in s (99.0 without any detection); the share of
    the clearly visible synthetic quakes (SNR >= VISIBLE_SNR) detected and their median delay, the
    evaluation's headline figures (None without any).
    """
    n_syn = sum(len(r["quakes"]) for r in runs if r["group"] != "real")
    n_real = sum(len(r["quakes"]) for r in runs if r["group"] == "real")
    act_hours = sum(r["duration_s"] for r in runs if r["group"] == "activity" and r["scenario"] != "quiet") / 3600
    quiet_hours = sum(r["duration_s"] for r in runs if r["group"] == "quiet") / 3600
    hits, hits_real, false, quiet_false, n_vis = 0, 0, 0, 0, 0
    delays: list[float] = []
    syn_delays: list[float] = []
    vis_delays: list[float] = []
    for r in runs:
        sc = match(detect(r), r["quakes"], r["activities"])
        d = [x for x in sc["delays"] if x is not None]
        if r["group"] == "real":
            hits_real += len(d)
        else:
            hits += len(d)
            syn_delays += d
            vis = [x for q, x in zip(r["quakes"], sc["delays"]) if q.get("snr", math.inf) >= VISIBLE_SNR]
            n_vis += len(vis)
            vis_delays += [x for x in vis if x is not None]
        delays += d
        if r["group"] == "activity" and r["scenario"] != "quiet":
            false += len(sc["false"])
        elif r["group"] == "quiet":
            quiet_false += len(sc["false"])
    return {"detected": hits / max(1, n_syn), "detected_real": hits_real / n_real if n_real else None,
            "false_per_hour": false / act_hours if act_hours else 0.0,
            "false_per_day_quiet": 24.0 * quiet_false / quiet_hours if quiet_hours else None,
            "median_delay_s": float(np.median(delays)) if delays else 99.0,
            "median_delay_synthetic_s": float(np.median(syn_delays)) if syn_delays else 99.0,
            "detected_visible": len(vis_delays) / n_vis if n_vis else None,
            "median_delay_visible_s": float(np.median(vis_delays)) if vis_delays else None,
            "quakes": n_syn, "real_quakes": n_real}


def choose(items: list, target_fph: float):
    """Calibration's choice among `items`, (metrics, tie, ...) tuples of rule_metrics figures: within
    target_fph, the most real records detected; among those, every rule whose share of the synthetic
    quakes is within one standard error of the best share, and of them the shortest median delay after
    P, then the largest `tie`. Beyond target_fph for all: the fewest false detections, then the most quakes.

    Why the standard error: several hundred calibration quakes tell shares 0.3 points apart no better
    than chance, while the rules that differ so can differ by a tenth of a second in delay. Taking the
    most synthetic quakes outright chose, on the bundled model's calibration recordings with a 1 s STA
    trigger, 3 scores >= -28 (88.2%, 1.38 s) over 2 >= -24 (87.9%, 1.35 s); held out the second is
    better on every figure: 1.08 s against 1.17 s after P, 0.53 against 0.56 false/h of activity,
    0.25 against 0.5 per quiet day, the same 97.4% and 15 of 18 real records. The real records stay
    first: letting one go for a shorter delay (the best sum of both shares within one standard error,
    tried before) gave one model 2 more of its 18 held-out real records and another 6 fewer. The delay
    is the median over every calibration quake; over the clearly visible ones alone (the target's
    measure, `median_delay_visible_s`) it chose, with the 0.5 s STA, 2 >= -24 reset at -56, whose
    0.47 false/h on calibration came out 0.86/h held out (0.963 s against 0.966 s)."""
    ok = [it for it in items if it[0]["false_per_hour"] <= target_fph]
    if not ok:
        return max(items, key=lambda it: (-it[0]["false_per_hour"], it[0]["detected"] + (it[0]["detected_real"] or 0.0), it[1]))
    real = max(it[0]["detected_real"] or 0.0 for it in ok)
    ok = [it for it in ok if (it[0]["detected_real"] or 0.0) == real]
    best = max(it[0]["detected"] for it in ok)
    se = math.sqrt(best * (1.0 - best) / max(1, ok[0][0]["quakes"]))
    return min((it for it in ok if it[0]["detected"] >= best - se - 1e-12), key=lambda it: (it[0]["median_delay_s"], -it[1]))


# Look-back windows (detector.lookback) traced, so that calibration may choose up to this many
# (`--max-lookback`). On the committed model's calibration recordings, with its rule, 0-4 of them:
# median delay 1.38/1.35/1.32/1.30/1.29 s at 0.44/0.47/0.47/0.50/0.58 false/h: beyond 3, the false
# detections grow faster than the delay falls. Held out, 3 of them: 1.29 -> 1.15 s (every synthetic
# quake), 0.56 -> 0.58 false/h of activity, but 0.5 -> 1.0 per day at the quiet site: a window before
# the trigger there is the background scaled to full range, which that model never saw in training.
MAX_LOOKBACK = 3


def consecutive_rules(confirm_ns=(1, 2, 3, 4), max_runs=(0, 40), on_qs=tuple(range(-128, 128, 4)), hysteresis=(0, 32, 256),
                      lookbacks=(0,)):
    """The node's decision rules calibration tries: (confirm_n, max_runs, on_q, off_q, lookback); for
    equal figures the fewer look-back windows (choose_consecutive keeps the first of equals).

    At most 4 confirmations (0.4 s at the 0.1 s stride, of a 1 s delay budget). With 6 and 8 too,
    two of the four recipes last tried (train.py: node_keep 3, and a P coda on branch `p-coda`)
    chose 8, each for one more quake of the 746 on the calibration recordings than its best rule of
    at most 4, at 0.31 and 0.48 s more median delay; the committed model's choice (3) is the same either way."""
    for lb in lookbacks:
        for n in confirm_ns:
            for mr in max_runs:
                for on_q in on_qs:
                    for hyst in hysteresis:
                        if not (mr and mr < n):
                            yield n, mr, on_q, max(-128, on_q - hyst), lb


def choose_consecutive(runs: list[dict], target_fph: float, rules) -> dict:
    """The node's rule among `rules` that calibration picks on traced `runs` (`choose`), with every rule's row."""
    table, items = [], []
    for n, mr, on_q, off_q, lb in rules:
        m = rule_metrics(runs, lambda r: simulate(r["events"], on_q, off_q, n, r["min_pga_gal"], mr, lookback=lb))
        row = {"on_q": on_q, "off_q": off_q, "confirm_n": n, "max_runs": mr, "lookback": lb, "detected": round(m["detected"], 4),
               "detected_real": round(m["detected_real"], 4) if m["detected_real"] is not None else None,
               "false_per_hour": round(m["false_per_hour"], 3), "median_delay_s": round(m["median_delay_s"], 2)}
        table.append(row)
        items.append((m, on_q, row))
    return {"chosen": choose(items, target_fph)[2] if items else None, "table": table}


def calibrate_decision(model_dir: Path, hours: float = 1.0, quake_hours: float = 1.0, target_fph: float = TARGET_FPH,
                       rules=None, real_events=(), workers: int = 2, progress=None, sensor: str = SENSORS[0],
                       max_lookback: int = 0, catalog: str = "") -> dict:
    """Pick (on_q, off_q, confirm_n, max_runs) on calibration recordings through the node pipeline
    of a node with `sensor` (the real records are ADXL355 recordings: pass real_events for that one only).

    Among `rules` (default: every one of `consecutive_rules()` with 0 to `max_lookback` look-back
    windows), with at most target_fph false detections per hour over the activity scenarios: the most
    visible records of the real val events given in `real_events` detected, then the shortest median
    delay after P among the rules within one standard error of the most synthetic quakes (`choose`).
    """
    if not 0 <= max_lookback <= MAX_LOOKBACK:
        raise ValueError("max_lookback %d: the traces hold 0 to %d look-back windows" % (max_lookback, MAX_LOOKBACK))
    model_dir = Path(model_dir).resolve()
    runs = trace_runs(calibration_jobs(model_dir, hours, quake_hours, sensor), real_events, model_dir, workers, progress, catalog=catalog)
    chosen = choose_consecutive(runs, target_fph, consecutive_rules(lookbacks=range(max_lookback + 1)) if rules is None else rules)
    counts = rule_metrics(runs, lambda r: [])
    return {"chosen": chosen["chosen"], "target_false_per_hour": target_fph, "hours": round(sum(r["duration_s"] for r in runs) / 3600, 2),
            "quakes": counts["quakes"], "real_events": list(real_events), "real_quakes": counts["real_quakes"], "seed": CAL_SEED,
            "sensor": sensor, "table": chosen["table"]}


def _scenarios():
    from .dataset import SCENARIOS

    return tuple(SCENARIOS)


# --- scoring ------------------------------------------------------------------------------------


def match(times: list[float], quakes: list[dict], activities: list[dict]) -> dict:
    """Detections (or triggers) against labelled quakes: the delay after P per quake (None: missed;
    the first time in [P - BEFORE_P_S, end of shaking]) and the others as false, with the activity under way."""
    times = sorted(times)
    hits, false = [], []
    used = set()
    for q in quakes:
        inside = [t for t in times if q["p_s"] - BEFORE_P_S <= t <= q["end_s"]]
        used.update(inside)
        hits.append(inside[0] - q["p_s"] if inside else None)
    for t in times:
        if t in used:
            continue
        acts = [a["kind"] for a in activities if a["t_s"] - 2.0 <= t <= a["t_s"] + a["dur_s"] + 5.0]
        false.append({"t": t, "activity": acts[-1] if acts else "ambient"})
    return {"delays": hits, "false": false}


def score_continuous(run: dict) -> dict:
    """Per method: hits and delays per quake, false detections with the activity under way."""
    return {m: match(run["detections"][m], run["quakes"], run["activities"]) for m in METHODS}


def score_real(run: dict) -> dict:
    out = {}
    for m in METHODS:
        dets = sorted(run["detections"][m])
        inside = [t for t in dets if run["positive"] and run["p_s"] - BEFORE_P_S <= t <= run["p_s"] + REAL_AFTER_P_S]
        # After a real event the record holds its coda and, minutes after a large one, aftershocks
        # the catalogue misses: not quiet noise, so neither counted as false nor as noise time.
        after = [t for t in dets if run["positive"] and t > run["p_s"] + REAL_AFTER_P_S]
        false = [t for t in dets if t not in inside and t not in after]
        out[m] = {"delay": (inside[0] - run["p_s"]) if inside else None, "false": false, "after_event": after}
    return out


def real_summary(rows: list[dict]) -> dict:
    """Per method, over real records (real_rows), detection rates of the visible and of the weak or
    visible ones, median delays after P (all visible; P itself clearly visible), false detections
    per day of noise; "delays": each visible record's delay (None: missed)."""
    hours = sum(real_noise_s(r) for r in rows) / 3600
    false = {m: sum(len(r[m]["false"]) for r in rows) for m in METHODS}
    delays = {m: [r[m]["delay"] for r in rows if r["visible"]] for m in METHODS}
    p_delays = {m: [r[m]["delay"] for r in rows if r["visible"] and (r.get("p_snr") or 0.0) >= VISIBLE_SNR] for m in METHODS}
    return {
        "real_visible_records": sum(1 for r in rows if r["visible"]),
        "real_visible_detection_rate": {m: _rate(delays[m]) for m in METHODS},
        "real_weak_or_visible_detection_rate": {m: _rate([r[m]["delay"] for r in rows if r["positive"]]) for m in METHODS},
        "median_delay_after_p_s_real": {m: _median(delays[m]) for m in METHODS},
        "real_p_visible_records": len(p_delays["model"]),
        "median_delay_after_p_s_real_p_visible": {m: _median(p_delays[m]) for m in METHODS},
        "real_noise_hours": round(hours, 2),
        "real_false_detections": false,
        "false_per_day_real": {m: round(24 * false[m] / hours, 2) if hours else None for m in METHODS},
        "delays": delays,
    }


def real_rows(real_runs: list[dict]) -> list[dict]:
    """One row per real record (_real_job's runs): what it is, and per method its delay after P, false
    and later detections."""
    keep = ("name", "event_id", "device", "label", "positive", "visible", "mag", "epi_km", "p_s", "p_snr", "duration_s")
    return [{k: r[k] for k in keep} | score_real(r) for r in real_runs]


def real_noise_s(run: dict) -> float:
    """Seconds of a real record that count as noise: all of it, or what precedes P - 2 s."""
    if not run["positive"]:
        return run["duration_s"]
    return max(0.0, min(run["duration_s"], run["p_s"] - BEFORE_P_S))


def _rate(x: list) -> float | None:
    return round(sum(v is not None for v in x) / len(x), 4) if x else None


def _median(x: list) -> float | None:
    v = [d for d in x if d is not None]
    return round(float(np.median(v)), 2) if v else None


# --- windows ------------------------------------------------------------------------------------


def window_metrics(ds, model: bytes, on_q: int) -> dict:
    from . import tflm

    m = np.asarray(ds.split) == "test"
    x, y, kind = np.asarray(ds.x)[m], np.asarray(ds.y)[m], np.asarray(ds.kind)[m]
    q = tflm.run_tflm(model, x).astype(int)
    thr = np.arange(-128, 129)
    pos, neg = max(1, int((y == 1).sum())), max(1, int((y == 0).sum()))
    tpr = np.array([((q >= t) & (y == 1)).sum() / pos for t in thr])
    fpr = np.array([((q >= t) & (y == 0)).sum() / neg for t in thr])
    prec = np.array([((q >= t) & (y == 1)).sum() / max(1, (q >= t).sum()) for t in thr])
    order = np.argsort(fpr)
    auc = float(np.trapezoid(tpr[order], fpr[order]))
    ap = float(np.sum((tpr[:-1] - tpr[1:]) * prec[:-1]))
    by_kind = {}
    for k in sorted(set(kind.tolist())):
        km = kind == k
        by_kind[k] = {"n": int(km.sum()), "label": int(y[km][0]), "above_threshold": round(float((q[km] >= on_q).mean()), 4)}
    # positives by time after P (how early the model is sure)
    tap = np.asarray(ds.meta["t_after_p_s"])[m] if "t_after_p_s" in (ds.meta.dtype.names or ()) else None
    by_tap = {}
    if tap is not None:
        for lo, hi in ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 30.0)):
            km = (y == 1) & (tap >= lo) & (tap < hi)
            if km.any():
                by_tap["%g-%g s" % (lo, hi)] = {"n": int(km.sum()), "above_threshold": round(float((q[km] >= on_q).mean()), 4)}
    return {"n": int(len(y)), "positives": int((y == 1).sum()), "roc_auc": round(auc, 4), "average_precision": round(ap, 4),
            "tpr_at_threshold": round(float(((q >= on_q) & (y == 1)).sum() / pos), 4),
            "fpr_at_threshold": round(float(((q >= on_q) & (y == 0)).sum() / neg), 4),
            "curves": {"thr": thr.tolist(), "tpr": tpr.tolist(), "fpr": fpr.tolist(), "precision": prec.tolist()},
            "by_kind": by_kind, "positives_by_time_after_p": by_tap}


# --- the whole evaluation -----------------------------------------------------------------------


# Hours per scenario of held-out recordings, and of quake-rich ones. At 3 h one scenario's false
# rate came with an interval spanning 0.36-3.4 per hour and the synthetic detection rate with +-2.5%.
EVAL_HOURS = 6.0
# The quiet site without quakes: four days are the least that can show <= 1 false detection per
# node-day at 95% (none in 3.7 days; a day could not show it even with none). In 12-h parts: a
# day-long one peaked at 4.3 GB in its worker (the replay resamples it to the sensor's rate whole).
QUIET_HOURS = 96.0
QUIET_PARTS = 8


def evaluation_jobs(model_dir: Path, hours: float, quake_hours: float, quiet_hours: float = QUIET_HOURS,
                    sensors: tuple = SENSORS) -> list[tuple]:
    """The held-out recordings, as `_continuous_job` / `_trace_job` arguments, longest first (the
    day-long quiet parts would otherwise run last): every scenario and the quake-rich ones as read
    by each of `sensors`, and the quiet days by the first."""
    jobs = [j for sensor in sensors for j in _recordings(EVAL_SEED, hours, quake_hours, model_dir, sensor)]
    if quiet_hours > 0:
        jobs += [("quiet", EVAL_SEED + 200 + i, quiet_hours / QUIET_PARTS, 0.0, model_dir, "quiet", sensors[0]) for i in range(QUIET_PARTS)]
    return sorted(jobs, key=lambda j: -j[2])


def evaluate(ds, model_dir: Path, out_dir: Path, hours: float | None = None, quake_hours: float | None = None,
             quiet_hours: float | None = None, workers: int = 2, real: bool = True, progress=None) -> dict:
    """Run everything; write out_dir/report.md, figures and results.json; put metrics into model.json."""
    from . import real as realmod

    t0 = time.time()
    say = progress or (lambda stage, done, total: None)
    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = json.loads((model_dir / "model.json").read_text())
    model = (model_dir / "model.tflite").read_bytes()
    small = bool(getattr(ds, "config", {}).get("small", False)) if isinstance(getattr(ds, "config", None), dict) else False
    hours = hours if hours is not None else (0.1 if small else EVAL_HOURS)
    quake_hours = quake_hours if quake_hours is not None else (0.1 if small else EVAL_HOURS)
    quiet_hours = quiet_hours if quiet_hours is not None else (0.2 if small else QUIET_HOURS)

    say("test windows", 0, 1)
    win = window_metrics(ds, model, meta["decision"]["on_q"])
    say("test windows", 1, 1)

    jobs = evaluation_jobs(model_dir, hours, quake_hours, quiet_hours)
    real_jobs = []
    seed, catalog = data_seed_and_catalog(ds)
    if real:
        try:
            test_events = realmod.split_events(seed, catalog=catalog)["test"]
            real_jobs = [(ev, model_dir, catalog, realmod.OPENEEW_ROOT, "adxl355") for ev in test_events]  # OpenEEW's sensor
        except OSError:
            real_jobs = []
    runs: list[dict] = []
    real_runs: list[dict] = []
    total = len(jobs) + len(real_jobs)
    done = 0
    say("recordings through the node", 0, total)
    with ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn")) as ex:
        futs = [ex.submit(_continuous_job, j) for j in jobs] + [ex.submit(_real_job, j) for j in real_jobs]
        for f in futs:
            r = f.result()
            if isinstance(r, list):
                real_runs.extend(r)
            else:
                runs.append(r)
            done += 1
            say("recordings through the node", done, total)

    res = summarise(win, runs, real_runs, meta)
    res["seconds"] = round(time.time() - t0, 1)
    res["settings"] = {"hours_per_scenario": hours, "quake_rich_hours": quake_hours, "quiet_hours": quiet_hours, "eval_seed": EVAL_SEED,
                       "data_fingerprint": getattr(ds, "fingerprint", None), "model_sha": _sha(model),
                       "records": catalog}
    # strict JSON (MicroPython's and most readers refuse NaN): a figure a record lacks is null
    (out_dir / "results.json").write_text(json.dumps(plain(res), indent=1, allow_nan=False))
    figures(res, out_dir)
    (out_dir / "report.md").write_text(report(res, meta))
    meta["metrics"] = plain(res["summary"])
    (model_dir / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    return res


def _sha(b: bytes) -> str:
    import hashlib

    return hashlib.sha256(b).hexdigest()


def plain(v):
    """JSON-ready: numpy scalars as Python numbers, tuples as lists, a figure a record lacks (NaN,
    an infinite delay) as null."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v


def sensor_figures(runs: list[dict]) -> dict:
    """One sensor's row of the by-sensor table, over its activity and quake-rich recordings: per
    method, the share of clearly visible quakes detected, the false detections per hour of activity
    (quiet site left out, as in the headline) and the median delay after P."""
    delays: dict[str, list] = {m: [] for m in METHODS}
    false = {m: 0 for m in METHODS}
    act_s = 0.0
    for r in runs:
        if r["group"] == "quiet":
            continue  # the quiet days run for the headline sensor only
        sc = score_continuous(r)
        for i, q in enumerate(r["quakes"]):
            if q.get("snr", math.inf) >= VISIBLE_SNR:
                for m in METHODS:
                    delays[m].append(sc[m]["delays"][i])
        if r["group"] == "activity" and r["scenario"] != "quiet":
            act_s += r["duration_s"]
            for m in METHODS:
                false[m] += len(sc[m]["false"])
    return {"activity_hours": round(act_s / 3600, 2), "visible_quakes": len(delays["model"]),
            "detection_rate": {m: _rate(delays[m]) for m in METHODS},
            "false_per_hour_activity": {m: round(3600 * false[m] / act_s, 3) if act_s else None for m in METHODS},
            "median_delay_after_p_s": {m: _median(delays[m]) for m in METHODS}}


def delay_by_snr(quakes: list[dict], key: str = "snr", bins: tuple = SNR_BINS, name: str = "SNR") -> dict:
    """Per band of the quakes' (summarise's) `key`: how many the node's trigger and the model catch,
    their median delays after P, and the median time from each quake's trigger to the model's confirmation."""
    out = {}
    for lo, hi in zip(bins[:-1], bins[1:]):
        band = [q for q in quakes if q.get(key) is not None and lo <= q[key] < hi]
        both = [q for q in band if q["trigger"] is not None and q["model"] is not None]
        if band:
            out["%s %g-%g" % (name, lo, hi) if hi < math.inf else "%s >= %g" % (name, lo)] = {
                "n": len(band), "trigger_rate": _rate([q["trigger"] for q in band]), "model_rate": _rate([q["model"] for q in band]),
                "trigger_median_s": _median([q["trigger"] for q in band]), "model_median_s": _median([q["model"] for q in band]),
                "confirmation_median_s": _median([q["model"] - q["trigger"] for q in both])}
    return out


def summarise(win: dict, runs: list[dict], real_runs: list[dict], meta: dict) -> dict:
    """The evaluation's results from the scored recordings; the headline and targets are the first
    sensor's (SENSORS[0]; a run without a "sensor" is one of its), `by_sensor` compares them all."""
    by_sensor = {sn: sensor_figures([r for r in runs if r.get("sensor", SENSORS[0]) == sn]) for sn in SENSORS
                 if any(r.get("sensor", SENSORS[0]) == sn for r in runs)}
    runs = [r for r in runs if r.get("sensor", SENSORS[0]) == SENSORS[0]]
    quakes = []  # (mag, dist, {method: delay})
    false_by_scenario: dict[str, dict] = {}
    false_by_activity: dict[str, dict] = {}
    hours_by_scenario: dict[str, float] = {}
    triggers_per_hour: dict[str, float] = {}
    quiet_s, quiet_false = 0.0, {m: 0 for m in METHODS}  # the quiet site: its activity hours plus the quiet days
    for r in runs:
        sc = score_continuous(r)
        if r["scenario"] == "quiet" and r["group"] in ("activity", "quiet"):
            quiet_s += r["duration_s"]
            for m in METHODS:
                quiet_false[m] += len(sc[m]["false"])
        trig = match(r["trigger_times"], r["quakes"], [])["delays"]  # the node's STA/LTA onset: where the model starts
        for i, q in enumerate(r["quakes"]):
            quakes.append({"mag": q["mag"], "dist_km": q["dist_km"], "pga_gal": q["pga_gal"], "scenario": r["scenario"],
                           "snr": q.get("snr", math.inf), "p_snr": q.get("p_snr"), "trigger": trig[i],
                           **{m: sc[m]["delays"][i] for m in METHODS}})
        if r["group"] != "activity":
            continue
        h = r["duration_s"] / 3600
        hours_by_scenario[r["scenario"]] = hours_by_scenario.get(r["scenario"], 0.0) + h
        triggers_per_hour[r["scenario"]] = round(len(r["trigger_times"]) / h, 2)
        for m in METHODS:
            d = false_by_scenario.setdefault(r["scenario"], {mm: 0 for mm in METHODS})
            d[m] += len(sc[m]["false"])
            for f in sc[m]["false"]:
                a = false_by_activity.setdefault(f["activity"], {mm: 0 for mm in METHODS})
                a[m] += 1
    fph = {s: {m: round(v[m] / hours_by_scenario[s], 3) for m in METHODS} for s, v in false_by_scenario.items()}
    active = [s for s in fph if s not in ("quiet",)]
    act_hours = sum(hours_by_scenario[s] for s in active)
    fph_active = {m: round(sum(false_by_scenario[s][m] for s in active) / act_hours, 3) if act_hours else None for m in METHODS}
    all_hours = sum(hours_by_scenario.values())
    fph_all = {m: round(sum(v[m] for v in false_by_scenario.values()) / all_hours, 3) if all_hours else None for m in METHODS}

    real = real_rows(real_runs)
    rs = real_summary(real)
    real_delays = rs.pop("delays")

    everything = quakes
    quakes = [q for q in everything if q["snr"] >= VISIBLE_SNR]  # the rates and delays below: clearly visible ones
    p_visible = [q for q in quakes if (q["p_snr"] or 0.0) >= VISIBLE_SNR]

    def det_rate(m, sel=lambda q: True):
        v = [q[m] for q in quakes if sel(q)]
        return _rate(v)

    def binned(key, bins, name):
        """Detection rates per bin of q[key] (lo <= v < hi), for the bins holding quakes."""
        out = {}
        for lo, hi in zip(bins[:-1], bins[1:]):
            sel = lambda q, lo=lo, hi=hi: lo <= q[key] < hi  # noqa: E731
            n = sum(1 for q in quakes if sel(q))
            if n:
                out[name % (lo, hi)] = {"n": n, **{m: det_rate(m, sel) for m in METHODS}}
        return out

    by_mag = binned("mag", MAG_BINS, "M%g-%g")
    by_dist = binned("dist_km", DIST_BINS, "%g-%g km")

    delays_all = {m: [q[m] for q in quakes] + real_delays[m] for m in METHODS}
    summary = {
        "synthetic_quakes": len(quakes),
        "synthetic_detection_rate": {m: det_rate(m) for m in METHODS},
        "synthetic_quakes_any_snr": len(everything),
        "synthetic_detection_rate_any_snr": {m: _rate([q[m] for q in everything]) for m in METHODS},
        "real_visible_records": rs["real_visible_records"],
        "real_visible_detection_rate": rs["real_visible_detection_rate"],
        "real_weak_or_visible_detection_rate": rs["real_weak_or_visible_detection_rate"],
        "detection_rate_all_visible": {m: _rate(delays_all[m]) for m in METHODS},
        "median_delay_after_p_s": {m: _median(delays_all[m]) for m in METHODS},
        "median_delay_after_p_s_synthetic": {m: _median([q[m] for q in quakes]) for m in METHODS},
        "median_delay_after_p_s_real": rs["median_delay_after_p_s_real"],
        # of those, the ones whose P wave is clearly visible in its first second (P_VISIBLE_S)
        "synthetic_quakes_p_visible": len(p_visible),
        "synthetic_detection_rate_p_visible": {m: _rate([q[m] for q in p_visible]) for m in METHODS},
        "median_delay_after_p_s_synthetic_p_visible": {m: _median([q[m] for q in p_visible]) for m in METHODS},
        "real_p_visible_records": rs["real_p_visible_records"],
        "median_delay_after_p_s_real_p_visible": rs["median_delay_after_p_s_real_p_visible"],
        # the node's own trigger on the same quakes: the model runs from it, so it bounds the model's
        # rate and delay (a quake during an open trigger of an activity shows here as no trigger)
        "node_trigger_rate_synthetic": _rate([q["trigger"] for q in quakes]),
        "node_trigger_median_delay_s_synthetic": _median([q["trigger"] for q in quakes]),
        "false_per_hour_by_scenario": fph,
        "false_per_hour_activity_scenarios": fph_active,
        "false_per_hour_all_scenarios": fph_all,
        "quiet_synthetic_hours": round(quiet_s / 3600, 2),
        "quiet_synthetic_false_detections": quiet_false,
        "false_per_day_quiet_synthetic": {m: round(24 * 3600 * quiet_false[m] / quiet_s, 2) for m in METHODS} if quiet_s else None,
        "real_noise_hours": rs["real_noise_hours"],
        "real_false_detections": rs["real_false_detections"],
        "false_per_day_real": rs["false_per_day_real"],
        "window_roc_auc": win["roc_auc"],
        "window_average_precision": win["average_precision"],
        "window_tpr_at_threshold": win["tpr_at_threshold"],
        "window_fpr_at_threshold": win["fpr_at_threshold"],
        "by_sensor": by_sensor,
        "budgets": {"model_bytes": meta["model_bytes"], "arena_measured_bytes": meta.get("arena_measured_bytes"),
                    "arena_bytes": meta["arena_bytes"], "macs": meta["macs"]},
    }
    out = {
        "summary": summary,
        "windows": win,
        "quakes": quakes,
        "quakes_any_snr": everything,
        "by_magnitude": by_mag,
        "delay_by_snr": delay_by_snr(quakes),
        "delay_by_p_snr": delay_by_snr(quakes, "p_snr", (0.0, VISIBLE_SNR, math.inf), "P SNR"),
        "by_distance": by_dist,
        "false_by_scenario": false_by_scenario,
        "false_by_activity": false_by_activity,
        "hours_by_scenario": hours_by_scenario,
        "triggers_per_hour": triggers_per_hour,
        "real": real,
    }
    summary["targets"] = targets(out)
    return out


# --- the targets, with 95% intervals ----------------------------------------------------

CONFIDENCE = 0.95


def rate_interval(k: int, n: int) -> list[float] | None:
    """Exact (Clopper-Pearson) interval of a detection rate, k of n."""
    from scipy.stats import binomtest

    if not n:
        return None
    ci = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def count_interval(k: int, exposure: float) -> list[float] | None:
    """Exact (Garwood) interval of a Poisson rate: k events in `exposure` (hours, days, ...)."""
    from scipy.stats import chi2

    if exposure <= 0:
        return None
    a = 1.0 - CONFIDENCE
    lo = chi2.ppf(a / 2, 2 * k) / 2 if k else 0.0
    hi = chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return [round(float(lo) / exposure, 4), round(float(hi) / exposure, 4)]


def median_interval(values: list[float]) -> list[float] | None:
    """Distribution-free interval of a median: the order statistics whose ranks the binomial(n, 1/2) brackets."""
    from scipy.stats import binom

    v = sorted(values)
    n = len(v)
    if n < 6:  # fewer samples cannot bracket the median at 95%
        return None
    j = int(binom.ppf((1 - CONFIDENCE) / 2, n, 0.5))  # P(B < j) <= 2.5%: v[j - 1] is the lower bound (1-based)
    return [round(float(v[max(j - 1, 0)]), 3), round(float(v[min(n - j, n - 1)]), 3)]


def _verdict(estimate, interval, target: float, at_most: bool) -> str:
    if estimate is None:
        return "no data"
    ok = (lambda v: v <= target) if at_most else (lambda v: v >= target)
    if not ok(estimate):
        return "short"
    if interval is None or not ok(interval[1] if at_most else interval[0]):
        return "met by the estimate, not shown at 95%"
    return "met"


def targets(res: dict) -> list[dict]:
    """The issue's quality targets for the model: estimate, 95% interval, verdict; from `summarise`'s result.

    A target is "met" only if the whole interval meets it: 9 false detections in 18 h (0.5/h) is
    consistent with 0.23-0.95/h, 2 in a day with 0.2-6.
    """
    s = res["summary"]
    rows = []

    def row(name, est, interval, target, at_most, unit, n=None):
        rows.append({"target": name, "estimate": est, "interval": interval, "n": n, "limit": target, "at_most": at_most,
                     "unit": unit, "verdict": _verdict(est, interval, target, at_most)})

    syn = [q["model"] for q in res["quakes"]]
    row("clearly visible synthetic quakes detected", s["synthetic_detection_rate"]["model"],
        rate_interval(sum(d is not None for d in syn), len(syn)), 0.95, False, "rate", len(syn))
    real = [r["model"]["delay"] for r in res["real"] if r["visible"]]
    row("clearly visible real OpenEEW test records detected", s["real_visible_detection_rate"]["model"],
        rate_interval(sum(d is not None for d in real), len(real)), 0.95, False, "rate", len(real))
    row("false detections, real OpenEEW noise (%.1f h)" % s["real_noise_hours"], (s["false_per_day_real"] or {}).get("model"),
        count_interval(s["real_false_detections"]["model"], s["real_noise_hours"] / 24), 1.0, True, "per day")
    quiet_h = s.get("quiet_synthetic_hours") or 0.0
    row("false detections, quiet site (synthetic, %.0f h)" % quiet_h, (s["false_per_day_quiet_synthetic"] or {}).get("model"),
        count_interval(s["quiet_synthetic_false_detections"]["model"], quiet_h / 24), 1.0, True, "per day")
    hours, false = res["hours_by_scenario"], res["false_by_scenario"]
    active = [sc for sc in false if sc != "quiet"]
    act_h = sum(hours[sc] for sc in active)
    row("false detections, activity and machinery (%.0f h)" % act_h, s["false_per_hour_activity_scenarios"]["model"],
        count_interval(sum(false[sc]["model"] for sc in active), act_h), 1.0, True, "per h")
    if active:
        fph = s["false_per_hour_by_scenario"]
        worst = max(active, key=lambda sc: (fph[sc]["model"], sc))
        row("false detections, worst activity scenario (%s, %.0f h)" % (worst, hours[worst]),
            fph[worst]["model"], count_interval(false[worst]["model"], hours[worst]), 1.0, True, "per h")
    # apart: pooled, the synthetic quakes (about 20 per real record) would hide the real records' delay
    for name, key, found in (("synthetic quakes", "median_delay_after_p_s_synthetic", syn), ("real OpenEEW records", "median_delay_after_p_s_real", real)):
        delays = [d for d in found if d is not None]
        row("median delay after P, detected %s" % name, s[key]["model"], median_interval(delays), 1.0, True, "s", len(delays))
    # better than OpenEEW's STA/LTA on both: detection rate of every clearly visible quake, false rate under activity
    ours, theirs = s["detection_rate_all_visible"], s["false_per_hour_activity_scenarios"]
    if ours["model"] is not None and theirs["model"] is not None:
        better = ours["model"] > ours["openeew"] and theirs["model"] < theirs["openeew"]
        rows.append({"target": "better than the OpenEEW STA/LTA on detection rate and false detections",
                     "estimate": "%s vs %s detected; %s vs %s false/h" % (_fmt(ours["model"], True), _fmt(ours["openeew"], True),
                                                                          _fmt(theirs["model"]), _fmt(theirs["openeew"])),
                     "interval": None, "n": None, "limit": None, "at_most": None, "unit": "", "verdict": "met" if better else "short"})
    return rows


# --- figures and report -------------------------------------------------------------------------


def figures(res: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"model": "C0", "rule": "C2", "openeew": "C3", "rsudp": "C1"}
    names = []
    c = res["windows"]["curves"]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.2))
    ax[0].plot(c["fpr"], c["tpr"], color="C0")
    ax[0].set_xscale("symlog", linthresh=1e-3)
    ax[0].set(xlabel="false positive rate (test windows)", ylabel="true positive rate", title="ROC (AUC %.4f)" % res["windows"]["roc_auc"])
    ax[0].plot([res["windows"]["fpr_at_threshold"]], [res["windows"]["tpr_at_threshold"]], "o", color="k", label="decision threshold")
    ax[0].legend(loc="lower right")
    ax[1].plot(c["tpr"], c["precision"], color="C0")
    ax[1].set(xlabel="recall", ylabel="precision", title="precision-recall (AP %.4f)" % res["windows"]["average_precision"])
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "roc_pr.png", dpi=110)
    plt.close(fig)
    names.append("roc_pr.png")

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    for a, table, title in ((ax[0], res["by_magnitude"], "by magnitude"), (ax[1], res["by_distance"], "by hypocentral distance")):
        keys = list(table)
        xs = np.arange(len(keys))
        w = 0.2
        for j, m in enumerate(METHODS):
            a.bar(xs + (j - 1.5) * w, [table[k][m] or 0 for k in keys], w, label=LABELS[m], color=colors[m])
        a.set_xticks(xs, ["%s\n(n=%d)" % (k, table[k]["n"]) for k in keys])
        a.set(ylim=(0, 1.05), ylabel="detected fraction", title="synthetic quakes " + title)
        a.axhline(0.95, color="k", lw=0.8, ls="--")
        a.grid(alpha=0.3, axis="y")
    ax[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "detection_by_mag_dist.png", dpi=110)
    plt.close(fig)
    names.append("detection_by_mag_dist.png")

    fph = res["summary"]["false_per_hour_by_scenario"]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    keys = list(fph)
    xs = np.arange(len(keys))
    for j, m in enumerate(METHODS):
        ax.bar(xs + (j - 1.5) * 0.2, [max(fph[k][m], 1e-3) for k in keys], 0.2, label=LABELS[m], color=colors[m])
    ax.set_yscale("log")
    ax.set_xticks(xs, keys)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set(ylabel="false detections per hour (0 drawn at 1e-3)", title="false detections per hour by scenario (continuous synthetic recordings)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out_dir / "false_per_hour.png", dpi=110)
    plt.close(fig)
    names.append("false_per_hour.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for m in METHODS:
        d = sorted(q[m] for q in res["quakes"] if q[m] is not None)
        if d:
            ax.plot(d, np.arange(1, len(d) + 1) / len(res["quakes"]), label=LABELS[m], color=colors[m])
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set(xlabel="detection delay after P (s)", ylabel="fraction of quakes detected by then", xlim=(-2, 20),
           title="delay after P (synthetic quakes)")
    if ax.get_legend_handles_labels()[0]:  # a short run may detect none
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "delay.png", dpi=110)
    plt.close(fig)
    names.append("delay.png")
    return names


def _fmt(v, pct=False):
    if v is None:
        return "-"
    if pct:
        return "%.1f%%" % (100 * v)
    return ("%.3g" % v) if isinstance(v, float) else str(v)


def _num(v, fmt: str) -> str:
    """A figure a catalogue record may lack (NaN): `-`."""
    return "-" if v is None or not math.isfinite(v) else fmt % v


def report(res: dict, meta: dict) -> str:
    s = res["summary"]
    st = res["settings"]
    L = []
    L.append("# seismote detector: held-out evaluation\n")
    L.append("Model `%s` (sha256 %s...), data set fingerprint `%s`, evaluated in %.0f s.\n" % (
        meta["name"], st["model_sha"][:12], (st["data_fingerprint"] or "?")[:16], res["seconds"]))
    L.append("## Budgets (measured)\n")
    L.append("| model | TFLM arena (host, measured) | arena configured | MACs / inference | ops |")
    L.append("| --- | --- | --- | --- | --- |")
    L.append("| %d B | %s B | %d B | %d | %s |\n" % (meta["model_bytes"], meta.get("arena_measured_bytes"), meta["arena_bytes"], meta["macs"],
                                                  ", ".join(sorted(set(meta["ops"])))))
    d = meta["decision"]
    L.append("Decision: %d consecutive scores >= %.3f (int8 %d), reset below %.3f (int8 %d), one inference every %d samples "
             "(%.2f s) while the STA/LTA trigger is on, and PGA >= detector.min_pga_gal.\n" % (
                 d["confirm_n"], d["threshold"], d["on_q"], d["threshold_off"], d["off_q"], d["stride_samples"], d["stride_s"]))
    L.append("## Headline\n")
    L.append("| | " + " | ".join(LABELS[m] for m in METHODS) + " |")
    L.append("| --- |" + " --- |" * len(METHODS))
    rows = [
        ("synthetic quakes, clearly visible (SNR >= %g, n=%d)" % (VISIBLE_SNR, s["synthetic_quakes"]), s["synthetic_detection_rate"], True),
        ("synthetic quakes, any SNR (n=%d)" % s["synthetic_quakes_any_snr"], s["synthetic_detection_rate_any_snr"], True),
        ("real OpenEEW test records, visible (n=%d)" % s["real_visible_records"], s["real_visible_detection_rate"], True),
        ("all clearly visible quakes", s["detection_rate_all_visible"], True),
        ("median delay after P (s), all detected", s["median_delay_after_p_s"], False),
        ("false / hour, activity scenarios", s["false_per_hour_activity_scenarios"], False),
        ("false / day, quiet site (synthetic, %.0f h)" % s.get("quiet_synthetic_hours", 0), s["false_per_day_quiet_synthetic"] or {}, False),
        ("false / day, real OpenEEW noise (%.1f h)" % s["real_noise_hours"], s["false_per_day_real"], False),
    ]
    for name, vals, pct in rows:
        L.append("| %s | %s |" % (name, " | ".join(_fmt(vals.get(m), pct) for m in METHODS)))
    L.append("")
    if s.get("targets"):
        L.append("## Targets\n")
        L.append("The model against the detector's targets, with %d%% intervals (exact binomial for rates, exact Poisson for "
                 "false-detection rates, order statistics for the median): a target is met only if the whole interval meets it.\n"
                 % round(100 * CONFIDENCE))
        L.append("| target | limit | estimate | %d%% interval | verdict |" % round(100 * CONFIDENCE))
        L.append("| --- | --- | --- | --- | --- |")
        for t in s["targets"]:
            pct = t["unit"] == "rate"
            lim = "" if t["limit"] is None else ("<= " if t["at_most"] else ">= ") + _fmt(t["limit"], pct) + ("" if pct else " " + t["unit"])
            est = t["estimate"] if isinstance(t["estimate"], str) else _fmt(t["estimate"], pct)
            iv = "" if not t["interval"] else "%s - %s" % (_fmt(t["interval"][0], pct), _fmt(t["interval"][1], pct))
            L.append("| %s%s | %s | %s | %s | %s |" % (t["target"], "" if t["n"] is None else " (n=%d)" % t["n"], lim, est, iv, t["verdict"]))
        L.append("")
    L.append("## Test windows\n")
    w = res["windows"]
    L.append("%d test windows (%d earthquake). ROC AUC %.4f, average precision %.4f; at the decision threshold "
             "TPR %.3f, FPR %.4f (one window; the node needs %d in a row).\n" % (
                 w["n"], w["positives"], w["roc_auc"], w["average_precision"], w["tpr_at_threshold"], w["fpr_at_threshold"], d["confirm_n"]))
    L.append("![ROC and PR](roc_pr.png)\n")
    L.append("| kind | n | label | fraction >= threshold |")
    L.append("| --- | --- | --- | --- |")
    for k, v in w["by_kind"].items():
        L.append("| %s | %d | %d | %.3f |" % (k, v["n"], v["label"], v["above_threshold"]))
    if w["positives_by_time_after_p"]:
        L.append("\nEarthquake windows by how long after P they end:\n")
        L.append("| window end after P | n | fraction >= threshold |")
        L.append("| --- | --- | --- |")
        for k, v in w["positives_by_time_after_p"].items():
            L.append("| %s | %d | %.3f |" % (k, v["n"], v["above_threshold"]))
    L.append("\n## Detection rate by magnitude and distance (clearly visible synthetic quakes in continuous recordings)\n")
    L.append("![detection](detection_by_mag_dist.png)\n")
    for title, table in (("magnitude", res["by_magnitude"]), ("distance", res["by_distance"])):
        L.append("| %s | n | %s |" % (title, " | ".join(LABELS[m] for m in METHODS)))
        L.append("| --- | --- |" + " --- |" * len(METHODS))
        for k, v in table.items():
            L.append("| %s | %d | %s |" % (k, v["n"], " | ".join(_fmt(v[m], True) for m in METHODS)))
        L.append("")
    L.append("## False detections per hour by noise type\n")
    L.append("Continuous synthetic recordings, %g h per scenario (STA/LTA triggers of the node per hour in brackets).\n" % st["hours_per_scenario"])
    L.append("![false per hour](false_per_hour.png)\n")
    L.append("| scenario | %s | node triggers / h |" % " | ".join(LABELS[m] for m in METHODS))
    L.append("| --- |" + " --- |" * len(METHODS) + " --- |")
    for k, v in s["false_per_hour_by_scenario"].items():
        L.append("| %s | %s | %s |" % (k, " | ".join(_fmt(v[m]) for m in METHODS), _fmt(res["triggers_per_hour"].get(k))))
    L.append("\nFalse detections by the activity under way (counts):\n")
    L.append("| activity | %s |" % " | ".join(LABELS[m] for m in METHODS))
    L.append("| --- |" + " --- |" * len(METHODS))
    for k, v in sorted(res["false_by_activity"].items()):
        L.append("| %s | %s |" % (k, " | ".join(str(v[m]) for m in METHODS)))
    L.append("\n## Delay after P\n")
    L.append("![delay](delay.png)\n")
    L.append("| | %s |" % " | ".join(LABELS[m] for m in METHODS))
    L.append("| --- |" + " --- |" * len(METHODS))
    for name, key in (("synthetic", "median_delay_after_p_s_synthetic"), ("real OpenEEW visible", "median_delay_after_p_s_real"),
                      ("all", "median_delay_after_p_s"),
                      ("synthetic, P clearly visible (n=%d)" % s["synthetic_quakes_p_visible"], "median_delay_after_p_s_synthetic_p_visible"),
                      ("real, P clearly visible (n=%d)" % s["real_p_visible_records"], "median_delay_after_p_s_real_p_visible")):
        L.append("| median, %s (s) | %s |" % (name, " | ".join(_fmt(s[key][m]) for m in METHODS)))
    if s.get("node_trigger_median_delay_s_synthetic") is not None:
        L.append("\nThe node's STA/LTA trigger, from which the model runs (first inference one stride later), sets off "
                 "on %s of the clearly visible synthetic quakes, a median %s s after P: the rest of the model's delay is "
                 "its confirmation." % (_fmt(s["node_trigger_rate_synthetic"], True), _fmt(s["node_trigger_median_delay_s_synthetic"])))
    for key, name, what in (("delay_by_snr", "SNR", "the quake's SNR (its peak over the background rms)"),
                            ("delay_by_p_snr", "P SNR", "the P wave's SNR (the peak of the first %g s after P over the same rms; "
                             "below %g the P wave is not clearly visible, and the quake is seen by its S wave)" % (P_VISIBLE_S, VISIBLE_SNR))):
        if not res.get(key):
            continue
        L.append("\nBy %s, clearly visible synthetic quakes: the trigger's part of the delay and the model's confirmation "
                 "(per quake, from its trigger).\n" % what)
        L.append("| %s | n | triggered | trigger, median s after P | detected | model, median s after P | confirmation, median s |" % name)
        L.append("| --- | --- | --- | --- | --- | --- | --- |")
        for k, v in res[key].items():
            L.append("| %s | %d | %s | %s | %s | %s | %s |" % (
                k[len(name) + 1:], v["n"], _fmt(v["trigger_rate"], True), _fmt(v["trigger_median_s"]), _fmt(v["model_rate"], True),
                _fmt(v["model_median_s"]), _fmt(v["confirmation_median_s"])))
    if len(s.get("by_sensor", {})) > 1:
        L.append("\n## By sensor\n")
        L.append("The activity and quake-rich recordings as read by each sensor the firmware drives, each with the decision "
                 "rule the node runs for it (model.json `decision_by_sensor` where the export calibrated one, else `decision`); "
                 "the headline and the targets are the %s's. Quakes are drawn visible on the recording's own background, so a "
                 "noisier sensor gets larger ones.\n" % SENSORS[0].upper())
        L.append("| sensor | rule (on_q, confirm_n) | activity h | visible quakes | detected: model / OpenEEW | "
                 "false / h: model / OpenEEW | median delay (s): model / OpenEEW |")
        L.append("| --- | --- | --- | --- | --- | --- | --- |")
        for sn, v in s["by_sensor"].items():
            rule = fwdetector.rule_for(meta, sn)
            L.append("| %s | %d, %d | %g | %d | %s / %s | %s / %s | %s / %s |" % (
                sn, rule["on_q"], rule["confirm_n"], v["activity_hours"], v["visible_quakes"],
                *(_fmt(v[k][m], k == "detection_rate") for k in ("detection_rate", "false_per_hour_activity", "median_delay_after_p_s")
                  for m in ("model", "openeew"))))
    catalog = st.get("records")
    L.append("\n## Real test records: OpenEEW's%s\n" % (" and those of the catalogue `%s`" % catalog if catalog else ""))
    L.append("Detection delay after P (s) per record; `-` = not detected; false = detections before P-2 s (or anywhere in a "
             "record without a quake); after = detections later than P+90 s (coda, aftershocks; not counted).\n")
    L.append("| record | label | M | km | %s |" % " | ".join(LABELS[m] for m in METHODS))
    L.append("| --- | --- | --- | --- |" + " --- |" * len(METHODS))
    for r in res["real"]:
        L.append("| %s | %s | %s | %s | %s |" % (r["name"], r["label"].split("(")[0], _num(r["mag"], "%.1f"), _num(r["epi_km"], "%.0f"),
                                                      " | ".join("%s (false %d, after %d)" % (_fmt(r[m]["delay"]), len(r[m]["false"]), len(r[m]["after_event"]))
                                                                 for m in METHODS)))
    L.append("\n## Method\n")
    L.append(__doc__.split("What is measured")[1].strip().replace("\n   ", "\n"))
    L.append("\nData: OpenEEW records (OpenEEW / Grillo, CC BY-SA 4.0)%s and synthetic recordings (model_export/synth_*.py).\n"
             % (", the records of `%s` (their own terms)" % catalog if catalog else ""))
    return "\n".join(L) + "\n"
