"""The claims ledger's catalogue: every testable claim or prediction of the five seeds
(shared/seeds/), worded from its seed, with the experiment and statistic that decide it,
and which shipped config file runs that experiment.

Each entry: ``id``, ``seed`` (short name, :data:`SEEDS` maps it to the seed file),
``claim`` (quoted or closely paraphrased; quotes in double quotes), ``experiment`` (what
result it reads), ``statistic`` (what number is computed), ``needs`` (what a config must
contain to produce that result: ``("experiment", name)``, ``("block", dotted.key)``,
``("koopman", "windows" or "width" or "toy")``). The decision rules themselves are built by
:mod:`pathdep.analysis.claims_stats` from their thresholds. The texts avoid reStructuredText
markup (``|``, ``*``): the report's landing page renders them in a csv-table, so a norm is
written ‖w‖ (tests/test_report_captions.py renders every text).

:func:`where_run` names the first shipped config (``config.yaml``, then ``config/*.yaml``)
that contains what an entry needs, for the "not run" verdict; :func:`has` says whether a
given config contains it (the rule passes the run's config: a claim its config does not
enable is "not run", even when an older run left files behind). :func:`config_slice` is the
part of a config the ledger depends on (the rule's params).
How it was checked: ``tests/stages/test_claims.py`` (every id has a reader; where_run on
the shipped configs finds weight_decay in config/paper.yaml and the Koopman windows in
config.yaml).
"""

from __future__ import annotations

from pathlib import Path

import yaml

SEEDS = {
    "scaling": "path-dependence-scaling-laws.txt",
    "lyapunov": "weight-dynamics-lyapunov-2405.00743.txt",
    "koopman": "koopman-equivalent-training-dynamics.txt",
    "ntk": "ntk-gradient-descent-wide-networks.txt",
    "dominoes": "dominoes-perturbing-weights-hypersphere-walks.txt",
}

