"""arviz-plots 0.8 with matplotlib 3.11, without patching matplotlib for the process.

On Python 3.10 and 3.11, arviz-plots 0.8.0 is the newest release (1.0 and later need Python
3.12, and handle matplotlib 3.11 themselves). Two things in it break with matplotlib 3.11:

* Its ``__init__`` registers its style sheets through the attribute
  ``matplotlib.style.core``. matplotlib 3.11 deprecated that submodule (its names now live in
  ``matplotlib.style`` itself) and no longer imports it, so the attribute is missing and
  ``import arviz_plots`` fails. :func:`load_arviz_plots` points the attribute at
  ``matplotlib.style`` only while arviz-plots is imported, and removes it afterwards.
* It reshapes the list of chain colours and fails on the RGB tuples that matplotlib 3.11
  keeps in its property cycle: :func:`chain_colors` gives the cycle as hex strings, which
  every version accepts.

Both do nothing harmful where they are not needed (matplotlib < 3.11, arviz-plots >= 1.0).
Delete this module once the project requires Python >= 3.12 and arviz-plots >= 1.0.
matplotlib and arviz-plots are imported on first use: they are slow to import.
"""

from __future__ import annotations

__all__ = ["chain_colors", "load_arviz_plots"]

import sys
from types import ModuleType


def load_arviz_plots() -> ModuleType:
    """Imports arviz-plots (once), with ``matplotlib.style.core`` present only meanwhile.

    Returns:
        The ``arviz_plots`` module.

    Example:
        >>> arviz_plots = load_arviz_plots()
        >>> callable(arviz_plots.plot_trace), callable(arviz_plots.plot_rank)
        (True, True)
    """
    loaded = sys.modules.get("arviz_plots")
    if loaded is not None:
        return loaded
    import matplotlib.style as style

    alias = not hasattr(style, "core")
    if alias:
        style.core = style  # type: ignore[attr-defined]
    try:
        import arviz_plots
    finally:
        # Left alone if the import brought in the real (deprecated) submodule meanwhile.
        if alias and getattr(style, "core", None) is style:
            del style.core  # type: ignore[attr-defined]
    return arviz_plots


def chain_colors() -> list[str]:
    """The colours of matplotlib's property cycle, as hex strings (one per chain).

    Returns:
        ``["#rrggbb", ...]`` in the order of ``rcParams["axes.prop_cycle"]``.

    Example:
        >>> colors = chain_colors()
        >>> len(colors) > 1 and all(color.startswith("#") for color in colors)
        True
    """
    from matplotlib import rcParams
    from matplotlib.colors import to_hex

    return [to_hex(color) for color in rcParams["axes.prop_cycle"].by_key()["color"]]
