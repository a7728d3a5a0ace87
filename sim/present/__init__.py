"""Presentation: results made into files, figures and text for people.

- ``tables``: a run's CSV tables (and its journey flows, ``flows.csv`` and ``flows.png``)
  and its ``metrics.json``, written atomically through ``sim.io``.
- ``figures``: every figure (matplotlib; each ``plot_*`` draws on an ``ax`` it is given or
  creates, and returns it).
- ``flows``: the journey's flows as an interactive Sankey (a Plotly figure as a plain
  dict, which ``report.html`` embeds); the static diagram is ``figures.plot_flows``.
- ``text``: the console summary, the comparison table and the comparison's files.
- ``decisions``: the files, figures and Markdown of response curves, budget allocations,
  goal seeks and sets of interventions.
- ``html``: ``report.html``, the self-contained page of a finished folder (its answer,
  figures, tables, assumptions and provenance), written by every writer after its mark;
  plotly.js (embedded, packed) draws its interactive charts.
- ``explore``: the explorer, a local web app (Dash) for live what-if and a class
  demonstration: its page, figures and callbacks, given a simulator to run
  (``python -m sim.explore`` gives it ``sim.api``).

May import: ``sim.measure`` and below, ``sim.io``, matplotlib (here only), pandas;
dash (the web framework, an optional extra) in ``explore`` only, not imported here.
"""

from sim.present.figures import (
    forest_figure,
    funnel_figure,
    plot_activity,
    plot_cohort_curves,
    plot_customer_timeline,
    plot_experience,
    plot_flows,
    plot_forest,
    plot_funnel,
    plot_ltv,
    plot_payback,
    plot_retention,
)
from sim.present.flows import sankey_spec
from sim.present.tables import write_outputs
from sim.present.text import format_comparison, format_summary, write_comparison

__all__ = ["forest_figure", "format_comparison", "format_summary", "funnel_figure",
           "plot_activity", "plot_cohort_curves", "plot_customer_timeline", "plot_experience",
           "plot_flows", "plot_forest", "plot_funnel", "plot_ltv", "plot_payback",
           "plot_retention", "sankey_spec", "write_comparison",
           "write_outputs"]
