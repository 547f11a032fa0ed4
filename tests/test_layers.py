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
