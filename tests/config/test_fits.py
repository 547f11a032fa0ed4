"""pathdep.config.fits: defaults, per-experiment overrides, one-line errors."""

from __future__ import annotations

import pytest

from pathdep.analysis.fits import MODELS
from pathdep.config.errors import ConfigError
from pathdep.config.fits import DEFAULTS, FIGURES, check, resolve


def test_resolve_defaults_overrides_and_errors():
    s = resolve(None)
    assert s == DEFAULTS and set(s["models"]) <= set(MODELS)
    s = resolve({"space": "linear", "experiments": {"a": {"models": ["sqrt"]}}}, "a")
    assert s["space"] == "linear" and s["models"] == ["sqrt"] and s["quantities"] == DEFAULTS["quantities"]
    for bad, key in [({"model": ["sqrt"]}, "fits.model"), ({"models": ["cubic"]}, "fits.models"),
                     ({"space": "loglog"}, "fits.space"), ({"quantities": ["distance"]}, "fits.quantities")]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")) as e:
            resolve(bad)
        assert "\n" not in str(e.value)


def test_check_names_the_key_where_it_was_written():
    config = {"experiments": {"a": {}}, "fits": {"experiments": {"a": {"space": "loglog"}}}}
    with pytest.raises(ConfigError, match=r"^config: fits\.experiments\.a\.space: "):
        check(config, {})
    with pytest.raises(ConfigError, match=r"^config: fits\.models: "):
        check({"experiments": {"a": {}}, "fits": {"models": ["cubic"]}}, {})


def test_figure_names_keep_their_files():
    assert {n: stem for n, (stem, _) in FIGURES.items()} == {
        "fits": "{exp}_fits", "divergence_vs": "divergence_vs_{exp}", "scaling": "scaling_{exp}"}


def test_new_keys_checked_and_swept_experiments():
    from pathdep.config.fits import SWEEP_FIGURES, swept_experiments

    s = resolve({"weights": "points", "fit_fraction": 0.5, "tolerance": 0.2})
    assert (s["weights"], s["fit_fraction"], s["tolerance"]) == ("points", 0.5, 0.2)
    for bad, key in [({"weights": "log"}, "fits.weights"), ({"fit_fraction": 1.0}, "fits.fit_fraction"),
                     ({"tolerance": 0}, "fits.tolerance"), ({"max_starts": 0}, "fits.max_starts")]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            resolve(bad)
    runs = {"lr": [{"swept": {"optimizer.lr": 0.1}}, {"swept": {"optimizer.lr": 0.3}}],
            "sched": [{"swept": {}}], "one": [{"swept": {"optimizer.lr": 0.1}}]}
    assert swept_experiments(runs, ["sched", "lr", "one"]) == ["lr"]
    assert set(SWEEP_FIGURES) < set(FIGURES) and "fits" not in SWEEP_FIGURES