_E = "experiment"
CLAIMS: list[dict] = [
    dict(id="dw_exp_linear", seed="scaling", experiment="epsilon", needs=(_E, "epsilon"),
         claim='"The rate of growth for d_w has a very short exponential period (shorter than a single epoch), '
               'followed by a long linear period"',
         statistic="share of d_w curves whose selected form is exp_linear (epsilon sweep, fits.csv)"),
    dict(id="dw_exp_short", seed="scaling", experiment="epsilon", needs=(_E, "epsilon"),
         claim='"a very short exponential period (shorter than a single epoch)"',
         statistic="median onset t_c of exp_linear fits to d_w, in epochs (epsilon sweep)"),
    dict(id="init_function_equivalence", seed="scaling", experiment="epsilon, global", needs=(_E, "global"),
         claim='"Even for initial perturbations of size epsilon=10, the models appear to become almost entirely '
               'equivalent in function space"',
         statistic="final test disagreement of the largest initial perturbation / of independently trained networks"),
    dict(id="lyapunov_rate", seed="scaling", experiment="lyapunov tangent", needs=("block", "lyapunov.tangent_experiment"),
         claim='"The Lyapunov exponent lambda quantifies the rate of separation of infinitesimally close '
               'trajectories": d_w grows at rate lambda_1',
         statistic="(measured growth rate of d_w - lambda_1) / lambda_1 at the smallest perturbation"),
    dict(id="momentum_bend", seed="scaling", experiment="momentum", needs=(_E, "momentum"),
         claim='Prediction: "the d_w curves curve down because in flat basins, momentum slows you down"',
         statistic="late log-log exponent of d_w (last half of training): largest momentum minus momentum 0"),
    dict(id="momentum_divergence", seed="scaling", experiment="momentum", needs=(_E, "momentum"),
         claim='"Small amounts of momentum appear to increase convergence ..., while large amounts increase '
               'divergence"',
         statistic="log(final d_w at the largest momentum / final d_w at the smallest)"),
    dict(id="lr_collapse", seed="scaling", experiment="lr", needs=(_E, "lr"),
         claim='Prediction: "correcting for the learning rate should give nearly identical separation slopes"',
         statistic="exponent p of the late d_w slope ~ lr^p (p = 1: slope / lr is the same for every lr)"),
    dict(id="weight_decay_shrinks", seed="scaling", experiment="weight_decay", needs=(_E, "weight_decay"),
         claim='Prediction: "d_w will shrink (because ‖w‖ will shrink)"',
         statistic="log(final d_w at the largest weight decay / at the smallest)"),
    dict(id="weight_decay_bend", seed="scaling", experiment="weight_decay", needs=(_E, "weight_decay"),
         claim='Prediction: "The normalized d_w/‖w‖ will curve downwards"',
         statistic="late log-log exponent of d_w/‖w_0‖: largest weight decay minus the smallest"),
    dict(id="width_linear", seed="scaling", experiment="width", needs=(_E, "width"),
         claim='Prediction: "the slope of divergence to increase linearly with the width of a one-layer network"',
         statistic="exponent p of the late d_w slope ~ width^p"),
    dict(id="depth_exponential", seed="scaling", experiment="depth", needs=(_E, "depth"),
         claim='Prediction: "the shape of d_w ... to become more and more exponential with depth"',
         statistic="late log-log exponent of d_w: deepest minus shallowest network (same parameter count)"),
    dict(id="architecture_conv", seed="scaling", experiment="architecture", needs=("block", "architecture"),
         claim='Prediction: "convolutional architectures to decrease the rate of separation (after correcting for '
               'the number of parameters)"',
         statistic="early separation rate of d_w/‖w_b(t)‖ per step, convolutional minus MLP at matched parameter "
                   "count, paired across baselines; the least favourable convolutional network "
                   "(results/architecture/architecture.csv)"),
    dict(id="adaptive_exponential", seed="scaling", experiment="optimizer", needs=(_E, "optimizer"),
         claim='Prediction: "adaptive techniques to make the rate of divergence exponential"',
         statistic="late log-log exponent of d_w under Adam / RMSProp (1 = linear, > 1 bends up)"),
    dict(id="schedule_variance", seed="scaling", experiment="spread", needs=("block", "spread"),
         claim='"almost all of the variance seems to be explained by the batch schedule"',
         statistic="schedule share s / (s + i) of the final test disagreement with the baseline (spread sources)"),
    dict(id="early_failure_prediction", seed="lyapunov", experiment="lyapunov study", needs=("block", "lyapunov.study"),
         claim='"All stability indicators are able to predict very high values of the final loss (failed training '
               'runs) early in the training process"',
         statistic="lowest ROC AUC of FTLE and CLV-angle predictors of failure at the time nearest 1.5 % of training"),
    dict(id="failure_fraction_activation", seed="lyapunov", experiment="lyapunov study",
         needs=("block", "lyapunov.study"),
         claim='"Choice of activation function (ReLU vs tanh) affects stability properties and loss landscape": '
               'the fraction of failed runs differs',
         statistic="failure fraction ReLU minus tanh (smallest init range)"),
    dict(id="omd_ogd_conjugate", seed="koopman", experiment="koopman toy", needs=("koopman", "toy"),
         claim='"OMD and OGD have very similar eigenvalues while the BM eigenvalues are clearly distinct"',
         statistic="permutation p of W1 between Koopman spectra, OMD vs OGD (pairs with bisection in the note)"),
    dict(id="narrow_wide_fcn", seed="koopman", experiment="koopman width groups", needs=("koopman", "width"),
         claim='"narrow and wide networks exhibit non-conjugate training dynamics"',
         statistic="permutation p of W1 between Koopman spectra of the narrowest and widest FCNs"),
    dict(id="grokking_nonconjugate", seed="koopman", experiment="grokking_koopman",
         needs=("block", "grokking.koopman"),
         claim='"the early training dynamics of Transformers that do and do not undergo grokking are non-conjugate" '
               '(free vs weight-norm-constrained, first 100 steps)',
         statistic="permutation p of W1 between Koopman spectra of the free and constrained runs (independent "
                   "baselines; observable: the whole weight vector)"),
    dict(id="early_transitions", seed="koopman", experiment="koopman windows", needs=("koopman", "windows"),
         claim='"CNN training dynamics undergo transitions" in early training',
         statistic="log(W1 between consecutive early windows / between consecutive late windows)"),
    dict(id="ntk_param_change", seed="ntk", experiment="ntk width_sweep", needs=("block", "ntk"),
         claim='"the change per parameter vanishes in the infinite width limit" (dW/dt at init ~ O(1/sqrt(N)))',
         statistic="exponent of the relative parameter change ~ width^p (target -1/2)"),
    dict(id="ntk_kernel_change", seed="ntk", experiment="ntk width_sweep", needs=("block", "ntk"),
         claim='"dTheta/dt ~ O(1/sqrt(N))": the NTK\'s change from initialization vanishes with width',
         statistic="exponent of the relative NTK change ~ width^p (target -1/2)"),
    dict(id="linearised_tracks", seed="ntk", experiment="ntk linearization", needs=("block", "ntk"),
         claim='"DNN vs its linearization ... Deviation happens later in training as network gets wider"',
         statistic="exponent of the final relative logit deviation (network vs linearised) ~ width^p"),
    dict(id="catapult_lower", seed="ntk", experiment="ntk catapult", needs=("block", "ntk"),
         claim='"The two transitions occur at 2/lambda_0 (NTK -> catapult phase)"',
         statistic="learning rate where the loss first rises, in units of 2/lambda_0"),
    dict(id="catapult_upper", seed="ntk", experiment="ntk catapult", needs=("block", "ntk"),
         claim='"... and 4/lambda_0 (catapult phase -> divergent)"',
         statistic="learning rate where training first diverges, in units of 2/lambda_0 (predicted 2)"),
    dict(id="catapult_c_above_2", seed="ntk", experiment="ntk catapult", needs=("block", "ntk"),
         claim='"Crucially, c is a width-independent constant and c > 2": training diverges only beyond '
               'eta = c/lambda_0 with c > 2',
         statistic="learning rate where training first diverges, in units of 2/lambda_0 (predicted > 1)"),
    dict(id="simple_pattern_first", seed="dominoes", experiment="dominoes_prevalence",
         needs=(_E, "dominoes_prevalence"),
         claim="the toy model's pattern-learning curves: the simpler pattern (higher probe accuracy) is learned "
               "first",
         statistic="onset(simpler pattern) - onset(other), steps, in the run with the most equal prevalences"),
    dict(id="reliance_prevalence", seed="dominoes", experiment="dominoes_prevalence",
         needs=(_E, "dominoes_prevalence"),
         claim='reliance on a pattern shifts as "we change the relevant macroscopic parameters (e.g., prevalence'
               '...)"',
         statistic="slope of acc(top only) - acc(bottom only) against the top pattern's prevalence"),
    dict(id="reliance_reliability", seed="dominoes", experiment="dominoes_reliability",
         needs=(_E, "dominoes_reliability"),
         claim='reliance on a pattern shifts as "we change the relevant macroscopic parameters (e.g., ... '
               'reliability ...)"',
         statistic="slope of acc(top only) - acc(bottom only) against the top pattern's reliability"),
    dict(id="hypersphere_not_linear", seed="dominoes", experiment="epsilon", needs=(_E, "epsilon"),
         claim='Brownian motion on the hypersphere is "not the curve I was looking for": its "straight line is '
               'actually pretty much parabolic"',
         statistic="share of d_w curves whose selected form is sphere or sqrt (epsilon sweep)"),
]


