"""The package's layers (DESIGN.md "Layout"): parse every module's imports and fail on an
upward import or a cycle, so the house stays this way.

Layers from the bottom: io < data < core < analysis < config < {stages, plots}. A module
may import its own layer or a layer below; ``stages`` and ``plots`` are the top and
nothing in the package imports them; ``pathdep`` itself (``__version__``) is allowed
everywhere. The package never imports snakemake.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "pathdep"
RANK = {"io": 0, "data": 1, "core": 2, "analysis": 3, "config": 4, "stages": 5, "plots": 5}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported pathdep module, line) of every import in the file, relative ones resolved."""
    name = _module_name(path)
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
            # `from pathdep.analysis import fits` imports the submodule pathdep.analysis.fits
            out += [(f"{mod}.{a.name}", node.lineno) for a in node.names if (PKG.parent / f"{mod}.{a.name}".replace(".", "/")).with_suffix(".py").exists()]
    return [(m, ln) for m, ln in out if m == "pathdep" or m.startswith("pathdep.") or m == "snakemake" or m.startswith("snakemake.")]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


MODULES = sorted(p for p in PKG.rglob("*.py"))


def test_every_module_sits_in_a_layer():
    top = [p.name for p in PKG.glob("*.py") if p.name != "__init__.py"]
    assert top == [], f"modules outside the layers: {top}"
    assert {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")} == set(RANK)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_upward_imports(path):
    src = _layer(_module_name(path))
    bad = []
    for mod, line in _imports(path):
        if mod.startswith("snakemake"):
            bad.append(f"line {line}: imports {mod} (the package never imports snakemake)")
            continue
        dst = _layer(mod)
        if src is None or dst is None or dst == src:
            continue
        if dst in ("stages", "plots") or RANK[dst] > RANK[src]:
            bad.append(f"line {line}: {src} imports {mod} ({dst} is above)")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    names = {_module_name(p) for p in MODULES}
    for p in MODULES:
        graph[_module_name(p)] = {m for m, _ in _imports(p) if m in names and m != _module_name(p)}
    # a package __init__ importing its own submodules is a re-export, not a cycle edge back
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if m.startswith(n + "."):
                continue
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(cyc, cyc[1:])):
                    raise AssertionError("import cycle: " + " -> ".join(cyc))
            elif state.get(m) is None:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if state.get(n) is None:
            visit(n)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The test can fail: an io module importing stages is reported."""
    fake = PKG / "io" / "_layer_probe.py"
    fake.write_text("from pathdep.stages import train\n")
    try:
        with pytest.raises(AssertionError, match="io imports pathdep.stages"):
            test_no_upward_imports(fake)
    finally:
        fake.unlink()


# ---------------------------------------------------------------------------- rooms by content
# Stages read files, call pure functions of analysis/ (or core/) and write files; plots only
# draw what a stage wrote. Imports alone do not show that, so the checks below read the code:
# a stage may not hold numerics (no linear algebra, transforms, autodiff or vectorising maps,
# no fits; no module of numerics imported), functions and files stay short enough to name
# what they hold, and a plot runs no torch, scipy or simulation.

STAGES, PLOTS = PKG / "stages", PKG / "plots"
MAX_STAGE_FUNCTION, MAX_FUNCTION, MAX_FILE = 50, 80, 500
NUMERIC_IMPORTS = ("torch.nn.functional", "torch.func", "torch.linalg", "scipy", "sklearn", "numba")
NUMERIC_ATTRS = ("np.linalg", "numpy.linalg", "torch.linalg", "np.einsum", "torch.einsum", "np.fft", "torch.fft",
                 "torch.vmap", "torch.autograd", "torch.func", "np.polyfit", "np.lstsq", "F.")
PLOT_IMPORTS = ("torch", "scipy", "sklearn", "numba", "pathdep.core", "pathdep.stages", "pathdep.data")
# what a plot may take from analysis/: closed forms it evaluates on its own axis (a fitted
# form's curve, a sigmoid) and the names of quantities; nothing that simulates or fits
PLOT_MAY_USE = {"pathdep.analysis.fits": {"MODELS", "predict"}, "pathdep.analysis.patterns": {"sigmoid"},
                "pathdep.analysis.quantities": {"quantity_values", "QUANTITIES", "LABELS"},
                # the band a curve is drawn with: copies averaged per baseline, t interval across baselines
                "pathdep.analysis.replicates": {"labels", "per_baseline", "interval"}}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _imported(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import, relative ones resolved."""
    out = []
    name = _module_name(path)
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([mod] if mod else []))
            out.append((mod, [a.name for a in node.names], node.lineno))
    return out


