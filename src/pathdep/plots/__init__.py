"""Figures, one module per rule family plus :mod:`~pathdep.plots.common` (top layer: they read
files and draw; no numerics beyond summaries)."""
