"""Analysis families on transformers (issue 20 item 6), and the families' refusals at config
validation for model kinds they cannot serve (issues 19/20: one line naming the key).

* Lyapunov: on a tiny transformer (D = 168) Benettin with k = D jvp tangents equals the
  dense-Jacobian QR, the exponents sum to the mean log|det J|, and they come out ordered;
  on a small transformer (pre-LN, GELU) k = 8 jvp tangents equal central differences.
* NTK: the empirical NTK of a transformer equals a dense per-sample-Jacobian ``J J^T`` of the
  torch.nn module.
* Config: ``ntk.path_experiment`` naming a transformer experiment, ``training.fast: true``
  written for a ResNet or a transformer, a transformer on images (dominoes), a ResNet on
  tokens and a BatchNorm ResNet on dominoes each fail validation with one line naming the key.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lyapunov_maps import check_full_spectrum
from pathdep.analysis.lyapunov_benettin import benettin
from pathdep.analysis.ntk import empirical_ntk
from pathdep.config.errors import ConfigError
from pathdep.config.validation import validate
from pathdep.core.dynamics import make_step
from pathdep.core.models import Layout, build_model, make_apply
from pathdep.core.optim import Optimizer

DT = torch.float64
TINY = Path(__file__).parents[1] / "data" / "config_tiny.yaml"


def _transformer(vocab, d, heads, d_mlp, layernorm="pre", activation="gelu", seed=0):
    torch.manual_seed(seed)
    spec = {"kind": "transformer", "n_layer": 1, "n_head": heads, "d_model": d, "d_mlp": d_mlp,
            "layernorm": layernorm, "tied": False, "activation": activation, "context": 3}
    m = build_model(spec, (3,), vocab).double()
    layout = Layout.from_module(m)
    w = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    return m, layout, w


def _map(m, layout, w, vocab, lr, n_batches=4, batch=8):
    g = torch.Generator().manual_seed(1)
    X = torch.randint(0, vocab, (n_batches, batch, 3), generator=g)
    Y = torch.randint(0, vocab, (n_batches, batch), generator=g)
    opt = Optimizer("sgd")
    hp = {k: torch.tensor(v, dtype=DT) for k, v in (("lr", lr), ("momentum", 0.0), ("dampening", 0.0),
                                                    ("weight_decay", 0.0))}
    step, st = make_step(make_apply(m, layout), "cross_entropy", opt), opt.init(w)
    return lambda v, t: step(v, st, X[t % n_batches], Y[t % n_batches], hp)[0]


def test_lyapunov_jvp_spectrum_of_a_tiny_transformer_equals_dense_jacobian_qr():
    m, layout, w = _transformer(vocab=5, d=4, heads=2, d_mlp=4, layernorm="none", activation="tanh")
    F = _map(m, layout, w, 5, lr=0.2)
    D = w.numel()
    ex = check_full_spectrum(F, w, 25, 5, sum_tol=1e-9)     # = dense QR; sum = mean log|det J| (Liouville)
    rank = np.corrcoef(np.arange(D), np.argsort(np.argsort(-ex)))[0, 1]
    assert rank > 0.9 and ex[-1] == ex.min() and ex[-1] < ex[0] - 0.05


def test_lyapunov_k8_small_transformer_jvp_equals_central_differences():
    m, layout, w = _transformer(vocab=13, d=16, heads=2, d_mlp=32)
    F = _map(m, layout, w, 13, lr=0.1)
    h = 1e-6

    def fd_push(x, Q, t):
        return F(x, t), torch.stack([(F(x + h * q, t) - F(x - h * q, t)) / (2 * h) for q in Q.T], 1)

    a = benettin(F, w, 8, 8, seed=1)
    b = benettin(F, w, 8, 8, seed=1, push=fd_push)
    assert torch.isfinite(a.exponents).all()
    assert (a.exponents - b.exponents).abs().max() < 1e-8
    assert a.exponents.abs().max() > 1e-6


def test_empirical_ntk_of_a_transformer_equals_dense_jjt():
    m, layout, w = _transformer(vocab=13, d=16, heads=2, d_mlp=32)
    x = torch.randint(0, 13, (5, 3), generator=torch.Generator().manual_seed(2))
    th = empirical_ntk(make_apply(m, layout), w, x)
    params = list(m.parameters())
    rows = []
    for i in range(len(x)):
        out = m(x[i:i + 1])[0]
        rows.append(torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(o, params, retain_graph=True)])
                                 for o in out]))
    J = torch.stack(rows)
    dense = torch.einsum("aop,bqp->aboq", J, J)
    assert th.shape == (5, 5, 13, 13)
    assert (th - dense).abs().max() <= 1e-10 * dense.abs().max()


# ----------------------------------------------------------------- refusals at validation

TRANSFORMER = {"kind": "transformer", "n_layer": 1, "n_head": 2, "d_model": 16, "d_mlp": 32, "layernorm": "none",
               "tied": False}
RESNET = {"kind": "resnet", "depth": 8, "norm": "none"}


def _config(**experiments) -> dict:
    c = yaml.safe_load(TINY.read_text())
    c["datasets"]["mod13"] = {"source": "modular_arithmetic", "p": 13, "op": "add", "train_fraction": 0.5,
                              "seed": 0}
    c["defaults"]["model"] = {"kind": "mlp", "hidden": [16]}
    c["experiments"] = experiments
    for block in ("geometry", "fits", "lyapunov"):
        c.pop(block, None)
    return c


def _refused(config, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as exc:
        validate(copy.deepcopy(config))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("config: ")
    return msg


def test_ntk_path_experiment_refuses_a_transformer_and_takes_a_resnet():
    tr = {"dataset": "mod13", "model": TRANSFORMER, "init": {"scheme": "default"}}
    res = {"model": {**RESNET, "width": [1, 2]}, "init": {"scheme": "default"}}
    c = _config(tr=tr, res=res)
    c["ntk"] = {"path_experiment": "tr", "dataset": "digits"}
    msg = _refused(c, r"^config: ntk\.path_experiment: expected an experiment of model kind mlp or resnet")
    assert "transformer" in msg and "'tr'" in msg
    c["ntk"]["path_experiment"] = "res"
    assert [r["model"]["width"] for r in validate(copy.deepcopy(c))["res"]] == [1, 2]


@pytest.mark.parametrize("kind", ["resnet", "transformer"])
def test_fast_written_for_a_resnet_or_transformer_is_refused(kind):
    exp = ({"model": RESNET} if kind == "resnet" else {"model": TRANSFORMER, "dataset": "mod13"})
    exp["init"] = {"scheme": "default"}
    c = _config(x={**exp, "training": {"fast": True}})
    _refused(c, rf"^config: experiments\.x\.training\.fast: expected false or absent for model kind {kind}")
    c["defaults"]["training"]["fast"] = True                   # inherited from defaults: the generic step
    c["experiments"]["x"]["training"] = {"fast": False}
    assert validate(copy.deepcopy(c))["x"][0]["training"]["fast"] is False
    del c["experiments"]["x"]["training"]
    assert validate(copy.deepcopy(c))["x"][0]["training"]["fast"] is True


def test_model_kinds_refuse_the_wrong_inputs():
    c = _config(x={"model": TRANSFORMER, "init": {"scheme": "default"}})          # images (digits)
    _refused(c, r"^config: experiments\.x\.model\.kind: transformer needs token sequences")
    c["datasets"]["dom"] = {"source": "dominoes", "top": "digits", "bottom": "digits", "n_train": 50, "n_test": 20,
                            "n_eval": 10, "replace": True}
    c["experiments"]["x"]["dataset"] = "dom"                                       # dominoes are images too
    _refused(c, r"^config: experiments\.x\.model\.kind: transformer needs token sequences")
    c = _config(x={"model": RESNET, "init": {"scheme": "default"}, "dataset": "mod13"})
    _refused(c, r"^config: experiments\.x\.model\.kind: resnet needs image inputs")


def test_dominoes_refuse_a_batchnorm_resnet():
    c = _config(x={"model": {**RESNET, "norm": "batch"}, "init": {"scheme": "default"}, "dataset": "dom"})
    c["datasets"]["dom"] = {"source": "dominoes", "top": "digits", "bottom": "digits", "n_train": 50, "n_test": 20,
                            "n_eval": 10, "replace": True}
    _refused(c, r"^config: experiments\.x\.model\.norm: expected none for a dominoes dataset")
    c["experiments"]["x"]["model"]["norm"] = "none"
    assert validate(copy.deepcopy(c))["x"][0]["model"]["norm"] == "none"
