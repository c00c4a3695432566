"""Physics of the network simulator: distances, travel times, BA08 ground motion, Worden (2012)
intensity, ground-motion sampling and the analytic warning-time / blind-zone helpers.

Reference values are published or come from an independent computation:
- BA08 medians: the NGA verification table shipped with OpenQuake hazardlib
  (openquake/hazardlib/tests/gsim/data/NGA/BA08/BA08_MEDIAN_SS.csv, from OpenSHA), 3 significant
  figures, strike-slip (rake 0);
- BA08 sigmas: Table 8 of the paper (as tabulated in the R package nga, BA08.R);
- Worden et al. (2012): Table 1 evaluated by hand, and the PGA/PGV of the USGS ShakeMap intensity
  legend (which is drawn from the same GMICE);
- layered travel times: a Fermat-principle minimisation of the travel time over ray paths with
  scipy.optimize, which shares no code with the implementation (closed-form ray tracing).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from seismote.simulator import physics as ph
from seismote.simulator.physics import VelocityModel

G = 980.665  # cm/s^2 per g

# ---------------------------------------------------------------------------------------------
# Distance


def test_epicentral_km_known_distances():
    deg = math.pi * ph.EARTH_R_KM / 180.0
    d = ph.epicentral_km(np.array([0.0, 1.0, 0.0, 90.0]), np.array([1.0, 0.0, 180.0, 0.0]), 0.0, 0.0)
    np.testing.assert_allclose(d, [deg, deg, 180 * deg, 90 * deg], rtol=1e-12)
    assert d.dtype == np.float64
    # Longitude degrees shrink with cos(latitude); symmetric in its two points.
    d60 = ph.epicentral_km(60.0, 0.001, 60.0, 0.0)
    assert d60 == pytest.approx(0.001 * deg * 0.5, rel=1e-6)
    assert ph.epicentral_km(16.0, -98.0, 19.4, -99.1) == pytest.approx(ph.epicentral_km(19.4, -99.1, 16.0, -98.0))


# ---------------------------------------------------------------------------------------------
# Travel times


def test_constant_velocity_times_are_hypocentral_distance_over_v():
    m = VelocityModel.constant(vp=6.5, vs=3.7)
    x = np.linspace(0.0, 800.0, 10001)
    for z in (0.0, 7.5, 57.0):
        np.testing.assert_allclose(m.p_time(x, z), np.sqrt(x * x + z * z) / 6.5, rtol=0, atol=1e-12)
        np.testing.assert_allclose(m.s_time(x, z), np.sqrt(x * x + z * z) / 3.7, rtol=0, atol=1e-12)
    assert m.p_time(np.array([30.0]), 40.0)[0] == pytest.approx(50.0 / 6.5, abs=1e-12)


def test_layers_of_equal_velocity_behave_as_one_half_space():
    m = VelocityModel(((10.0, 6.0, 3.5), (20.0, 6.0, 3.5), (math.inf, 6.0, 3.5)))
    x = np.linspace(0.0, 1500.0, 30001)
    for z in (0.2, 10.0, 25.0, 50.0):
        np.testing.assert_allclose(m.p_time(x, z), np.hypot(x, z) / 6.0, rtol=0, atol=2e-4)


def _fermat_first_arrival(layers, z, x, col):
    """Minimum travel time over ray paths, by numerical minimisation (Fermat's principle).

    Path families: the direct path (one straight leg per layer from the source up to the
    surface), and for each deeper interface k a path down to it, along it at v_k for a length
    L >= 0, and up to the surface. Unknowns are the horizontal offsets of the legs.
    """
    h = [row[0] for row in layers]
    v = [row[col] for row in layers]
    tops = np.concatenate([[0.0], np.cumsum(h[:-1])])
    j = max(int(np.searchsorted(tops, z, side="left")) - 1, 0)
    part = z - tops[j]
    opts = {"ftol": 1e-14, "maxiter": 2000}

    def legs(a, th, vel):
        return float(np.sum(np.sqrt(a * a + th * th) / vel))

    th = np.array(h[:j] + [part])
    vel = np.array(v[: j + 1])
    n = len(th)
    res = minimize(lambda a: legs(a, th, vel), np.full(n, x / n), method="SLSQP", bounds=[(0, None)] * n,
                   constraints=[{"type": "eq", "fun": lambda a: a.sum() - x}], options=opts)
    direct = res.fun
    best = direct
    for k in range(j + 1, len(layers)):
        th2 = np.array([h[j] - part] + h[j + 1 : k] + h[:k])
        vel2 = np.array(v[j:k] + v[:k])
        m = len(th2)
        res = minimize(lambda a: legs(a, th2, vel2) + (x - a.sum()) / v[k], np.full(m, min(x, 1.0) / m), method="SLSQP",
                       bounds=[(0, None)] * m, constraints=[{"type": "ineq", "fun": lambda a: x - a.sum()}], options=opts)
        best = min(best, res.fun)
    return best, direct


LAYERED = {
    "mexico": VelocityModel.default_mexico().layers,
    "crust_mantle": ((5.0, 5.5, 3.2), (25.0, 6.5, 3.75), (math.inf, 8.1, 4.6)),
    "low_velocity_zone": ((10.0, 6.0, 3.5), (10.0, 5.0, 2.9), (math.inf, 7.0, 4.0)),
}


@pytest.mark.parametrize("name", sorted(LAYERED))
def test_layered_first_arrivals_match_fermat_minimisation(name):
    m = VelocityModel(LAYERED[name])
    head_wave_first = 0
    for z in (1.0, 15.0, 35.0):
        for x in (0.0, 4.0, 40.0, 150.0, 450.0):
            for col, f in ((1, m.p_time), (2, m.s_time)):
                ref, direct = _fermat_first_arrival(m.layers, z, x, col)
                got = f(np.array([x]), z)[0]
                assert got == pytest.approx(ref, abs=1e-3), (name, z, x, col)
                head_wave_first += ref < direct - 0.05
    assert head_wave_first > 0  # the refracted (head) waves matter in each geometry tried


def test_layered_times_accept_depth_arrays_and_large_distances():
    m = VelocityModel.default_mexico()
    x = np.array([5.0, 50.0, 500.0, 3500.0])
    z = np.array([10.0, 57.0, 10.0, 57.0])
    both = m.p_time(x, z)
    np.testing.assert_allclose(both[[0, 2]], m.p_time(x[[0, 2]], 10.0))
    np.testing.assert_allclose(both[[1, 3]], m.p_time(x[[1, 3]], 57.0))
    # Far away the first arrival is the 7.4 km/s head wave: slope 1/7.4 s/km.
    far = m.p_time(np.array([3000.0, 3100.0]), 10.0)
    assert far[1] - far[0] == pytest.approx(100.0 / 7.4, abs=1e-6)
    assert np.all(np.diff(m.s_time(np.linspace(0, 1000, 5001), 22.6)) > 0)


def test_default_mexico_is_the_published_model():
    layers = VelocityModel.default_mexico().layers
    # Suarez, Ligorria & Ponce (1992): Vp 5.8, 6.5, 7.1, 7.4 km/s; h 10, 8.4, 5.0 km.
    assert [row[1] for row in layers] == [5.8, 6.5, 7.1, 7.4]
    assert [row[0] for row in layers[:-1]] == [10.0, 8.4, 5.0] and math.isinf(layers[-1][0])
    assert all(row[1] / row[2] == pytest.approx(math.sqrt(3.0)) for row in layers)


def test_velocity_model_rejects_bad_layers():
    with pytest.raises(ValueError, match="half-space"):
        VelocityModel(((10.0, 6.0, 3.5),))
    with pytest.raises(ValueError, match="layer 0"):
        VelocityModel(((10.0, -6.0, 3.5), (math.inf, 8.0, 4.6)))
    with pytest.raises(ValueError, match="depth_km"):
        VelocityModel.constant().p_time(np.array([1.0]), -3.0)


# ---------------------------------------------------------------------------------------------
# Analytic warning time and blind zone


def test_warning_time_by_hand():
    # Node at 10 km, site at 100 km, depth 20 km, vp 6.5, vs 3.7, 1 s of latency:
    # S at the site sqrt(100^2+20^2)/3.7 = 27.562268 s; P at the node sqrt(10^2+20^2)/6.5 = 3.440105 s.
    w = ph.warning_time_analytic(np.array([100.0]), 20.0, np.array([10.0]), k=1, latency_s=1.0)
    assert w[0] == pytest.approx(27.562268 - 3.440105 - 1.0, abs=2e-6)
    # k-th nearest node by P time: k=2 of nodes at 50, 10 and 30 km is the one at 30 km.
    assert ph.alert_time_analytic(np.array([50.0, 10.0, 30.0]), 20.0, k=2) == pytest.approx(math.hypot(30, 20) / 6.5)
    assert ph.alert_time_analytic(np.array([10.0]), 20.0, k=2) == math.inf


@pytest.mark.parametrize("depth,latency", [(10.0, 0.0), (20.0, 3.0), (57.0, 5.5)])
def test_blind_zone_is_where_warning_time_is_zero(depth, latency):
    vp, vs = 6.5, 3.7
    t_alert = depth / vp + latency  # a node right above the hypocentre
    r = ph.blind_zone_radius(depth, vp, vs, t_alert)
    assert r == pytest.approx(math.sqrt(max((vs * t_alert) ** 2 - depth**2, 0.0)), rel=1e-12)
    w = ph.warning_time_analytic(np.array([r, r * 0.9, r * 1.1 + 1.0]), depth, np.array([0.0]), vp=vp, vs=vs, latency_s=latency)
    if r > 0:
        assert w[0] == pytest.approx(0.0, abs=1e-9)
        assert w[1] < 0 < w[2]
    else:  # S reaches the surface only after the alert: no blind zone at all
        assert np.all(w >= 0)


def test_blind_zone_radius_examples():
    # Alert 8 s after origin, vs 3.5: depth 10 -> sqrt(28^2 - 10^2) = 26.153 km, depth 20 -> 19.596.
    assert ph.blind_zone_radius(10.0, 6.0, 3.5, 8.0) == pytest.approx(26.1533937, rel=1e-7)
    assert ph.blind_zone_radius(50.0, 6.0, 3.5, 5.0) == 0.0
    np.testing.assert_allclose(ph.blind_zone_radius(np.array([10.0, 20.0]), 6.0, 3.5, 8.0), [26.1533937, 19.5959179], rtol=1e-7)
    with pytest.raises(ValueError, match="vp > vs"):
        ph.blind_zone_radius(10.0, 3.0, 3.5, 8.0)


# ---------------------------------------------------------------------------------------------
# Boore & Atkinson (2008)

# (M, Rjb km, Vs30 m/s, PGA g, PGV cm/s): BA08_MEDIAN_SS.csv, strike-slip.
BA08_TABLE = [
    (4.0, 0, 150, 0.181, 5.71),
    (4.0, 10, 760, 0.0216, 0.581),
    (4.0, 200, 1500, 2.21e-4, 1.32e-2),
    (4.5, 0, 255, 0.201, 7.58),
    (6.0, 10, 150, 0.201, 18.1),
    (6.0, 50, 360, 0.0552, 3.57),
    (6.0, 100, 760, 0.0161, 1.14),
    (6.0, 200, 1070, 3.22e-3, 0.404),
    (6.5, 0, 360, 0.537, 50.0),
    (6.5, 5, 255, 0.295, 31.7),
    (6.5, 10, 760, 0.190, 13.1),
    (7.0, 50, 760, 0.0837, 6.60),
    (7.0, 100, 150, 0.0908, 12.4),
    (7.0, 200, 525, 0.0106, 2.14),
    (7.5, 0, 760, 0.550, 66.6),
    (7.5, 0, 255, 0.489, 91.2),
    (7.5, 5, 360, 0.399, 61.7),
    (7.5, 10, 180, 0.241, 41.9),
    (7.5, 50, 1070, 0.0935, 8.41),
    (7.5, 100, 150, 0.117, 19.7),
]


@pytest.mark.parametrize("mag,rjb,vs30,pga,pgv", BA08_TABLE)
def test_ba08_medians_match_the_verification_table(mag, rjb, vs30, pga, pgv):
    a, _ = ph.ba08(mag, np.array([rjb], dtype=float), np.array([vs30], dtype=float), mech="SS", imt="pga")
    v, _ = ph.ba08(mag, np.array([rjb], dtype=float), np.array([vs30], dtype=float), mech="SS", imt="pgv")
    # The table has 3 significant figures: +-0.5 % rounding at worst.
    assert a[0] == pytest.approx(pga, rel=0.006)
    assert v[0] == pytest.approx(pgv, rel=0.006)


def test_ba08_is_vectorised_over_sites():
    rows = np.array(BA08_TABLE)
    for mag in (6.0, 7.5):
        sel = rows[rows[:, 0] == mag]
        a, _ = ph.ba08(mag, sel[:, 1], sel[:, 2], mech="SS")
        np.testing.assert_allclose(a, sel[:, 3], rtol=0.006)
        assert a.dtype == np.float32
    a64, _ = ph.ba08(7.0, np.array([10.0]), np.array([400.0]), dtype=np.float64)
    assert a64.dtype == np.float64


def test_ba08_sigmas_are_table_8():
    assert ph.ba08_sigma("U", "pga") == (0.566, 0.265, 0.502)
    assert ph.ba08_sigma("RS", "pga") == (0.564, 0.260, 0.502)
    assert ph.ba08_sigma("U", "pgv") == (0.576, 0.286, 0.500)
    assert ph.ba08_sigma("NS", "pgv") == (0.560, 0.256, 0.500)
    for mech in ("U", "SS"):  # the paper's totals are the rounded sqrt(tau^2 + sigma^2)
        tot, tau, phi = ph.ba08_sigma(mech, "pga")
        assert tot == pytest.approx(math.hypot(tau, phi), abs=2e-3)
    assert ph.ba08(7.0, np.array([10.0]), np.array([760.0]))[1] == 0.566


def test_ba08_mechanism_and_argument_errors():
    args = (7.0, np.array([20.0]), np.array([760.0]))
    ss, rs, u = (ph.ba08(*args, mech=m)[0][0] for m in ("SS", "RS", "U"))
    # e1..e4 for PGA: reverse -0.50970 > strike-slip -0.50350? no: -0.5035 > -0.5097 > -0.53804 (U).
    assert ss / rs == pytest.approx(math.exp(-0.50350 + 0.50970), rel=1e-5)
    assert u < rs < ss
    with pytest.raises(ValueError, match="mech"):
        ph.ba08(*args, mech="thrust")
    with pytest.raises(ValueError, match="imt"):
        ph.ba08(*args, imt="sa1")


def test_site_amplification_linear_and_nonlinear():
    vs = np.array([180.0, 300.0, 760.0, 1300.0])
    lin = ph.site_amplification(vs)
    np.testing.assert_allclose(lin, np.exp(-0.36 * np.log(vs / 760.0)), rtol=1e-6)
    assert lin[2] == pytest.approx(1.0)
    strong = ph.site_amplification(vs, pga_rock_g=0.5)
    # Soft sites de-amplify strong shaking (b1 = -0.64 at Vs30 <= 180); rock is untouched.
    assert strong[0] < lin[0] and strong[0] == pytest.approx(lin[0] * math.exp(-0.64 * math.log(5.0)), rel=1e-5)
    assert strong[2] == pytest.approx(1.0) and strong[3] == pytest.approx(lin[3])
    # ba08 applies the same site term: the ratio soil/rock of the medians at one (M, R).
    a, _ = ph.ba08(7.5, np.array([5.0, 5.0]), np.array([255.0, 760.0]), mech="SS")
    rock = a[1]
    assert a[0] / rock == pytest.approx(ph.site_amplification(np.array([255.0]), pga_rock_g=rock)[0], rel=1e-5)


def test_rjb_point_source():
    epi = np.array([0.0, 5.0, 20.0, 100.0, 5000.0])
    np.testing.assert_array_equal(ph.rjb_point_source(epi, 7.0), epi)
    ff = ph.rjb_point_source(epi, 7.5, finite_fault=True)
    half = 0.5 * 10 ** (-2.44 + 0.59 * 7.5)  # Wells & Coppersmith (1994) RLD / 2 = 48.3 km
    # Inside the half-length the strike-averaged distance is r * mean|sin| = 2r/pi.
    np.testing.assert_allclose(ff[:3], 2.0 * epi[:3] / math.pi, rtol=1e-3)
    # Far away the average distance to the line is r - L/pi + (L/2)^2 / (4r): the mean over strike
    # of r - (L/2)|cos| + (L/2)^2 sin^2 / (2r).
    assert ff[-1] == pytest.approx(epi[-1] - 2.0 * half / math.pi + half**2 / (4.0 * epi[-1]), rel=1e-8)
    assert np.all(ff <= epi) and np.all(np.diff(ff) > 0)
    assert half == pytest.approx(48.3, abs=0.1)
    # The table and the far-field expansion meet smoothly at 100 half-lengths.
    edge = ph.rjb_point_source(np.array([99.999, 100.001]) * half, 7.5, finite_fault=True)
    assert edge[1] - edge[0] == pytest.approx(0.002 * half, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# Worden et al. (2012)


@pytest.mark.parametrize(
    "pga,mmi",
    [
        # Table 1 by hand: 1.78 + 1.55 log10(PGA) up to log10 = 1.57, then -1.60 + 3.70 log10(PGA).
        (10.0, 3.33),
        (100.0, 5.80),
        (1000.0, 9.50),
        (30.0, 1.78 + 1.55 * math.log10(30.0)),
        (40.0, -1.60 + 3.70 * math.log10(40.0)),
        (1e-3, 1.0),  # clipped
        (5000.0, 10.0),  # clipped
    ],
)
def test_mmi_from_pga_table_1(pga, mmi):
    assert float(ph.mmi_from_pga(np.array([pga]))[0]) == pytest.approx(mmi, abs=1e-4)


@pytest.mark.parametrize("pgv,mmi", [(0.1, 2.31), (1.0, 3.78), (10.0, 6.05), (100.0, 9.21), (1000.0, 10.0)])
def test_mmi_from_pgv_table_1(pgv, mmi):
    assert float(ph.mmi_from_pgv(np.array([pgv]))[0]) == pytest.approx(mmi, abs=1e-4)


# USGS ShakeMap legend (Worden et al. 2012 scale): the ground motion at intensities IV..X.
SHAKEMAP_LEGEND = [  # (MMI, PGA %g, PGV cm/s)
    (4, 2.8, 1.4),
    (5, 6.2, 4.7),
    (6, 11.5, 9.6),
    (7, 21.5, 20.0),
    (8, 40.1, 41.0),
    (9, 74.7, 86.0),
    (10, 139.0, 178.0),
]


@pytest.mark.parametrize("mmi,pga_pct_g,pgv", SHAKEMAP_LEGEND)
def test_mmi_matches_the_shakemap_legend(mmi, pga_pct_g, pgv):
    # Legend values have 2-3 significant figures: +-2.5 % in PGA is +-0.04 MMI at slope 3.7.
    assert float(ph.mmi_from_pga(np.array([pga_pct_g / 100.0 * G]))[0]) == pytest.approx(mmi, abs=0.06)
    assert float(ph.mmi_from_pgv(np.array([pgv]))[0]) == pytest.approx(mmi, abs=0.06)


def test_mmi_is_monotone_continuous_and_vectorised():
    pga = np.geomspace(0.01, 5000.0, 200001)
    m = ph.mmi_from_pga(pga)
    assert m.dtype == np.float32 and m.min() == 1.0 and m.max() == 10.0
    # The published (rounded) segments meet 0.005 MMI apart at the hinge log10(PGA) = t1 = 1.57
    # (4.2135 below, 4.209 above); elsewhere MMI rises with PGA and never jumps.
    assert np.all(np.diff(m) >= -0.005)
    assert np.count_nonzero(np.diff(m) < 0) <= 1
    assert np.max(np.diff(m)) < 0.01


# ---------------------------------------------------------------------------------------------
# Sampling


def test_sample_ground_motion_same_seed_same_numbers_and_zero_noise():
    med = np.full(1000, 0.1, dtype=np.float32)
    a = ph.sample_ground_motion(med, 0.265, 0.502, np.random.default_rng(7))
    b = ph.sample_ground_motion(med, 0.265, 0.502, np.random.default_rng(7))
    c = ph.sample_ground_motion(med, 0.265, 0.502, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == med.shape and a.dtype == np.float32
    rng = np.random.default_rng(7)
    z = ph.sample_ground_motion(med, 0.265, 0.502, rng, zero_noise=True)
    np.testing.assert_array_equal(z, med)
    assert rng.random() == np.random.default_rng(7).random()  # zero-noise drew nothing
    assert ph.sample_ground_motion(med, 0.3, 0.5, rng, n_events=4, zero_noise=True).shape == (4, 1000)


def test_sample_ground_motion_has_the_inter_and_intra_event_spread():
    tau, phi = 0.3, 0.5
    med = np.full(400, 2.0)
    y = ph.sample_ground_motion(med, tau, phi, np.random.default_rng(1), n_events=3000)
    assert y.shape == (3000, 400) and y.dtype == np.float64
    ln = np.log(y / 2.0)
    event_terms = ln.mean(axis=1)  # one shared term per event (+ phi/sqrt(400) of site noise)
    assert event_terms.std() == pytest.approx(math.sqrt(tau**2 + phi**2 / 400), rel=0.05)
    assert (ln - event_terms[:, None]).std() == pytest.approx(phi, rel=0.02)
    assert ln.std() == pytest.approx(math.hypot(tau, phi), rel=0.03)
    assert abs(ln.mean()) < 0.03  # median-centred (lognormal around the median)
