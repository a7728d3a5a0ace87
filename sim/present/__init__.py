"""Presentation: results made into files, figures and text for people.

- ``tables``: a run's CSV tables and its ``metrics.json``, written atomically through
  ``sim.io``.
- ``figures``: every figure (matplotlib; each ``plot_*`` draws on an ``ax`` it is given or
  creates, and returns it).
- ``text``: the console summary, the comparison table and the comparison's files.
- ``decisions``: the files, figures and Markdown of response curves, budget allocations,
  goal seeks and sets of interventions.

May import: ``sim.measure`` and below, ``sim.io``, matplotlib (here only), pandas.
"""

from sim.present.figures import (
    forest_figure,
    funnel_figure,
    plot_activity,
    plot_cohort_curves,
    plot_experience,
    plot_forest,
    plot_funnel,
    plot_ltv,
    plot_payback,
    plot_retention,
)
from sim.present.tables import write_outputs
from sim.present.text import format_comparison, format_summary, write_comparison

__all__ = ["forest_figure", "format_comparison", "format_summary", "funnel_figure",
           "plot_activity", "plot_cohort_curves", "plot_experience", "plot_forest",
           "plot_funnel", "plot_ltv", "plot_payback", "plot_retention", "write_comparison",
           "write_outputs"]
