"""Notebook views: training dashboard, activation explorer, weight histograms.

Each submodule is imported on first use (they import Keras, ipywidgets and
matplotlib); importing this package imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["dashboard", "activations", "weights", "plots"]
