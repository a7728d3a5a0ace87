# The documentation site: Sphinx, the PyData theme and MyST-NB.
# Why Sphinx (not MkDocs Material, now in maintenance mode): it is what the scientific Python
# projects we follow use: autodoc from docstrings, strict -W builds, MyST-NB runs notebooks.
#
# Build (warnings are errors; the tutorials' notebooks run, a few minutes):
#   sphinx-build -W --keep-going -b html docs docs/_build/html
# NB_EXECUTION_MODE=off skips running the notebooks while you write a page.
# The reference pages are generated from the code by docs/_ext/journey_docs.py.

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))
# the notebooks' kernels inherit it: figures shown inline in the pages, no display needed
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

project = "journey-sim"
author = "journey-sim contributors"
copyright = "2026, journey-sim contributors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "journey_docs",
]

# MyST: markdown pages and notebooks
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
nb_execution_mode = os.environ.get("NB_EXECUTION_MODE", "force")
nb_execution_timeout = 1200  # seconds per cell; a slow shared machine
nb_execution_raise_on_error = True
nb_execution_in_temp = True  # notebooks run in a temporary folder: nothing lands in docs/
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc: numpy-style docstrings with "Raises" sections
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options: dict[str, Any] = {}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

nitpicky = False
exclude_patterns = [
    "_build",
    "_ext",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    "jupyter_execute",
]

html_theme = "pydata_sphinx_theme"
html_title = "journey-sim"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars: dict[str, list[str]] = {"index": []}

# the tutorials are the notebooks in ../notebooks, copied here at each build (not committed)
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_COPIES = DOCS / "tutorials" / "notebooks"


def copy_notebooks(app: Any) -> None:
    """Copy ../notebooks/*.ipynb into tutorials/notebooks/ (only those that changed, so an
    incremental build stays incremental), and drop copies whose notebook is gone."""
    NOTEBOOK_COPIES.mkdir(parents=True, exist_ok=True)
    sources = {p.name: p for p in NOTEBOOKS.glob("*.ipynb")}
    for name, src in sources.items():
        dst = NOTEBOOK_COPIES / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
    for old in NOTEBOOK_COPIES.glob("*.ipynb"):
        if old.name not in sources:
            old.unlink()


def setup(app: Any) -> None:
    app.connect("builder-inited", copy_notebooks)
