"""Physics of a network scenario, vectorised over sites: distances, P/S travel times, ground motion
(Boore & Atkinson 2008), intensity (Worden et al. 2012) and analytic warning times.

Every function takes numpy arrays of any length (10^6 sites is the design point) and contains no
Python loop over sites. Precision choices:

- distances and travel times are float64: warning times are differences of travel times of a few
  hundred seconds and must stay exact to well below a millisecond;
- ground motion and intensity are float32 by default (``dtype=`` to change): their own scatter is
  a factor of ~1.7 (sigma_ln ~ 0.56), so 7 significant digits are ample and halve the memory and
  time at 10^6 sites.

Sources of every coefficient are given where it is defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

EARTH_R_KM = 6371.0
# Peak P over the PGA of the S wave that follows: median and sigma_ln over the 29 OpenEEW records of
# the train and val events with a clear P (benchmarks/p_to_s_ratios.py). A node that detects on the P
# wave has seen this share of the PGA to come.
P_PGA_RATIO = 0.18
P_PGA_RATIO_SIGMA = 0.47
_GRID_DX_KM = 0.01  # travel-time table spacing (layered models)
_CACHE_MAX = 64  # travel-time tables kept per model (~1.6 MB each at 2000 km)

__all__ = [
    "EARTH_R_KM",
    "epicentral_km",
    "VelocityModel",
    "ba08",
    "ba08_sigma",
    "sample_ground_motion",
    "rjb_point_source",
    "site_amplification",
    "mmi_from_pga",
    "mmi_from_pgv",
    "alert_time_analytic",
    "warning_time_analytic",
    "blind_zone_radius",
]


# ---------------------------------------------------------------------------------------------
# Distance


def epicentral_km(lat, lon, qlat, qlon) -> np.ndarray:
    """Great-circle distance (km) from sites (lat, lon) to an epicentre (qlat, qlon), degrees.

    Haversine on a sphere of radius EARTH_R_KM, float64, any broadcastable shapes. The spherical
    approximation differs from the WGS84 geodesic by < 0.5 %, well inside the scatter of any
    ground-motion model and ~0.1 s of travel time at 100 km.
    """
    la = np.radians(np.asarray(lat, dtype=np.float64))
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    qla = math.radians(qlat) if np.ndim(qlat) == 0 else np.radians(np.asarray(qlat, dtype=np.float64))
    qlo = math.radians(qlon) if np.ndim(qlon) == 0 else np.radians(np.asarray(qlon, dtype=np.float64))
    s1 = np.sin((la - qla) * 0.5)
    s2 = np.sin((lo - qlo) * 0.5)
    h = s1 * s1 + np.cos(la) * np.cos(qla) * s2 * s2
    h = np.clip(h, 0.0, 1.0, out=h if isinstance(h, np.ndarray) else None)
    return (2.0 * EARTH_R_KM) * np.arcsin(np.sqrt(h))


# ---------------------------------------------------------------------------------------------
# Travel times


@dataclass
class VelocityModel:
    """A flat-layered (1-D) velocity model: ``layers`` = [(thickness_km, vp, vs), ...] from the
    surface down, the last one a half-space with thickness ``inf``. Velocities in km/s.

    ``p_time``/``s_time`` return the first-arrival time (s after origin) at surface sites:

    - one layer (``constant``): hypocentral distance / v, in closed form, exact;
    - several layers: the minimum over the direct (up-going) ray and the head waves refracted along
      the top of every deeper layer that is faster than everything above it. The direct ray is
      traced exactly in ray parameter p (x(p), t(p) summed over the layers crossed, densely
      sampled); head waves are exact closed forms (intercept + x/v, beyond their critical
      distance). Their minimum is tabulated on a uniform 0.01 km grid per (phase, source depth),
      cached, and interpolated linearly: one table build (~5 ms) and ~10-25 ms per 10^6 sites.
      Error < 2e-4 s for sources deeper than 0.1 km: the direct-ray sampling contributes < 1e-6 s,
      the grid dx^2/8 * curvature (largest right above shallow sources) and at most
      dx * (slope change) / 4 at the corners where another wave takes over. Tests check it against
      an independent Fermat-principle minimisation over ray paths to 1 ms.
      Wide-angle reflections are not modelled; they can arrive first only in models with a
      low-velocity layer above the source's critical paths.

    Distances are flat-earth: the epicentral (great-circle) distance is used as the horizontal
    offset, which is adequate to a few hundred km (sphericity makes true regional times ~0.1 s
    shorter at 500 km). Sources exactly on an interface belong to the layer above it.
    """

    layers: tuple
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = []
        for i, row in enumerate(self.layers):
            try:
                h, vp, vs = (float(v) for v in row)
            except (TypeError, ValueError):
                raise ValueError("layer %d: expected (thickness_km, vp, vs), got %r" % (i, row)) from None
            last = i == len(self.layers) - 1
            if last and not math.isinf(h):
                raise ValueError("layer %d: the last layer must be a half-space (thickness inf)" % i)
            if not last and not (math.isfinite(h) and h > 0):
                raise ValueError("layer %d: thickness %r must be finite and > 0" % (i, h))
            if not (vp > 0 and vs > 0 and math.isfinite(vp) and math.isfinite(vs)):
                raise ValueError("layer %d: velocities must be > 0 (vp=%r, vs=%r)" % (i, vp, vs))
            rows.append((h, vp, vs))
        if not rows:
            raise ValueError("a velocity model needs at least one layer (the half-space)")
        self.layers = tuple(rows)

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def constant(cls, vp: float = 6.5, vs: float = 3.7) -> "VelocityModel":
        """A homogeneous half-space. Defaults 6.5/3.7 km/s are those OpenEEW used to predict
        arrivals in its Mexico records (and records.csv here)."""
        return cls(((math.inf, vp, vs),))

    @classmethod
    def default_mexico(cls) -> "VelocityModel":
        """Crust of the Guerrero-Oaxaca coast from Suarez, Ligorria & Ponce (1992), Preliminary
        crustal structure of the coast of Guerrero, Mexico, using the minimum apparent velocity of
        refracted waves, Geofisica Internacional 31(3), 247-252, doi:10.22201/igeof.00167169p.1992.31.3.1294:
        Vp = 5.8, 6.5, 7.1, 7.4 km/s over thicknesses 10, 8.4, 5.0 km (7.4 km/s below 23.4 km).

        The paper gives P velocities only; Vs = Vp / sqrt(3) (a Poisson solid, Vp/Vs = 1.73) is our
        assumption. The authors saw no Moho refraction (the upper plate's lower crust rests on the
        subducting slab), so the model has no 8 km/s mantle: beyond ~300 km, where a real Pn would
        arrive first, its P times are late by up to a few seconds. Pass your own layers for paths
        far inland.
        """
        r = math.sqrt(3.0)
        vps = (5.8, 6.5, 7.1, 7.4)
        hs = (10.0, 8.4, 5.0, math.inf)
        return cls(tuple((h, vp, vp / r) for h, vp in zip(hs, vps)))

    # -- public API --------------------------------------------------------------------------

    def p_time(self, epi_km, depth_km) -> np.ndarray:
        """First P arrival (s after origin) at epicentral distances ``epi_km`` for a source at
        ``depth_km`` (scalar, or an array with few distinct values)."""
        return self._time(epi_km, depth_km, 1)

    def s_time(self, epi_km, depth_km) -> np.ndarray:
        """First S arrival (s after origin); see ``p_time``."""
        return self._time(epi_km, depth_km, 2)

    @property
    def is_constant(self) -> bool:
        return len(self.layers) == 1

    # -- implementation ----------------------------------------------------------------------

    def _time(self, epi_km, depth_km, col: int) -> np.ndarray:
        x = np.abs(np.asarray(epi_km, dtype=np.float64))
        if np.ndim(depth_km) == 0:
            z = float(depth_km)
            if not (z >= 0 and math.isfinite(z)):
                raise ValueError("depth_km must be finite and >= 0, got %r" % (depth_km,))
            return self._time_scalar_depth(x, z, col)
        xs, zs = np.broadcast_arrays(x, np.asarray(depth_km, dtype=np.float64))
        out = np.empty(xs.shape, dtype=np.float64)
        uz, inv = np.unique(zs, return_inverse=True)
        inv = inv.reshape(zs.shape)
        for i, zi in enumerate(uz):  # one pass per distinct source depth, not per site
            sel = inv == i
            out[sel] = self._time(xs[sel], float(zi), col)
        return out

    def _time_scalar_depth(self, x: np.ndarray, z: float, col: int) -> np.ndarray:
        v = [row[col] for row in self.layers]
        if self.is_constant:
            return np.hypot(x, z) / v[0]
        tab, dx = self._curve(z, col, float(x.max()) if x.size else 0.0)
        # Linear interpolation on the uniform grid by index arithmetic (np.interp's binary search
        # is 5x slower at 10^6 unsorted sites).
        u = x * (1.0 / dx)
        i = u.astype(np.int64)
        f = u - i
        lo = tab[i]
        return lo + f * (tab[i + 1] - lo)

    def _layer_of(self, z: float) -> tuple[int, float]:
        """(index of the layer holding depth z, thickness of that layer above z)."""
        top = 0.0
        for j, (h, _, _) in enumerate(self.layers):
            if z <= top + h:
                return j, z - top
            top += h
        raise AssertionError("unreachable: the last layer is a half-space")

    def _curve(self, z: float, col: int, xmax: float) -> tuple[np.ndarray, float]:
        """(first-arrival times on the grid 0, dx, 2dx, ... >= xmax, dx) for a source at z."""
        key = (col, z)
        cur = self._cache.pop(key, None)
        if cur is not None and cur[2] >= xmax:
            self._cache[key] = cur  # most recently used last
            return cur[0], cur[1]
        xmax = max(2000.0, 1.5 * xmax, cur[2] * 2 if cur else 0.0)
        layers = self.layers
        v = np.array([row[col] for row in layers])
        h = np.array([row[0] for row in layers])
        j, part = self._layer_of(z)
        # Direct ray: crosses layers 0..j-1 fully and `part` km of layer j.
        hp = np.append(h[:j], part)
        vp = v[: j + 1]
        if z == 0.0 or hp.sum() == 0.0:
            xs = np.array([0.0, xmax])
            ts = xs / v[0]
        else:
            pos = hp > 0
            hp, vp = hp[pos], vp[pos]
            vmax = vp.max()
            fast = vp == vmax
            # s = tan(angle) in the fastest layer crossed; p = sin/vmax. Every other layer has
            # p*v < 1, and x -> inf as s -> inf, so the ray reaches any distance.
            hfast = hp[fast].sum()
            smax = xmax / hfast * 1.01 + 1.0
            s = np.concatenate([np.linspace(0.0, 1.0, 4001)[:-1], np.geomspace(1.0, smax, 12001)])
            sec = np.sqrt(1.0 + s * s)
            pv = s / sec  # sin(angle) in the fastest layer = p * vmax
            xs = hfast * s
            ts = hfast * sec / vmax
            for hi, vi in zip(hp[~fast], vp[~fast]):
                si = pv * (vi / vmax)
                ci = np.sqrt(1.0 - si * si)
                xs = xs + hi * si / ci
                ts = ts + hi / (vi * ci)
        # First arrival on a uniform grid: the direct curve resampled, then each head wave (exact,
        # linear in x) where it exists and is earlier.
        dx = max(_GRID_DX_KM, xmax / 2e6)
        grid = np.arange(int(math.ceil(xmax / dx)) + 2) * dx
        tab = np.interp(grid, xs, ts)
        for k in range(j + 1, len(layers)):
            vk = v[k]
            if vk <= v[:k].max():
                continue
            # Layer thickness crossed on the way down (rest of layer j, then j+1..k-1) plus on the
            # way up (layers 0..k-1).
            down = np.zeros(k)
            down[j] = h[j] - part
            down[j + 1 : k] = h[j + 1 : k]
            thick = h[:k] + down
            intercept = float((thick * np.sqrt(1.0 / v[:k] ** 2 - 1.0 / vk**2)).sum())
            xc = float((thick * v[:k] / np.sqrt(vk**2 - v[:k] ** 2)).sum())
            head = np.where(grid >= xc, intercept + grid / vk, np.inf)
            np.minimum(tab, head, out=tab)
        if len(self._cache) >= _CACHE_MAX:  # bound memory when callers sweep many depths
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (tab, dx, xmax)
        return tab, dx


# ---------------------------------------------------------------------------------------------
# Ground motion: Boore & Atkinson (2008)
#
# Boore, D. M. and G. M. Atkinson (2008), Ground-motion prediction equations for the average
# horizontal component of PGA, PGV, and 5%-damped PSA at spectral periods between 0.01 s and
# 10.0 s, Earthquake Spectra 24(1), 99-138. Coefficients of Tables 3 (site), 6 (distance),
# 7 (magnitude) and 8 (sigma) for PGA and PGV, as tabulated identically by two independent
# implementations: OpenQuake hazardlib `BooreAtkinson2008` (gem/oq-engine,
# openquake/hazardlib/gsim/boore_atkinson_2008.py) and the R package `nga` (Kaklamanos & Thompson,
# file BA08.R). Rref = 1 km for pga4nl too (Boore's 27 Aug 2008 erratum to the Table 6 caption).

_BA08 = {
    #        c1        c2       c3       h     e1        e2        e3        e4       e5       e6       e7     Mh
    "pga": (-0.66050, 0.11970, -0.01151, 1.35, -0.53804, -0.50350, -0.75472, -0.50970, 0.28805, -0.10164, 0.0, 6.75),
    "pgv": (-0.87370, 0.10060, -0.00334, 2.54, 5.00121, 5.04727, 4.63188, 5.08210, 0.18322, -0.12736, 0.0, 8.50),
}
# Table 3: blin, b1, b2.
_BA08_SITE = {"pga": (-0.36, -0.64, -0.14), "pgv": (-0.60, -0.50, -0.06)}
# Table 8: sigma (intra-event), tau_U, sigma_TU (mechanism unspecified), tau_M, sigma_TM (specified).
_BA08_SIGMA = {"pga": (0.502, 0.265, 0.566, 0.260, 0.564), "pgv": (0.500, 0.286, 0.576, 0.256, 0.560)}
# Table 4 and the text: period-independent constants.
_A1, _PGA_LOW, _A2 = 0.03, 0.06, 0.09  # g
_V1, _V2, _VREF = 180.0, 300.0, 760.0  # m/s
_MREF, _RREF = 4.5, 1.0
_MECHS = ("U", "SS", "NS", "RS")  # unspecified, strike-slip, normal, reverse (thrust)


def _check_imt_mech(imt: str, mech: str) -> tuple[str, str]:
    i = str(imt).lower()
    if i not in _BA08:
        raise ValueError("imt %r: one of %s" % (imt, ", ".join(_BA08)))
    m = str(mech).upper()
    if m not in _MECHS:
        raise ValueError("mech %r: one of %s (unspecified, strike-slip, normal, reverse)" % (mech, ", ".join(_MECHS)))
    return i, m


def _ba08_rock_ln(mag, rjb, imt: str, mech: str, dt) -> np.ndarray:
    """ln of the median on the reference rock (Vs30 = 760 m/s): F_M + F_D (eqs 3-5)."""
    c1, c2, c3, h, e1, e2, e3, e4, e5, e6, e7, mh = _BA08[imt]
    e_mech = {"U": e1, "SS": e2, "NS": e3, "RS": e4}[mech]
    m = np.asarray(mag, dtype=dt)
    dm = m - dt(mh)
    f_m = np.where(m <= mh, e_mech + e5 * dm + e6 * dm * dm, e_mech + e7 * dm).astype(dt, copy=False)
    r = np.sqrt(np.asarray(rjb, dtype=dt) ** 2 + dt(h * h))
    f_d = (dt(c1) + dt(c2) * (m - dt(_MREF))) * np.log(r / dt(_RREF)) + dt(c3) * (r - dt(_RREF))
    return f_m + f_d


def _ba08_site_ln(vs30, pga4nl, imt: str, dt) -> np.ndarray:
    """ln site amplification F_S = F_LIN + F_NL (eqs 6-13) relative to Vs30 = 760 m/s."""
    blin, b1, b2 = _BA08_SITE[imt]
    v = np.asarray(vs30, dtype=dt)
    f_lin = dt(blin) * np.log(v / dt(_VREF))
    if pga4nl is None:
        return f_lin
    # Non-linear slope bnl (eqs 13a-d).
    bnl = np.where(
        v <= _V1,
        dt(b1),
        np.where(
            v <= _V2,
            (dt(b1) - dt(b2)) * np.log(v / dt(_V2)) / dt(math.log(_V1 / _V2)) + dt(b2),
            np.where(v < _VREF, dt(b2) * np.log(v / dt(_VREF)) / dt(math.log(_V2 / _VREF)), dt(0.0)),
        ),
    ).astype(dt, copy=False)
    # Non-linear term (eqs 8a-c) with the cubic smoothing of eqs 9-12.
    p = np.asarray(pga4nl, dtype=dt)
    dx = dt(math.log(_A2 / _A1))
    dy = bnl * dt(math.log(_A2 / _PGA_LOW))
    c = (3.0 * dy - bnl * dx) / (dx * dx)
    d = -(2.0 * dy - bnl * dx) / (dx * dx * dx)
    lo = bnl * dt(math.log(_PGA_LOW / 0.1))
    lp = np.log(np.maximum(p, dt(1e-30)) / dt(_A1))
    mid = lo + c * lp * lp + d * lp * lp * lp
    hi = bnl * np.log(np.maximum(p, dt(1e-30)) / dt(0.1))
    f_nl = np.where(p <= _A1, lo, np.where(p <= _A2, mid, hi))
    return f_lin + f_nl


def ba08_sigma(mech: str = "U", imt: str = "pga") -> tuple[float, float, float]:
    """(total, inter-event tau, intra-event sigma) of ln(Y), BA08 Table 8. ``mech`` "U" uses the
    unspecified-mechanism tau and total; any specified mechanism the "M" columns."""
    i, m = _check_imt_mech(imt, mech)
    sig, tau_u, tot_u, tau_m, tot_m = _BA08_SIGMA[i]
    return (tot_u, tau_u, sig) if m == "U" else (tot_m, tau_m, sig)


def ba08(mag, rjb_km, vs30, mech: str = "U", imt: str = "pga", dtype=np.float32):
    """Boore & Atkinson (2008) median and total ln standard deviation.

    ``imt`` "pga" -> median PGA in g; "pgv" -> median PGV in cm/s (geometric-mean horizontal,
    GMRotI50). ``mech``: "U" unspecified, "SS" strike-slip, "NS" normal, "RS" reverse/thrust.
    ``vs30`` m/s (the model was fit for 180-1300 m/s). The site term is the paper's: linear plus
    non-linear driven by pga4nl, the median PGA on Vs30 = 760 m/s rock at the same (M, Rjb).
    Returns (median array, sigma_ln total float); ``ba08_sigma`` gives tau and phi separately.
    """
    i, m = _check_imt_mech(imt, mech)
    dt = np.dtype(dtype).type
    pga4nl = np.exp(_ba08_rock_ln(mag, rjb_km, "pga", m, dt))
    rock_ln = np.log(pga4nl) if i == "pga" else _ba08_rock_ln(mag, rjb_km, i, m, dt)
    median = np.exp(rock_ln + _ba08_site_ln(vs30, pga4nl, i, dt)).astype(dt, copy=False)
    return median, ba08_sigma(m, i)[0]


def site_amplification(vs30, pga_rock_g=None, imt: str = "pga", dtype=np.float32) -> np.ndarray:
    """Amplification factor of ground motion at ``vs30`` relative to Vs30 = 760 m/s rock, the BA08
    site term exp(F_S) (Table 3, eqs 6-13). ``ba08`` already applies it; this helper is for callers
    that scale a rock motion themselves. With ``pga_rock_g`` (the rock PGA, g) the non-linear
    de-amplification of soft sites under strong shaking is included, otherwise only the linear
    part (the weak-motion limit, pga4nl <= 0.03 g, also differs by the constant non-linear term
    bnl*ln(0.6); pass a small rock PGA such as 0.01 to get that limit)."""
    i, _ = _check_imt_mech(imt, "U")
    dt = np.dtype(dtype).type
    return np.exp(_ba08_site_ln(vs30, pga_rock_g, i, dt)).astype(dt, copy=False)


def rjb_point_source(epi_km, mag, finite_fault: bool = False) -> np.ndarray:
    """Joyner-Boore distance (km) for a point-source scenario.

    Default: Rjb = epicentral distance. This is exact for small events and conservative
    (too far) near large ruptures, whose surface projection reaches towards the site. For deep
    in-slab events (Puebla 2017, 57 km) note that BA08 is a shallow-crustal model and Rjb ignores
    depth, so near-epicentre motions are over-predicted.

    ``finite_fault=True``: the rupture is a line of length L = 10**(-2.44 + 0.59 M) km (Wells &
    Coppersmith 1994, subsurface rupture length, all slip types) centred on the epicentre with a
    uniformly random strike, and Rjb is the strike-averaged distance from the site to that line
    (zero depth extent; tabulated once and interpolated). Inside L/2 this is 2r/pi; far away it
    is r - L/pi: a large rupture brings the shaking closer by about a third of its length.
    """
    r = np.abs(np.asarray(epi_km, dtype=np.float64))
    if not finite_fault:
        return r
    half = 0.5 * 10.0 ** (-2.44 + 0.59 * np.asarray(mag, dtype=np.float64))
    u_grid, g_grid = _strike_avg_table()
    du = u_grid[1]
    u = r / half
    # Beyond the table (u > 100 half-lengths) the expansion g(u) = u - 2/pi + 1/(4u) + O(1/u^3)
    # holds to better than 1e-6 half-lengths.
    far = half * (u - 2.0 / math.pi + 0.25 / np.maximum(u, 1.0))
    # Linear interpolation on the uniform table by index arithmetic (no binary search).
    x = np.minimum(u, u_grid[-1]) * (1.0 / du)
    i = np.minimum(x.astype(np.int64), len(u_grid) - 2)
    f = x - i
    near = (g_grid[i] + f * (g_grid[i + 1] - g_grid[i])) * half
    return np.where(u > u_grid[-1], far, near)


_STRIKE_TABLE: list = []


def _strike_avg_table():
    """g(u) = mean over strike of the distance from a point at u (in half-lengths) to a segment
    [-1, 1] rotated by a uniform random angle. For u <= 1 it is 2u/pi; for u > 1, with
    cos(a) = 1/u, g = (2/pi) [integral_0^a sqrt(u^2 + 1 - 2u cos t) dt + 1], the integral by
    32-point Gauss-Legendre (an elliptic integral; relative error < 1e-9). Built once, ~20 ms."""
    if not _STRIKE_TABLE:
        u = np.linspace(0.0, 100.0, 20001)  # uniform, step 0.005 half-lengths
        g = 2.0 * u / math.pi
        big = u > 1.0
        ub = u[big]
        a = np.arccos(1.0 / ub)
        nodes, weights = np.polynomial.legendre.leggauss(32)
        t = 0.5 * a[:, None] * (nodes[None, :] + 1.0)
        integral = 0.5 * a * (np.sqrt(ub[:, None] ** 2 + 1.0 - 2.0 * ub[:, None] * np.cos(t)) @ weights)
        g[big] = 2.0 / math.pi * (integral + 1.0)
        _STRIKE_TABLE.extend([u, g])
    return _STRIKE_TABLE[0], _STRIKE_TABLE[1]


def sample_ground_motion(median, sigma_inter, sigma_intra, rng, n_events: int = 1, zero_noise: bool = False):
    """Lognormal ground motion around ``median`` (any units): for each event one inter-event term
    tau*eta shared by all sites, and per site an independent intra-event term phi*eps.

    Y = median * exp(sigma_inter * eta + sigma_intra * eps), eta, eps ~ N(0, 1) (float32 draws).
    Returns an array shaped like ``median`` for ``n_events == 1``, else (n_events, *median.shape).
    ``zero_noise=True`` returns the median itself (copied and broadcast the same way) and draws
    nothing, so a noise-free run leaves ``rng`` untouched. Same rng state -> same numbers.
    """
    med = np.asarray(median)
    dt = med.dtype if med.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    med = med.astype(dt, copy=False)
    if n_events < 1:
        raise ValueError("n_events must be >= 1, got %r" % (n_events,))
    shape = med.shape if n_events == 1 else (n_events,) + med.shape
    if zero_noise:
        return np.broadcast_to(med, shape).copy()
    eta = rng.standard_normal(n_events, dtype=np.float32).astype(dt, copy=False)
    eps = rng.standard_normal(shape, dtype=np.float32).astype(dt, copy=False)
    if n_events == 1:
        ln_dev = dt.type(sigma_inter) * eta[0] + dt.type(sigma_intra) * eps
    else:
        ln_dev = dt.type(sigma_inter) * eta.reshape((n_events,) + (1,) * med.ndim) + dt.type(sigma_intra) * eps
    return med * np.exp(ln_dev)


# ---------------------------------------------------------------------------------------------
# Intensity: Worden, Gerstenberger, Rhoades & Wald (2012), BSSA 102(1), 204-221, Table 1 (the
# bilinear GMICE without distance/magnitude terms): MMI = c1 + c2 log10(Y) for log10(Y) <= t1,
# else c3 + c4 log10(Y). PGA in cm/s^2, PGV in cm/s. Values as in USGS ShakeMap's WGRW12 class.
# ShakeMap adds an extra segment below MMI 2 that the paper only discusses; we keep the paper's
# two segments and clip to 1..10 (MMI < 2 is irrelevant to warnings).

_WORDEN_PGA = (1.78, 1.55, -1.60, 3.70, 1.57)  # c1, c2, c3, c4, t1 (t2 = 4.22 MMI)
_WORDEN_PGV = (3.78, 1.47, 2.89, 3.16, 0.53)  # t2 = 4.56 MMI


def _worden(y, coeffs, dtype) -> np.ndarray:
    c1, c2, c3, c4, t1 = coeffs
    dt = np.dtype(dtype).type
    ly = np.log10(np.maximum(np.asarray(y, dtype=dt), dt(1e-30)))
    mmi = np.where(ly <= t1, dt(c1) + dt(c2) * ly, dt(c3) + dt(c4) * ly)
    return np.clip(mmi, 1.0, 10.0).astype(dt, copy=False)


def mmi_from_pga(pga_cms2, dtype=np.float32) -> np.ndarray:
    """Instrumental intensity from PGA in cm/s^2 (gal), Worden et al. (2012), clipped to 1..10."""
    return _worden(pga_cms2, _WORDEN_PGA, dtype)


def mmi_from_pgv(pgv_cms, dtype=np.float32) -> np.ndarray:
    """Instrumental intensity from PGV in cm/s, Worden et al. (2012), clipped to 1..10."""
    return _worden(pgv_cms, _WORDEN_PGV, dtype)


# ---------------------------------------------------------------------------------------------
# Analytic warning times (helpers for tests and metrics)


def alert_time_analytic(node_epi_km, depth_km: float, k: int = 1, vp: float = 6.5, latency_s: float = 0.0, model=None) -> float:
    """Time after origin at which an alert goes out: the P arrival at the k-th nearest node (by P
    time) plus ``latency_s`` (detection, telemetry and decision latencies summed). Constant ``vp``
    unless a ``VelocityModel`` is given. Returns inf if there are fewer than k nodes."""
    if k < 1:
        raise ValueError("k must be >= 1, got %r" % (k,))
    d = np.asarray(node_epi_km, dtype=np.float64).ravel()
    if d.size < k:
        return math.inf
    tp = model.p_time(d, depth_km) if model is not None else np.hypot(d, depth_km) / vp
    return float(np.partition(tp, k - 1)[k - 1]) + float(latency_s)


def warning_time_analytic(
    site_epi_km,
    depth_km: float,
    node_epi_km,
    k: int = 1,
    vp: float = 6.5,
    vs: float = 3.7,
    latency_s: float = 0.0,
    model=None,
) -> np.ndarray:
    """Warning time (s) at sites at ``site_epi_km``: the S arrival at the site minus the alert time
    (``alert_time_analytic``). Negative inside the blind zone. Constant velocities unless a
    ``VelocityModel`` is given."""
    t_alert = alert_time_analytic(node_epi_km, depth_km, k=k, vp=vp, latency_s=latency_s, model=model)
    x = np.asarray(site_epi_km, dtype=np.float64)
    ts = model.s_time(x, depth_km) if model is not None else np.hypot(x, depth_km) / vs
    return ts - t_alert


def blind_zone_radius(depth_km, vp, vs, t_alert):
    """Epicentral radius (km) inside which the S wave arrives before the alert at ``t_alert`` s
    after origin, constant velocities: sqrt((vs t_alert)^2 - depth^2), 0 if S has not reached
    the surface by then. ``vp`` does not enter (the P detection is already in ``t_alert``); it is
    accepted so the call reads like the other helpers, and checked to be > vs."""
    if not vp > vs > 0:
        raise ValueError("need vp > vs > 0, got vp=%r vs=%r" % (vp, vs))
    r2 = (np.asarray(vs, dtype=np.float64) * t_alert) ** 2 - np.asarray(depth_km, dtype=np.float64) ** 2
    out = np.sqrt(np.maximum(r2, 0.0))
    return float(out) if np.ndim(out) == 0 else out
