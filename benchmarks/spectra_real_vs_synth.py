"""Where the P wave's energy sits: real OpenEEW records against the synthetic quakes.

For every `earthquake_visible` OpenEEW record (real MEMS nodes in Mexico, OpenEEW / Grillo,
CC BY-SA 4.0) and for synthetic quakes of the same magnitude and distance (model_export/
synth_quake.py, band-limited like the record), prints the frequencies below which 25/50/75% of the
acceleration power of the first 0.5-6 s after P lies, on the vertical and on a horizontal, the
record's P-window SNR (peak over the rms of the 10 s before P), and a closing line with the medians
over all records and over those with SNR >= 8 (a weak record's P window is mostly its noise). The detector has to tell a P wave from a door within about a second,
so a synthetic P wave with the wrong spectrum teaches it the wrong thing (see the closing notes of
issue 3: the real records put their P energy at 8-14 Hz, the synthetic ones at 3-6 Hz).

    python benchmarks/spectra_real_vs_synth.py [--per-record 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.signal import welch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seismote.model_export import real  # noqa: E402
from seismote.model_export.evaluate import visible_real  # noqa: E402
from seismote.model_export.synth_quake import synth_quake  # noqa: E402

P_WINDOW_S = (0.5, 6.0)  # after P: the detector's first seconds, before S at >= ~50 km


def quartiles(x: np.ndarray, rate: float) -> list[float]:
    """Frequencies (Hz) below which 25, 50 and 75% of the power of x lies."""
    f, p = welch(x - x.mean(), fs=rate, nperseg=min(128, len(x)))
    c = np.cumsum(p) / max(p.sum(), 1e-30)
    return [round(float(f[min(np.searchsorted(c, q), len(f) - 1)]), 1) for q in (0.25, 0.5, 0.75)]


def p_window(rec, p_s: float) -> tuple[np.ndarray, float] | None:
    """The P window's samples and its SNR, or None when the record does not cover it."""
    for seg in rec.segments:
        t = seg.offset_s + np.arange(len(seg.data)) / rec.rate - p_s
        m = (t >= P_WINDOW_S[0]) & (t < P_WINDOW_S[1])
        pre = (t >= -10.0) & (t < -0.5)
        if m.sum() > 0.8 * (P_WINDOW_S[1] - P_WINDOW_S[0]) * rec.rate and pre.sum() > 2 * rec.rate:
            d = np.asarray(seg.data)
            off = d[pre].mean(axis=0)
            rms = float(np.sqrt(((d[pre] - off) ** 2).mean()))
            return d[m], float(np.abs(d[m] - off).max()) / max(rms, 1e-9)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-record", type=int, default=3, help="synthetic quakes per real record")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    keys = ("real_z", "real_h", "synthetic_z", "synthetic_h")
    medians: dict[str, list[float]] = {k: [] for k in keys}
    strong: dict[str, list[float]] = {k: [] for k in keys}
    for ex in real.openeew_examples():
        if not visible_real(ex):
            continue
        got = p_window(ex["record"], ex["p_offset_s"])
        if got is None:
            continue
        w, snr = got
        rate = ex["record"].rate
        row = {"record": ex["file"], "mag": ex["mag"], "epi_km": round(ex["epi_km"]), "rate_hz": round(rate, 2), "snr": round(snr, 1),
               "real_z": quartiles(w[:, 0], rate), "real_h": quartiles(w[:, 1], rate), "synthetic_z": [], "synthetic_h": []}
        for _ in range(args.per_record):
            acc, meta = synth_quake(ex["mag"], max(ex["epi_km"], 1.0), 15.0, rate=rate, duration_s=30.0, p_at_s=5.0, rng=rng)
            i0 = meta["p_index"] + int(P_WINDOW_S[0] * rate)
            s = acc[i0:meta["p_index"] + int(P_WINDOW_S[1] * rate)]
            row["synthetic_z"].append(quartiles(s[:, 0], rate)[1])
            row["synthetic_h"].append(quartiles(s[:, 1], rate)[1])
        for into in (medians, strong) if snr >= 8 else (medians,):
            for k in ("real_z", "real_h"):
                into[k].append(row[k][1])
            into["synthetic_z"] += row["synthetic_z"]
            into["synthetic_h"] += row["synthetic_h"]
        print(json.dumps(row))

    def med(d):
        return {k: round(float(np.median(v)), 1) if v else None for k, v in d.items()}

    print(json.dumps({"median_frequency_hz": med(medians), "records": len(medians["real_z"]),
                      "median_frequency_hz_snr_ge_8": med(strong), "records_snr_ge_8": len(strong["real_z"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
