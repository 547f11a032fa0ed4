"""Domino datasets: two patterns in one image, with prevalence, reliability and simplicity.

What it computes. A domino stacks a *top* and a *bottom* image vertically (Shah et al.
2020, "The Pitfalls of Simplicity Bias", MNIST over CIFAR-10; the seed
dominoes-perturbing-weights-hypersphere-walks). Both sides are taken from two other
configured datasets whose classes are matched by index (all classes, or a subset per
side such as ``top: [0, 1]`` / ``bottom: [1, 9]``); they are resized (bilinear) to a
common height/width and channel count (grey repeated to RGB) and stacked to
``(C, 2H, W)``. Parameters per side:

* prevalence ``p`` -- the fraction of dominoes in which the side shows a pattern (a
  missing side is blank: raw pixel value 0, i.e. ``blank_value = -mean/std`` after
  normalisation);
* reliability ``r`` -- the fraction of *shown* sides whose class is the domino's label
  (otherwise a different class, uniform over the other ``K - 1``);
* simplicity -- the choice of side dataset, or continuously through the ``synthetic``
  side source (:func:`synthetic_side`): Gaussian classes whose means are ``s`` noise
  standard deviations apart (``s`` = Mahalanobis distance between any two class means).

Counts, not fractions. The seed's linear system for the sampling fractions has only the
trivial solution; here the counts are solved directly for the ``n`` requested dominoes
(:func:`solve_counts`): ``n_top = round(n p_top)``, ``n_bottom = max(round(n p_bottom),
n - n_top)``, ``n_both = n_top + n_bottom - n``; the one-sided counts follow. A request
with ``p_top + p_bottom < 1`` would leave dominoes with no side and is refused. Labels are
balanced (``i mod K``, shuffled); the reliable shown sides are an exact
``round(r n_shown)`` of the shown ones, chosen at random. Each side image is drawn without
replacement from that side's pool of its class (``replace: true`` draws with replacement);
too few samples of a class is a one-line error. The achieved prevalences and
reliabilities are *measured* from the flags and stored.

Evaluation sets (test pools, ``n_eval`` each, :data:`EVAL_SETS`): ``both`` (both sides,
reliable), ``top_only`` / ``bottom_only`` (the other side blank), and Shah et al.'s
randomized sets ``top_randomized`` / ``bottom_randomized`` (that side's class drawn
uniformly from all classes, independent of the label; the other side reliable). The
accuracy on ``top_randomized`` measures how much the network relies on the bottom
pattern, and vice versa.

File: ``pathdep.dataset/2`` plus the side flags, labels and evaluation sets
(:mod:`pathdep.data.dominoes.files` documents each dataset and attribute).

Sweeps. A dataset parameter becomes a sweep axis through the experiment's ``data:``
block (deep-merged into the named dataset's block); :func:`derive_dataset` names each
distinct resolved block ``<dataset>-<8 hex of its hash>`` and adds it to the config's
``datasets`` so it is prepared once and reused by every run that asks for it.

Modules: :mod:`~pathdep.data.dominoes.counts` (the count solver and the draws),
:mod:`~pathdep.data.dominoes.spec` (the block's keys, defaults, checks and shapes),
:mod:`~pathdep.data.dominoes.build` (sides, splits and stacked images in memory),
:mod:`~pathdep.data.dominoes.files` (the prepared file and its evaluation sets),
:mod:`~pathdep.data.dominoes.sweeps` (derived datasets); the ``dominoes`` and ``synthetic``
sources are registered in :mod:`pathdep.data.sources`.

How it was checked: ``tests/datasets/test_dominoes.py`` (the count solver over a grid of
requests including empty sides: achieved values within sampling error, exact counts;
impossible requests; flags against the pixels: blank sides equal ``blank_value``, shown
sides equal the resized side image of ``top_label``; randomized sets independent of the
label; derived names distinct and stable; torchvision MNIST/CIFAR-10 sides from tiny
files in the real formats).
"""


from pathdep.data.dominoes.build import build_dominoes
from pathdep.data.dominoes.counts import SIDES, measure, sample_dominoes, solve_counts
from pathdep.data.dominoes.files import load_eval_sets, prepare_dominoes
from pathdep.data.dominoes.spec import DOMINO_DEFAULTS, DOMINO_KEYS, EVAL_SETS, FLAGS, check_dominoes, dominoes_info
from pathdep.data.dominoes.sweeps import DATA_SHORT, derive_dataset
from pathdep.data.sources.synthetic import synthetic_side

__all__ = ["SIDES", "EVAL_SETS", "FLAGS", "DOMINO_KEYS", "DOMINO_DEFAULTS", "solve_counts", "sample_dominoes",
           "measure", "synthetic_side", "check_dominoes", "dominoes_info", "build_dominoes", "prepare_dominoes",
           "derive_dataset", "DATA_SHORT", "load_eval_sets"]