def has(cfg: dict, need: tuple[str, str]) -> bool:
    """Whether config ``cfg`` contains what ``need`` names (an experiment, a block, a Koopman setting)."""
    kind, name = need
    if kind == "experiment":
        return name in (cfg.get("experiments") or {})
    if kind == "block":
        node = cfg
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True
    kp = cfg.get("koopman") or {}
    if name == "toy":
        return "toy" in kp
    exps = [e or {} for e in (kp.get("experiments") or {}).values()]
    if name == "windows":
        return any(e.get("windows") for e in exps)
    return any("width" in str(e.get("group_by", "")) for e in exps)


def where_run(need: tuple[str, str], root: str | Path) -> str | None:
    """The first shipped config under ``root`` (config.yaml, then config/*.yaml, sorted) that
    contains ``need``; None if none does."""
    root = Path(root)
    for path in [root / "config.yaml", *sorted((root / "config").glob("*.yaml"))]:
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(cfg, dict) and has(cfg, need):
            return str(path.relative_to(root))
    return None


SLICE_KEYS = ("experiments", "spread", "lyapunov", "koopman", "ntk", "architecture", "grokking")


def config_slice(cfg: dict) -> dict:
    """The blocks of ``cfg`` that decide which claims can be tested (the rule's ``params``)."""
    return {k: cfg[k] for k in SLICE_KEYS if k in cfg}