def stage_numerics(path: Path) -> list[str]:
    """What in a stage module is numerics rather than read / call / write."""
    bad = []
    for mod, names, line in _imported(path):
        if any(mod == m or mod.startswith(m + ".") for m in NUMERIC_IMPORTS):
            bad.append(f"line {line}: imports {mod}")
        if mod.startswith("pathdep.stages") and any(n.startswith("_") for n in names):
            bad.append(f"line {line}: imports another stage's private name {[n for n in names if n.startswith('_')]}")
    used: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            d = _dotted(node)
            if any((d + ".").startswith(a if a.endswith(".") else a + ".") for a in NUMERIC_ATTRS):
                used.add((node.lineno, d))
    # the whole name only (np.linalg.norm, not also np.linalg)
    used = {(ln, d) for ln, d in used if not any(ln == l2 and d2.startswith(d + ".") for l2, d2 in used)}
    return sorted(set(bad)) + [f"line {ln}: uses {d}" for ln, d in sorted(used)]


def long_rooms(path: Path) -> list[str]:
    limit = MAX_STAGE_FUNCTION if STAGES in path.parents else MAX_FUNCTION
    bad = [f"{f.name} (line {f.lineno}) is {f.end_lineno - f.lineno + 1} lines (at most {limit})"
           for f in _functions(path) if f.end_lineno - f.lineno + 1 > limit]
    n = len(path.read_text().splitlines())
    if n > MAX_FILE:
        bad.append(f"the file is {n} lines (at most {MAX_FILE})")
    return bad


def plot_computes(path: Path) -> list[str]:
    bad = []
    for mod, names, line in _imported(path):
        if any(mod == m or mod.startswith(m + ".") for m in PLOT_IMPORTS):
            bad.append(f"line {line}: imports {mod}")
        elif mod.startswith("pathdep.analysis"):
            pairs = [(f"{mod}.{n}", set()) if f"{mod}.{n}" in PLOT_MAY_USE else (mod, {n}) for n in names] or [(mod, set())]
            for m, ns in pairs:
                if m not in PLOT_MAY_USE or not ns <= PLOT_MAY_USE[m]:
                    bad.append(f"line {line}: imports {m} {sorted(ns) or ''} (only {sorted(PLOT_MAY_USE)})")
    return bad


@pytest.mark.parametrize("path", sorted(STAGES.glob("*.py")), ids=lambda p: p.name)
def test_stages_only_read_call_write(path):
    bad = stage_numerics(path)
    assert not bad, f"{path.relative_to(PKG)} holds numerics (move them to analysis/ or core/):\n" + "\n".join(bad)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_rooms_are_short(path):
    bad = long_rooms(path)
    assert not bad, f"{path.relative_to(PKG)}: split into rooms that say what they hold:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted(PLOTS.glob("*.py")), ids=lambda p: p.name)
def test_plots_only_draw(path):
    bad = plot_computes(path)
    assert not bad, f"{path.relative_to(PKG)} computes (plots draw what a stage wrote):\n" + "\n".join(bad)


def test_the_content_checks_can_fail(tmp_path):
    """Each check rejects a module that breaks it, and passes a clean one."""
    stage = STAGES / "_probe_numerics.py"
    stage.write_text("import numpy as np\nimport torch.nn.functional as F\nfrom pathdep.stages.train import _x\n\n"
                     "def f(a):\n    return np.linalg.norm(a) + F.relu(a)\n\n"
                     "def long():\n" + "    x = 1\n" * 60 + "    return x\n")
    plot = PLOTS / "_probe_plot.py"
    plot.write_text("import torch\nfrom pathdep.core.models import build_model\n"
                    "from pathdep.analysis import hypersphere\nfrom pathdep.analysis.fits import MODELS\n")
    clean = STAGES / "_probe_clean.py"
    clean.write_text("from pathdep.analysis import align\n\n\ndef f(path):\n    return align.weight_matching(path)\n")
    try:
        found = "\n".join(stage_numerics(stage))
        for what in ("imports torch.nn.functional", "private name", "uses np.linalg.norm", "uses F.relu"):
            assert what in found, (what, found)
        assert any("long (line 8) is 62 lines" in b for b in long_rooms(stage))
        assert len(plot_computes(plot)) == 3, plot_computes(plot)
        assert stage_numerics(clean) == [] and long_rooms(clean) == []
    finally:
        for p in (stage, plot, clean):
            p.unlink()


def test_the_analysis_face_lists_every_module():
    """``pathdep.analysis`` names each of its modules in ``__all__`` and in its docstring."""
    import pathdep.analysis as A

    mods = sorted(p.stem for p in (PKG / "analysis").glob("*.py") if p.stem != "__init__")
    assert sorted(A.__all__) == mods
    missing = [m for m in mods if f"pathdep.analysis.{m}`" not in (A.__doc__ or "")]
    assert not missing, f"analysis/__init__.py's docstring does not name {missing}"
