"""Domino datasets: count solver, flags against pixels, evaluation sets, sweeps, real formats."""
import gzip
import os
import pickle
import struct

import h5py
import numpy as np
import pytest

from pathdep.data.dominoes import (EVAL_SETS, build_dominoes, derive_dataset, load_eval_sets, measure,
                                   prepare_dominoes, sample_dominoes, solve_counts, synthetic_side)
from pathdep.data.storage import read_inputs

SYN = {"source": "synthetic", "simplicity": 4.0, "classes": 4, "size": 6, "n_train": 400, "n_test": 200}


def _pools(k, per_class):
    return {s: [np.arange(c * per_class, (c + 1) * per_class) for c in range(k)] for s in ("top", "bottom")}


GRID = [(pt, pb, rt, rb) for pt in (0.0, 0.3, 0.7, 1.0) for pb in (0.0, 0.5, 1.0) for rt in (1.0, 0.6) for rb in (0.9, 0.2)
        if pt + pb >= 1]


@pytest.mark.parametrize("pt,pb,rt,rb", GRID)
def test_count_solver_grid(pt, pb, rt, rb):
    n, k = 997, 5
    c = solve_counts(n, pt, pb)
    assert sum(c.values()) == n and min(c.values()) >= 0
    assert abs((c["both"] + c["top_only"]) / n - pt) <= 0.5 / n + 1e-12
    assert abs((c["both"] + c["bottom_only"]) / n - pb) <= 1.0 / n + 1e-12
    fl = sample_dominoes(np.random.default_rng(1), n, k, {"top": pt, "bottom": pb}, {"top": rt, "bottom": rb},
                         _pools(k, 1000), where="t")
    a = measure(fl)
    for s, p, r in (("top", pt, rt), ("bottom", pb, rb)):
        n_shown = fl[f"{s}_present"].sum()
        assert abs(a[f"prevalence_{s}"] - p) <= 1.0 / n + 1e-12   # exact counts: far inside sampling error
        if n_shown:
            assert abs(a[f"reliability_{s}"] - r) <= 0.5 / n_shown + 1e-12
        else:
            assert p == 0 and np.isnan(a[f"reliability_{s}"])
        # flags consistent: blank sides have label/index -1; unreliable sides have another class
        assert np.all(fl[f"{s}_label"][~fl[f"{s}_present"]] == -1)
        assert np.all(fl[f"{s}_index"][~fl[f"{s}_present"]] == -1)
        shown = fl[f"{s}_present"]
        assert np.all((fl[f"{s}_index"][shown] // 1000) == fl[f"{s}_label"][shown])  # image of that class
    assert np.all(fl["top_present"] | fl["bottom_present"])  # no empty domino
    assert np.ptp(np.bincount(fl["label"], minlength=k)) <= 1  # balanced labels


def test_unreliable_classes_uniform_and_randomized_independent():
    n, k = 20000, 4
    fl = sample_dominoes(np.random.default_rng(0), n, k, {"top": 1, "bottom": 1}, {"top": 0.0, "bottom": 1.0},
                         _pools(k, 10 ** 6), replace=True)
    off = (fl["top_label"] - fl["label"]) % k
    assert np.all(off != 0)
    frac = np.bincount(off, minlength=k)[1:] / n  # uniform over the other k - 1 classes
    assert np.all(np.abs(frac - 1 / 3) < 4 * np.sqrt((1 / 3) * (2 / 3) / n))
    fl = sample_dominoes(np.random.default_rng(0), n, k, {"top": 1, "bottom": 1}, {"top": 1, "bottom": 1},
                         _pools(k, 10 ** 6), replace=True, randomize="top")
    agree = (fl["top_label"] == fl["label"]).mean()
    assert abs(agree - 1 / k) < 4 * np.sqrt(0.25 * 0.75 / n) and np.all(fl["bottom_label"] == fl["label"])


@pytest.mark.parametrize("pt,pb,msg", [(0.3, 0.5, "leave 0.2 of the dominoes with no side"),
                                       (1.2, 1.0, "expected a number in \\[0, 1\\]"), (0.0, 0.0, "no side")])
def test_impossible_requests(pt, pb, msg):
    with pytest.raises(ValueError, match=msg) as e:
        solve_counts(100, pt, pb)
    assert "\n" not in str(e.value)


def test_not_enough_samples_and_bad_keys():
    spec = {"source": "dominoes", "top": dict(SYN, n_train=40), "bottom": SYN, "n_train": 100}
    with pytest.raises(ValueError, match=r"datasets\.d: not enough samples of class \d on the top side"):
        build_dominoes("d", spec)
    build_dominoes("d", dict(spec, replace=True))  # with replacement it is possible
    for bad, match in [({"prevalence": {"top": [0.5, 0.9]}}, r"datasets\.d\.prevalence\.top: .*experiments.<exp>.data"),
                       ({"prevalence": {"top": 0.2, "bottom": 0.3}}, r"datasets\.d\.prevalence: top 0.2 \+ bottom 0.3"),
                       ({"reliabilty": {}}, r"datasets\.d\.reliabilty: unknown key"),
                       ({"top": "nope"}, r"datasets\.d\.top: unknown dataset 'nope'"),
                       ({"classes": {"top": [0, 1], "bottom": [2]}}, r"datasets\.d\.classes:")]:
        with pytest.raises(ValueError, match=match):
            build_dominoes("d", dict(spec, **bad), datasets={"x": {"source": "sklearn_digits"}})


def test_flags_match_pixels(tmp_path):
    spec = {"source": "dominoes", "top": SYN, "bottom": dict(SYN, simplicity=1.0, seed=3, size=4),
            "prevalence": {"top": 0.7, "bottom": 0.6}, "reliability": {"top": 0.8, "bottom": 1.0},
            "n_train": 300, "n_test": 100, "n_eval": 80, "seed": 5}
    b = build_dominoes("d", spec)
    top, bot = synthetic_side(SYN), synthetic_side(dict(SYN, simplicity=1.0, seed=3, size=4))
    tr = b["splits"]["train"]
    # shown top blocks are exactly the side image drawn, of class top_label
    sel = np.flatnonzero(tr["top_present"])
    np.testing.assert_allclose(tr["x"][sel, :, :6], top["x_train"][tr["top_index"][sel]].astype(np.float32), rtol=1e-6)
    assert np.all(top["y_train"][tr["top_index"][sel]] == tr["top_label"][sel])
    selb = np.flatnonzero(tr["bottom_present"])
    assert np.all(bot["y_train"][tr["bottom_index"][selb]] == tr["bottom_label"][selb])
    prepare_dominoes("d", spec, tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5") as f:
        blank = f.attrs["blank_value"][0]
        x, y = read_inputs(f, "train/x"), f["train/y"][()]
        tp, bp, tl, bl = (f[f"train/{k}"][()] for k in ("top_present", "bottom_present", "top_label", "bottom_label"))
        assert x.shape == (300, 1, 12, 6) and tuple(f.attrs["side_shape"]) == (1, 6, 6)
        np.testing.assert_allclose(x[~tp, :, :6], blank, atol=1e-6)    # blank sides hold the blank value
        np.testing.assert_allclose(x[~bp, :, 6:], blank, atol=1e-6)
        assert not np.any(np.all(np.isclose(x[tp, :, :6], blank, atol=1e-6), axis=(1, 2, 3)))
        assert np.all((bl == y)[bp])                                  # bottom reliability 1
        assert abs((tl == y)[tp].mean() - 0.8) <= 0.5 / tp.sum()
        assert f.attrs["achieved_prevalence_top"] == pytest.approx(tp.mean())
        assert f.attrs["achieved_reliability_top"] == pytest.approx((tl == y)[tp].mean())
        np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    ev = load_eval_sets(tmp_path / "d.h5")
    assert set(EVAL_SETS) <= set(ev)
    assert np.all(ev["top_only"]["top_present"] & ~ev["top_only"]["bottom_present"])
    assert np.all(ev["bottom_only"]["bottom_present"] & ~ev["bottom_only"]["top_present"])
    for e in ("both", "top_only"):
        assert np.all(ev[e]["top_label"][ev[e]["top_present"]] == ev[e]["y"][ev[e]["top_present"]])
    assert np.all(ev["top_randomized"]["bottom_label"] == ev["top_randomized"]["y"])
    assert 0.1 < (ev["top_randomized"]["top_label"] == ev["top_randomized"]["y"]).mean() < 0.45
    # the file loads as an ordinary dataset
    from pathdep.data import load_dataset

    ds = load_dataset(tmp_path / "d.h5")
    assert ds.in_shape == (1, 12, 6) and ds.out_dim == 4


def test_class_subset_resize_and_channels(tmp_path):
    # grey 6x6 (4 classes) on top, 3-channel-free synthetic 2-channel? -> grey repeated to c
    spec = {"source": "dominoes", "top": dict(SYN, channels=1), "bottom": dict(SYN, channels=3, size=8, classes=5),
            "classes": {"top": [0, 1], "bottom": [1, 4]}, "n_train": 100, "n_test": 40, "n_eval": 40}
    b = build_dominoes("d", spec)
    tr = b["splits"]["train"]
    assert tr["x"].shape == (100, 3, 16, 8) and b["k"] == 2 and b["classes"] == ["0|1", "1|4"]
    s = tr["top_present"]
    assert np.allclose(tr["x"][s, 0, :8], tr["x"][s, 1, :8])  # grey repeated to 3 channels


def test_synthetic_simplicity_controls_separability():
    from sklearn.linear_model import LogisticRegression

    accs = []
    for s in (0.0, 1.0, 4.0):
        d = synthetic_side({"simplicity": s, "classes": 2, "size": 5, "n_train": 2000, "n_test": 2000})
        clf = LogisticRegression(max_iter=500).fit(d["x_train"].reshape(2000, -1), d["y_train"])
        accs.append(clf.score(d["x_test"].reshape(2000, -1), d["y_test"]))
        np.testing.assert_allclose(np.linalg.norm(d["means"][0] - d["means"][1]), s, rtol=1e-12)
    from scipy.stats import norm

    assert abs(accs[0] - 0.5) < 0.05 and abs(accs[1] - norm.cdf(0.5)) < 0.05 and accs[2] > 0.95


def test_derived_names_distinct_and_stable():
    datasets = {"dom": {"source": "dominoes", "top": "a", "bottom": "b", "prevalence": {"top": 1.0, "bottom": 1.0}},
                "a": {"source": "sklearn_digits"}, "b": {"source": "synthetic"}}
    names = []
    for p in (0.6, 0.8, 1.0, 0.8):
        run = {"dataset": "dom", "data": {"prevalence": {"top": p}}}
        names.append(derive_dataset(run, datasets)["dataset"])
    assert names[1] == names[3] and len(set(names)) == 3 and all(n.startswith("dom-") for n in names)
    assert datasets[names[0]]["prevalence"] == {"top": 0.6, "bottom": 1.0} and datasets[names[0]]["top"] == "a"
    assert derive_dataset({"dataset": "dom"}, datasets)["dataset"] == "dom"


# ----------------------------------------------------------------------------- real formats


def _idx(arr):
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes()


def test_torchvision_mnist_over_cifar(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tvcifar

    rng = np.random.default_rng(0)
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(40) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": (np.arange(60) % 10).astype(np.uint8)}
    for k, v in arrays.items():
        (raw / k).write_bytes(_idx(v))
    d = tmp_path / "tv" / "cifar-10-batches-py"
    d.mkdir()
    for i in range(1, 6):
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({"labels": [1, 9] * 4, "data": rng.integers(0, 256, (8, 3072), dtype=np.uint8)}, f)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"labels": list(np.arange(60) % 10), "data": rng.integers(0, 256, (60, 3072), dtype=np.uint8)}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    monkeypatch.setattr(tvcifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    datasets = {"mnist": {"source": "torchvision", "dataset": "mnist", "root": str(tmp_path / "tv")},
                "cifar": {"source": "torchvision", "dataset": "cifar10", "root": str(tmp_path / "tv")}}
    spec = {"source": "dominoes", "top": "mnist", "bottom": "cifar", "classes": {"top": [0, 1], "bottom": [1, 9]},
            "n_train": 8, "n_test": 2, "n_eval": 2}
    prepare_dominoes("shah", spec, tmp_path / "s.h5", datasets=datasets)
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["train/x"].shape == (8, 3, 64, 32) and list(f.attrs["classes"]) == ["0 - zero|automobile",
                                                                                     "1 - one|truck"]
        assert f.attrs["out_dim"] == 2


def test_config_sweeps_dataset_parameters():
    from pathdep.config import ConfigError, validate

    cfg = {"seed": 0, "device": "cpu",
           "datasets": {"digits": {"source": "sklearn_digits"}, "syn": {"source": "synthetic", "simplicity": 2.0},
                        "dom": {"source": "dominoes", "top": "digits", "bottom": "syn", "n_train": 500}},
           "defaults": {"dataset": "dom", "model": {"hidden": [8]}, "training": {"batch_size": 50}},
           "experiments": {"prev": {"data": {"prevalence": {"top": [0.5, 0.8]}}},
                           "rel": {"data": {"prevalence": {"top": 0.8}, "reliability": {"bottom": [0.5, 1.0]}}},
                           "simp": {"data": {"bottom": {"source": "synthetic", "simplicity": [0.5, 4.0]}}}}}
    runs = validate(cfg)
    assert [r["run"] for r in runs["prev"]] == ["ptop0.5", "ptop0.8"]
    assert [r["run"] for r in runs["rel"]] == ["rbottom0.5", "rbottom1"]
    assert [r["run"] for r in runs["simp"]] == ["sbottom0.5", "sbottom4"]
    names = [r["dataset"] for rs in runs.values() for r in rs]
    assert len(set(names)) == 6 and all(n.startswith("dom-") for n in names)
    # prev/ptop0.8 and rel/rbottom1 resolve to the same block: the same prepared dataset
    assert runs["prev"][1]["dataset"] == runs["rel"][1]["dataset"] or \
        runs["prev"][1]["dataset_spec"] != runs["rel"][1]["dataset_spec"]
    assert runs["simp"][0]["dataset_spec"]["bottom"]["simplicity"] == 0.5
    assert validate(cfg)["prev"][0]["dataset"] == runs["prev"][0]["dataset"]  # stable names
    cfg["experiments"]["prev"]["data"]["prevalence"]["bottom"] = 0.2
    with pytest.raises(ConfigError, match=r"^config: experiments\.prev\.data\.prevalence: top 0\.5 \+ bottom 0\.2"):
        validate(cfg)
