"""pathdep.core.context.RunContext: one build gives what the stages used to assemble by hand
(model, layout, optimiser per member, schedule, data on the device), with the run's dtype."""

import numpy as np
import pytest
import torch
from helpers import make_dataset, tiny_run

from pathdep.core.context import RunContext, build, dataset_meta, eval_subset, member_hparams


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), "digits")


def test_context_matches_the_individual_helpers(data):
    run = tiny_run({"perturbation": {"target": "hyperparameter", "hparam": "lr", "epsilon": 0.5, "members": 2},
                    "optimizer": {"lr": 0.1, "momentum": 0.9}, "training": {"dtype": "float64"}})
    ctx = RunContext.build(run, data, "cpu")
    meta = dataset_meta(data)
    _, layout, _ = build(run, meta, torch.float64)
    assert ctx.dtype == torch.float64 and ctx.device == torch.device("cpu")
    assert ctx.layout == layout and ctx.meta == meta and ctx.task == "classification" and ctx.loss == "cross_entropy"
    assert ctx.data is None  # not loaded unless asked
    _, hps = member_hparams(run)
    assert ctx.hps == hps and [h["lr"] for h in hps] == pytest.approx([0.1, 0.125, 0.15])
    hp = ctx.hparams()
    assert hp["lr"].dtype == torch.float64 and hp["lr"].tolist() == pytest.approx([0.1, 0.125, 0.15])
    assert float(ctx.hparams(2)["lr"]) == pytest.approx(0.15)
    sched = ctx.schedule([5])
    assert sched.n_steps == meta["n_train"] // 32 and sched.shared
    x, y = ctx.train_tensors()
    assert ctx.data is not None and x.dtype == torch.float64 and len(x) == meta["n_train"] == len(y)
    # the apply of the context is the model's forward on flat weights
    w = torch.cat([p.detach().reshape(-1) for p in ctx.module.parameters()])
    np.testing.assert_array_equal(ctx.apply(w, x[:5]).detach().numpy(), ctx.module(x[:5]).detach().numpy())


def test_dtype_override_and_step_is_pure(data):
    run = tiny_run()
    ctx = RunContext.build(run, data, "cpu", dtype="float64", load=True)
    assert ctx.dtype == torch.float64 and ctx.data is not None
    step = ctx.step()
    w = torch.cat([p.detach().reshape(-1) for p in ctx.module.parameters()])
    st = ctx.opt.init(w)
    x, y = ctx.train_tensors()
    a = step(w, st, x[:32], y[:32], ctx.hparams(0))
    b = step(w, st, x[:32], y[:32], ctx.hparams(0))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], w)


def test_eval_subset_is_seeded_sorted_and_capped():
    a, b = eval_subset(100, 10, 3), eval_subset(100, 10, 3)
    assert np.array_equal(a, b) and np.all(np.diff(a) > 0) and len(a) == 10
    assert not np.array_equal(a, eval_subset(100, 10, 4))
    assert np.array_equal(eval_subset(5, 10, 0), np.arange(5))


def test_missing_dataset_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_dataset"):
        RunContext.build(tiny_run(), tmp_path / "nope.h5", "cpu")
