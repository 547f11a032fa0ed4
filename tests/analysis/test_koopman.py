"""Known answers of pathdep.analysis.koopman (DMD spectra, W1, conjugacy test) and the toy."""

import numpy as np
import pytest

from pathdep.analysis.koopman import (
    DegenerateSpectrumError, check_spectrum, choose_rank, conjugacy_test, delay_embed,
    koopman_eigenvalues, spectral_distance, transport_plan, window_bounds, windowed_spectra,
)
from pathdep.analysis.koopman_toy import toy_study, toy_trajectories


def _match(got, want):
    """Max |got - want| after optimal pairing (the spectra's order is irrelevant)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    return spectral_distance(got, want) * len(got)  # sum of matched errors >= max error


def _linear_trajectories(a, n=3, t=30, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    d = a.shape[0]
    x = np.empty((n, t, d))
    x[:, 0] = rng.standard_normal((n, d))
    for k in range(1, t):
        x[:, k] = x[:, k - 1] @ a.T + noise * rng.standard_normal((n, d))
    return x


def _system(eigs, seed=1):
    """A real matrix with the given eigenvalues (complex ones as conjugate pairs)."""
    blocks = []
    for e in eigs:
        if np.iscomplex(e):
            blocks.append(np.array([[e.real, -e.imag], [e.imag, e.real]]))
        else:
            blocks.append(np.array([[float(np.real(e))]]))
    d = sum(b.shape[0] for b in blocks)
    lam = np.zeros((d, d))
    i = 0
    for b in blocks:
        lam[i:i + b.shape[0], i:i + b.shape[0]] = b
        i += b.shape[0]
    v = np.random.default_rng(seed).standard_normal((d, d)) + 2 * np.eye(d)
    return v @ lam @ np.linalg.inv(v)


LIN_EIGS = np.array([0.95, 0.7, -0.4, 0.6 + 0.3j, 0.6 - 0.3j])


def test_delay_embed_rows():
    x = np.arange(2 * 5 * 2, dtype=float).reshape(2, 5, 2)
    z = delay_embed(x, 2)
    assert z.shape == (2, 3, 6)
    np.testing.assert_array_equal(z[1, 1], np.concatenate([x[1, 1], x[1, 2], x[1, 3]]))


@pytest.mark.parametrize("n_delays", [0, 1, 3])
def test_linear_system_eigenvalues_recovered(n_delays):
    a = _system([0.95, 0.7, -0.4, 0.6 + 0.3j])
    x = _linear_trajectories(a, n=4, t=25)
    ev = koopman_eigenvalues(x, n_delays=n_delays)      # None: numerical rank (5 with delays)
    assert len(ev) == 5
    assert _match(ev, LIN_EIGS) < 1e-10


def test_scalar_observable_delays_recover_spectrum():
    """One scalar observable, delay-embedded, recovers all eigenvalues (Takens/Hankel DMD)."""
    a = _system([0.9, 0.5, -0.3])
    x = _linear_trajectories(a, n=2, t=40)
    ev = koopman_eigenvalues(x, n_delays=2, observable=lambda s: s.sum(axis=-1, keepdims=True))
    assert _match(ev, [0.9, 0.5, -0.3]) < 1e-10


def test_modes_are_eigenvectors_of_linear_map():
    a = _system([0.95, 0.7, -0.4, 0.6 + 0.3j])
    ev, modes = koopman_eigenvalues(_linear_trajectories(a), return_modes=True)
    np.testing.assert_allclose(a @ modes, modes * ev, atol=1e-10)


def _poly_map(x0, a, b, c, t):
    x = np.empty((x0.shape[0], t, 2))
    x[:, 0] = x0
    for k in range(1, t):
        x1, x2 = x[:, k - 1, 0], x[:, k - 1, 1]
        x[:, k, 0] = a * x1
        x[:, k, 1] = b * x2 + c * x1 ** 2
    return x


def _poly_dict(s):
    return np.concatenate([s, s[..., :1] ** 2], axis=-1)


def test_nonlinear_map_invariant_subspace_exact():
    a, b, c = 0.9, 0.5, 1.3
    x = _poly_map(np.random.default_rng(2).standard_normal((3, 2)), a, b, c, 20)
    ev = koopman_eigenvalues(x, observable=_poly_dict)
    assert _match(ev, [a, b, a * a]) < 1e-10
    # without the dictionary the state alone is not invariant: DMD is biased
    assert _match(koopman_eigenvalues(x), [a, b]) > 1e-3


def test_change_of_coordinates_leaves_spectrum():
    """y = h(x) with h(x1, x2) = (x1, x2 + k x1^2): G = h F h^-1 is again of the polynomial
    form, the trajectories differ, the spectrum {a, b, a^2} does not."""
    a, b, c, k = 0.9, 0.5, 1.3, 0.7
    x = _poly_map(np.random.default_rng(3).standard_normal((3, 2)), a, b, c, 20)
    y = x.copy()
    y[..., 1] += k * x[..., 0] ** 2
    assert np.abs(y - x).max() > 0.1
    ev_x = koopman_eigenvalues(x, observable=_poly_dict)
    ev_y = koopman_eigenvalues(y, observable=_poly_dict)
    assert spectral_distance(ev_x, ev_y) < 1e-10


def test_cubic_change_of_coordinates_with_dictionary():
    """y = x + 0.1 x^3 componentwise of a linear diagonal system; the dictionary h^-1(y)
    spans an invariant subspace in y coordinates: spectrum recovered exactly."""
    lam = np.array([0.9, 0.6])
    x = np.empty((4, 30, 2))
    x[:, 0] = np.random.default_rng(4).uniform(-2, 2, (4, 2))
    for k in range(1, 30):
        x[:, k] = x[:, k - 1] * lam
    y = x + 0.1 * x ** 3

    def h_inv(s):  # real root of 0.1 z^3 + z - s = 0 (Cardano; monotone so unique)
        p, q = 10.0, -10.0 * s
        disc = np.sqrt(q ** 2 / 4 + p ** 3 / 27)
        return np.cbrt(-q / 2 + disc) + np.cbrt(-q / 2 - disc)

    np.testing.assert_allclose(h_inv(y), x, atol=1e-11)
    assert np.abs(y - x).max() > 0.5
    assert _match(koopman_eigenvalues(y, observable=h_inv), lam) < 1e-10
    assert _match(koopman_eigenvalues(y), lam) > 1e-4    # the raw y subspace is not invariant


def test_rank_choices():
    s = np.array([3.0, 2.0, 1.0])
    assert choose_rank(s, None, 10) == 3
    assert choose_rank(s, 2, 10) == 2
    assert choose_rank(s, 7, 10) == 3
    assert choose_rank(s, 0.9, 10) == 2          # energies 9/14, 13/14, 1
    assert choose_rank(s, 0.6, 10) == 1
    with pytest.raises(ValueError, match="rank"):
        choose_rank(s, 1.5, 10)
    a = _system([0.95, 0.7, -0.4, 0.6 + 0.3j])
    assert len(koopman_eigenvalues(_linear_trajectories(a), rank=3)) == 3


def test_w1_identity_symmetry_and_known_values():
    rng = np.random.default_rng(5)
    e1 = rng.standard_normal(7) + 1j * rng.standard_normal(7)
    e2 = rng.standard_normal(7) + 1j * rng.standard_normal(7)
    e3 = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    assert spectral_distance(e1, e1[::-1]) == 0.0
    assert spectral_distance(e1, e2) == pytest.approx(spectral_distance(e2, e1), abs=1e-14)
    assert spectral_distance(e1, e3) == pytest.approx(spectral_distance(e3, e1), abs=1e-12)
    assert spectral_distance(e1, e2) > 0
    # equal counts: {0, 1} vs {i, 1+i}: each moves by 1
    assert spectral_distance([0, 1], [1j, 1 + 1j]) == pytest.approx(1.0)
    # crossing assignment is not optimal: {0, 2} vs {3, 1} -> mean 1
    assert spectral_distance([0, 2], [3, 1]) == pytest.approx(1.0)
    # unequal counts: {0, 1} (mass 1/2) vs {0, 0.5, 1} (mass 1/3): W1 = 1/6
    w, plan = transport_plan([0, 1], [0, 0.5, 1])
    assert w == pytest.approx(1 / 6, abs=1e-12)
    np.testing.assert_allclose(plan.sum(axis=1), [0.5, 0.5])
    np.testing.assert_allclose(plan.sum(axis=0), [1 / 3] * 3)
    # {0} vs {1, i}: both at distance 1
    assert spectral_distance([0], [1, 1j]) == pytest.approx(1.0)
    # duplicating a set leaves its measure, so the LP path equals the assignment path
    assert spectral_distance(e1, np.concatenate([e2, e2])) == pytest.approx(spectral_distance(e1, e2), abs=1e-9)


def test_check_spectrum_rejects_degenerate():
    ok = np.array([0.9, 0.5 + 0.1j, 0.5 - 0.1j])
    np.testing.assert_array_equal(check_spectrum(ok), ok)
    with pytest.raises(DegenerateSpectrumError, match="within 0.001 of 1"):
        check_spectrum([1.0, 1.0 + 2e-4, 0.9995])
    with pytest.raises(DegenerateSpectrumError, match="fewer than 2"):
        check_spectrum([0.5])
    with pytest.raises(DegenerateSpectrumError, match="not finite"):
        check_spectrum([0.5, np.nan])
    with pytest.raises(DegenerateSpectrumError, match="collapsed"):
        conjugacy_test([[1.0, 1.0]] * 2, [ok, ok])


def test_conjugacy_test_separates_systems():
    a = _system([0.9, 0.6, 0.3 + 0.4j])
    b = _system([0.9, 0.2, -0.5 + 0.4j])

    def spectra(m, seeds):
        return [koopman_eigenvalues(_linear_trajectories(m, n=2, t=40, seed=s, noise=0.05), rank=4)
                for s in seeds]

    same = conjugacy_test(spectra(a, range(6)), spectra(a, range(6, 12)), n_perm=500)
    diff = conjugacy_test(spectra(a, range(6)), spectra(b, range(6, 12)), n_perm=500)
    assert same["p_value"] > 0.05
    assert diff["p_value"] < 0.01
    assert diff["w1_between"] > 3 * diff["w1_within"]
    with pytest.raises(ValueError, match=">= 2 replicate"):
        conjugacy_test(spectra(a, [0]), spectra(b, [1, 2]))


def test_toy_omd_ogd_conjugate_bisection_not():
    traj = toy_trajectories()
    x, u = traj["OMD"], traj["OGD"]
    gap = np.abs(x - np.exp(u)).max()
    assert 0 < gap < 0.05                         # equivalent to O(eta^2) per step
    assert np.abs(x - u).max() > 1.0              # but the observed coordinates differ
    w = np.abs(np.diff(traj["BM"], axis=1))       # the bracket halves: steps shrink by 2
    assert np.all(w[:, 40] <= 0.5 ** 38 * 4)
    res = toy_study(n_perm=500)
    rows = {(r["a"], r["b"]): r for r in res["table"]}
    omd_ogd, omd_bm, ogd_bm = rows["OMD", "OGD"], rows["OMD", "BM"], rows["OGD", "BM"]
    assert omd_ogd["w1"] < 0.1 * min(omd_bm["w1"], ogd_bm["w1"])
    assert omd_ogd["p_value"] > 0.05
    assert omd_bm["p_value"] < 0.05 and ogd_bm["p_value"] < 0.05
    assert len(res["eigenvalues"]["OMD"]) == 10   # full rank: 2 x (4 + 1) observables


def _rotations(pairs, seed):
    """Real 4x4 map with eigenvalues r e^{+-i theta} for each (r, theta), in random coordinates."""
    blocks = [r * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) for r, t in pairs]
    a = np.zeros((4, 4))
    a[:2, :2], a[2:, 2:] = blocks
    v = np.random.default_rng(seed).standard_normal((4, 4)) + 2 * np.eye(4)
    return v @ a @ np.linalg.inv(v)


def test_window_bounds():
    steps = np.arange(0, 100)
    assert [b[:2] for b in window_bounds(steps, 25)] == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert [b[2:] for b in window_bounds(steps, 40, 30)] == [(0, 40), (30, 70), (60, 100)]
    assert [b[2:] for b in window_bounds(steps[:90], 40, 30)] == [(0, 40), (30, 70)]   # 60-100 incomplete
    ev2 = np.arange(0, 101, 2)                                   # every 2 steps, 0..100
    b = window_bounds(ev2, 50)
    assert [x[:2] for x in b] == [(0, 25), (25, 50)] and all(np.all(ev2[i0:i1] // 50 == j)
                                                             for j, (i0, i1, *_) in enumerate(b))
    assert window_bounds(steps, 2, need=3) == []                 # too few samples per window
    with pytest.raises(ValueError, match="koopman.windows"):
        window_bounds(steps, 0)


def test_windowed_spectra_detect_a_switch_of_dynamics():
    """x' = A x for 60 steps, then x' = B x: windows within a regime share a spectrum."""
    ev_a = [(0.99, 0.3), (0.97, 1.1)]
    ev_b = [(0.98, 0.7), (0.995, 2.0)]
    a, b = _rotations(ev_a, 1), _rotations(ev_b, 2)
    want_a = np.array([r * np.exp(s * 1j * t) for r, t in ev_a for s in (1, -1)])
    want_b = np.array([r * np.exp(s * 1j * t) for r, t in ev_b for s in (1, -1)])
    rng = np.random.default_rng(0)
    x = np.empty((3, 120, 4))
    x[:, 0] = rng.standard_normal((3, 4))
    for t in range(1, 120):
        x[:, t] = x[:, t - 1] @ (a if t <= 60 else b).T           # the pair (59 -> 60) is A's
    bounds = window_bounds(np.arange(120), 20)
    spectra, notes, d = windowed_spectra(x, bounds, rank=4)
    assert len(spectra) == 6 and notes == [""] * 6
    for j, e in enumerate(spectra):
        assert spectral_distance(e, want_a if j < 3 else want_b) < 1e-8
    regime = np.array([0, 0, 0, 1, 1, 1])
    same = regime[:, None] == regime[None, :]
    assert np.all(d[same] < 1e-8)
    np.testing.assert_allclose(d[~same], spectral_distance(want_a, want_b), rtol=1e-7)
    assert d[~same].min() > 1e6 * d[same].max()
    np.testing.assert_array_equal(d, d.T)
    # a window straddling the switch is neither regime: with stride 10 the 50-70 window is far
    # from both
    s2, _, d2 = windowed_spectra(x, window_bounds(np.arange(120), 20, 10), rank=4)
    k = [i for i, b in enumerate(window_bounds(np.arange(120), 20, 10)) if b[2] == 50][0]
    assert min(spectral_distance(s2[k], want_a), spectral_distance(s2[k], want_b)) > 1e-3


def test_windowed_spectra_flag_degenerate_windows():
    x = _linear_trajectories(_system([0.9, 0.5, -0.4]), n=2, t=40)
    x[:, :20] = 1.0                                              # a constant window: no spectrum
    spectra, notes, d = windowed_spectra(x, window_bounds(np.arange(40), 20), rank=3)
    assert spectra[0] is None and "fewer than 2" in notes[0]
    assert spectral_distance(spectra[1], [0.9, 0.5, -0.4]) < 1e-8 and notes[1] == ""
    assert np.isnan(d[0]).all() and np.isnan(d[:, 0]).all() and d[1, 1] == 0.0


@pytest.mark.parametrize("n,m", [(6, 6), (7, 5), (40, 50), (3, 11)])
def test_network_simplex_equals_linear_program(n, m):
    """POT's network simplex (default for unequal counts) = the dense transport LP to 1e-12."""
    rng = np.random.default_rng(n * 100 + m)
    a = rng.normal(size=n) + 1j * rng.normal(size=n)
    b = rng.normal(size=m) + 1j * rng.normal(size=m)
    w_lp, plan_lp = transport_plan(a, b, method="linprog")
    for method in ("auto", "emd"):
        w, plan = transport_plan(a, b, method=method)
        assert abs(w - w_lp) < 1e-12
        np.testing.assert_allclose(plan.sum(1), 1.0 / n, atol=1e-14)
        np.testing.assert_allclose(plan.sum(0), 1.0 / m, atol=1e-14)
    assert spectral_distance(a, b) == transport_plan(a, b)[0]
    with pytest.raises(ValueError, match="method"):
        transport_plan(a, b, method="sinkhorn")
