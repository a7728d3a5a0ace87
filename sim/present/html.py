"""``report.html``: one self-contained page for a finished folder of outputs.

Every run, comparison, merge and analysis writes it into its folder after its finished mark
(``metrics.json``, ``psa.json``, ``curves.json``, ...): a view of the files the writer has
just written, built from the folder alone, so the same code serves a fresh run and
``python -m sim.report DIR`` on an old folder. It leads with the answer (the headline metrics
with their intervals; a comparison's ranking, recommendation and how sure it is; a PSA's
recommendation, probability best and value of information; an analysis's answer in the
words of its ``.md`` file), then the figures, the small tables, the assumptions and the
provenance, and says what each interval covers.

Offline and self-contained. Every image is a ``data:`` URI, the style and the scripts are
inline, nothing is linked: the page opens from disk with no network. A Content Security
Policy in the page lets it load nothing from anywhere (``default-src 'none'``, images from
``data:`` only, scripts only by the SHA-256 of the two the page runs), so a text that slipped
through the escaping still could not fetch, post or run anything.

Why Plotly for the interactive charts (the comparison's ranking, a PSA's options, the Sankey
of the journey): it is well kept and widely used, its whole runtime is one offline JavaScript
bundle shipped inside the Python package (``plotly.offline.get_plotlyjs``), a Sankey trace
is built in, and hover values, toggling a series from the legend, zoom and saving a PNG come
with every chart. The bundle (plotly.js 4.x: 4.8 MB) is embedded once per page, gzip-packed
and base64-encoded (about 2 MB) and unpacked by the browser's ``DecompressionStream``
(Chrome 80, Firefox 113, Safari 16.4 and later), which keeps a run's page under 5 MB; a page
without an interactive chart carries no bundle. The other figures are the folder's PNGs.

The folder is untrusted input (``python -m sim.report`` reads folders users hand it): only
regular files directly inside it (and Hydra's ``.hydra/`` files) are read, never through a
link, each within a size limit (``sim.userfiles.read_user_bytes``) and all together within
``MAX_READ_BYTES``; a PNG must carry the PNG signature and header; YAML is read as plain data
within a node budget; every text from the folder (scenario names and descriptions, table
cells, Markdown) is HTML-escaped, and the texts given to Plotly (which reads a few tags,
links among them) keep only its formatting tags. Nothing from the folder is executed or
loaded. Anything the page cannot be built from stops it with one line (``OutputError``) and
leaves the folder's other files as they are.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import functools
import gzip
import hashlib
import html
import io as _io
import json
import math
import os
import platform
import re
import shlex
import stat
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim import io
from sim.errors import InputError, OutputError
from sim.measure.metrics import metric_range
from sim.measure.stats import HEADLINE, ONE_REPLICATION
from sim.userfiles import read_user_bytes

__all__ = ["MAX_READ_BYTES", "REPORT_FILE", "build_report", "write_report"]

REPORT_FILE = io.REPORT_FILE
MAX_DOCUMENT_BYTES = 64 * 2**20  # the finished mark's JSON (a comparison of many scenarios)
MAX_TEXT_BYTES = 4 * 2**20  # a table, a Markdown text or one of Hydra's files
MAX_FIGURE_BYTES = 8 * 2**20  # one PNG (the run's are about 100 kB)
MAX_FIGURES = 40
MAX_ENTRIES = 10_000  # files listed in the folder
MAX_READ_BYTES = 128 * 2**20  # everything read for one page
MAX_YAML_NODES = 100_000  # values of a YAML file once its aliases are expanded
MAX_TABLE_ROWS = 60  # rows shown of a table (the rest is in its CSV file)
MAX_TABLE_COLUMNS = 80
MAX_CELL_CHARS = 400
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"

COVERS_NOISE = ("The intervals are 95% t intervals across the replications: they cover the "
                "simulation noise only, given the assumptions. How sure the answer is when "
                "the assumptions are guesses is what a PSA (psa.draws=256) measures.")
# the run's headline: (metric, label)
RUN_HEADLINE = (("conversion_rate", "Conversion (of the aware)"),
                ("purchases", "First purchases"),
                ("monthly_churn", "Monthly churn"),
                ("ltv.mean", "LTV per customer"),
                ("cac", "CAC"),
                ("npv", "NPV"),
                ("npv_clv", "NPV + value after the horizon"))
BASE_HEADLINE = (("new.npv", "NPV of the new customers"), ("base.npv", "NPV of the base"))

# the figures in the order a reader wants them, with what each shows
FIGURES: dict[str, str] = {
    "funnel": "The funnel: customers reaching each stage of the journey's framework (95% "
              "CIs), the share of the aware and the step conversion.",
    "flows": "Journey flows: customers moving between the journey's states (mean per "
             "replication).",
    "retention": "Retention from the first purchase (Kaplan-Meier), censored at the horizon.",
    "ltv": "The LTV distribution of the buyers, with P10, P50, P90 and the mean marked.",
    "cohorts": "LTV to date per customer of each acquisition cohort by months since "
               "acquisition, against CAC.",
    "payback": "The average customer's discounted net value by days since acquisition "
               "against CAC, with the payback day and the share of customers observable "
               "that long.",
    "activity": "Active customers and weekly revenue over time.",
    "experience": "The experience score on entering each state (the emotion curve).",
    "comparison": "Forest plots of the paired differences from the reference in the ranking "
                  "metric, LTV and conversion, with 95% CIs.",
    "sweep": "The headline metrics against the swept parameter: means with 95% CIs.",
    "psa_cloud": "One dot per draw and option: its extra cost over the reference against its "
                 "difference in the decision metric; a cross at the expected values.",
    "acceptability": "The probability each option is best against the return required on "
                     "its extra cost.",
    "evppi": "What to research first: the EVPPI of each assumption and group against the "
             "EVPI.",
    "tornado": "One way at a time: the difference at each assumption's low and high value, "
               "with 95% intervals.",
    "response_curves": "The objective against each key with its 95% band, and the marginal "
                       "return between neighbouring values.",
    "response_metrics": "The headline metrics against each key, with 95% bands.",
    "allocation": "Today's and the proposed spend per channel against the range allowed, and "
                  "each channel's marginal ROI at the proposal.",
    "goal_seek": "The metric's mean at every value tried with 95% bars, the target, the "
                 "answer and its interval.",
    "portfolio": "The gain of each set of interventions with its 95% interval, and the gain "
                 "if the effects added up; the chosen set in bold.",
}

# the small tables of each kind of folder (never the per-customer or per-event ones)
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "run": (("finance.csv", "Unit economics with 95% CIs"),
            ("pnl.csv", "The monthly profit and loss (means across replications)"),
            ("ltv.csv", "LTV by acquisition cohort, segment and channel"),
            ("flows.csv", "Journey flows: moves between states, mean per replication"),
            ("metrics.csv", "Every metric with its 95% CI")),
    "comparison": (("comparison.csv", "Every option against the reference, every headline "
                    "metric: paired differences with 95% CIs"),
                   ("finance.csv", "Unit economics per option with 95% CIs"),
                   ("ltv.csv", "LTV by cohort, segment and channel per option")),
    "sweep": (("sweep.csv", "Every point and metric: mean with 95% CI"),
              ("sweep_comparison.csv", "The scenarios against the baseline at every point")),
    "psa": (("psa_summary.csv", "The options under the PSA, best expected value first"),
            ("psa_metrics.csv", "The headline metrics under the PSA"),
            ("evppi.csv", "The value of partial perfect information per assumption and group"),
            ("tornado.csv", "One way at a time"),
            ("sobol.csv", "Sobol indices")),
    "curves": (("crossings.csv", "Where each marginal return crosses the threshold"),
               ("marginal.csv", "Marginal returns between neighbouring values"),
               ("curves.csv", "Every study metric at every value: mean with 95% CI")),
    "allocation": (("allocation.csv", "Per channel: today, the proposal and its marginal ROI"),
                   ("allocation_verification.csv", "Today's allocation against the proposal "
                    "on fresh replications"),
                   ("allocation_rounds.csv", "The search's rounds")),
    "seek": (("seek.csv", "Every value tried: mean with 95% CI"),),
    "portfolio": (("portfolio_sets.csv", "The sets of interventions simulated"),
                  ("portfolio_verified.csv", "The best sets on fresh replications"),
                  ("portfolio_skipped.csv", "Sets left out, and why")),
}
TABLE_ROWS = {"metrics.csv": 250}  # a run's every metric: small, and read as a whole
MARKDOWN = {"psa": "psa.md", "curves": "curves.md", "allocation": "allocation.md",
            "seek": "seek.md", "portfolio": "portfolio.md"}
KINDS = {"run": "Run", "blocks": "Replication blocks merged", "comparison": "Comparison",
         "sweep": "Sweep over parameters", "psa": "Probabilistic sensitivity analysis",
         "curves": "Response curves", "allocation": "Budget allocation", "seek": "Goal seek",
         "portfolio": "Set of interventions"}
MARKS = {"psa.json": "psa", "curves.json": "curves", "allocation.json": "allocation",
         "seek.json": "seek", "portfolio.json": "portfolio"}

# the config keys shown as the levers and costs of a run (fnmatch patterns on key paths)
LEVERS = ("market.size", "journey.name", "journey.content_quality", "journey.site_usability",
          "journey.social_proof", "channels.*.spend_per_day", "channels.*.fixed_cost_per_day",
          "checkout.steps", "checkout.forced_account", "checkout.hidden_fees",
          "checkout.payment_methods", "checkout.page_load_seconds", "checkout.trust",
          "checkout.reminder", "retention.model", "retention.repeat.*",
          "retention.subscription.*", "retention.messaging.newsletter",
          "retention.messaging.recommendations", "retention.messaging.cross_sell",
          "retention.messaging.thank_you", "retention.messaging.*cost*", "loyalty.enabled",
          "loyalty.discount", "loyalty.cost_per_member_per_month", "support.agents",
          "support.cost_per_agent_per_day", "advocacy.program", "advocacy.reward_per_referral",
          "economics.*", "scenario.cost_per_day", "scenario.start_day", "scenario.ramp_days",
          "run.horizon_days")
# what a calibration's fitted group sets from data (sim.calibrate.fitted): group -> keys
FITTED = {"retention": ("retention.model", "retention.repeat.*"),
          "economics": ("economics.order_value_model", "economics.order_value_mean",
                        "economics.order_value_cv", "economics.gamma_gamma.*"),
          "journey": ("journey.stages.*.dwell.*", "journey.stages.*.exits.*"),
          "uncertainty": ("uncertainty.*",)}
# what business=fitted_<name> makes neutral because the fit already holds it
FITTED_NEUTRAL = ("market.segments.*.order_value", "market.segments.*.purchase_rate",
                  "market.segments.*.churn", "experience.churn_per_point",
                  "experience.leave_after_bad")


class _Refused(Exception):
    """A file of the folder that the page cannot be built from (the message says why)."""


# --------------------------------------------------------------------------- the folder
@dataclass
class _Folder:
    """A finished folder read as untrusted input: only regular files directly inside it
    (and the regular files of a real ``.hydra/`` folder in it), never through a link, each
    within a size limit, all together within ``MAX_READ_BYTES``."""

    path: Path
    left: int = MAX_READ_BYTES
    entries: dict[str, os.stat_result] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # files shown in the page

    def __post_init__(self) -> None:
        try:
            with os.scandir(self.path) as it:
                for n, entry in enumerate(it):
                    if n >= MAX_ENTRIES:
                        raise _Refused(f"{self.path}: more than {MAX_ENTRIES:,} entries; "
                                       "not a folder of outputs")
                    self.entries[entry.name] = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            raise _Refused(f"{self.path}: no such folder") from None
        except NotADirectoryError:
            raise _Refused(f"{self.path}: not a folder") from None
        except OSError as err:
            raise _Refused(f"{self.path}: cannot list the folder ({err.strerror})") from None

    def has(self, name: str) -> bool:
        """Whether ``name`` is in the folder as a file (a link counts: reading it is
        refused)."""
        st = self.entries.get(name)
        return st is not None and not stat.S_ISDIR(st.st_mode)

    def read(self, name: str, what: str, max_bytes: int, inside: str = "") -> bytes:
        """The bytes of the regular file ``name`` (in the subfolder ``inside``)."""
        path = self.path / inside / name if inside else self.path / name
        try:
            st = path.lstat()
        except OSError:
            raise _Refused(f"{path}: no such {what}") from None
        if stat.S_ISLNK(st.st_mode):
            raise _Refused(f"{path}: a link; report.html reads only regular files inside "
                           "the folder, never through a link")
        try:
            data = read_user_bytes(path, what, max_bytes)
        except InputError as err:
            raise _Refused(str(err)) from None
        self.left -= len(data)
        if self.left < 0:
            raise _Refused(f"{path}: the files read for report.html hold more than "
                           f"{MAX_READ_BYTES:,} bytes together")
        if not inside:
            self.used.add(name)
        return data

    def text(self, name: str, what: str, max_bytes: int = MAX_TEXT_BYTES,
             inside: str = "") -> str:
        data = self.read(name, what, max_bytes, inside)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            where = self.path / inside / name
            raise _Refused(f"{where}: not UTF-8 text ({err.reason} at byte {err.start})"
                           ) from None

    def json(self, name: str) -> Any:
        text = self.text(name, "JSON document", MAX_DOCUMENT_BYTES)
        try:
            return json.loads(text)
        except RecursionError:
            raise _Refused(f"{self.path / name}: nested too deeply") from None
        except ValueError as err:
            raise _Refused(f"{self.path / name}: not valid JSON ({_one_line(err)})") from None

    def table(self, name: str) -> pd.DataFrame:
        text = self.text(name, "table")
        try:
            table = pd.read_csv(_io.StringIO(text))
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except (pd.errors.ParserError, ValueError) as err:
            raise _Refused(f"{self.path / name}: not a well-formed CSV file "
                           f"({_one_line(str(err).strip().splitlines()[-1])})") from None
        if table.shape[1] > MAX_TABLE_COLUMNS * 4:
            raise _Refused(f"{self.path / name}: {table.shape[1]:,} columns; a table the "
                           "tool writes has far fewer")
        return table

    def png(self, name: str) -> tuple[bytes, int, int]:
        """A PNG's bytes and its size in pixels, checked: the signature, an IHDR chunk
        first, the IEND chunk last."""
        data = self.read(name, "PNG image", MAX_FIGURE_BYTES)
        path = self.path / name
        if not data.startswith(PNG_SIGNATURE):
            raise _Refused(f"{path}: not a PNG image (it does not start with the PNG "
                           "signature)")
        if len(data) < 33 or data[12:16] != b"IHDR" or not data.endswith(PNG_END):
            raise _Refused(f"{path}: not a whole PNG image (no header or no end chunk)")
        width, height = struct.unpack(">II", data[16:24])
        if not (0 < width <= 20_000 and 0 < height <= 20_000):
            raise _Refused(f"{path}: a PNG image of {width} x {height} pixels; the figures "
                           "are at most 20,000 pixels a side")
        return data, width, height

    def hydra(self, name: str) -> Any:
        """One of Hydra's files in ``.hydra/`` as plain data, None when it is not there."""
        sub = self.entries.get(".hydra")
        if sub is None or not stat.S_ISDIR(sub.st_mode):
            if sub is not None and stat.S_ISLNK(sub.st_mode):
                raise _Refused(f"{self.path / '.hydra'}: a link; report.html reads only "
                               "inside the folder, never through a link")
            return None
        if not os.path.lexists(self.path / ".hydra" / name):
            return None
        text = self.text(name, "Hydra file", MAX_TEXT_BYTES, inside=".hydra")
        return _plain_yaml(text, self.path / ".hydra" / name)


def _plain_yaml(text: str, path: Path) -> Any:
    """YAML as plain data (no tags, no code), within ``MAX_YAML_NODES`` values once its
    aliases are expanded."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except RecursionError:
        raise _Refused(f"{path}: nested too deeply") from None
    except (yaml.YAMLError, ValueError) as err:
        raise _Refused(f"{path}: not plain YAML ({_one_line(err)})") from None
    count = 0
    stack = [doc]
    while stack:  # an alias is counted wherever it is used: a bomb stops here
        node = stack.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise _Refused(f"{path}: more than {MAX_YAML_NODES:,} values (YAML aliases "
                           "included); not a file Hydra writes")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return doc


# ------------------------------------------------------------------------ small helpers
def _one_line(x: Any) -> str:
    """Text on one line: line breaks and other unprintable characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(x))


def _e(x: Any) -> str:
    """Any text from the folder, escaped for HTML text and attribute values."""
    return html.escape(str(x), quote=True)


def _float(x: Any) -> float:
    """A number from an untrusted document, NaN if it is not one."""
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        return math.nan
    try:
        return float(x)
    except (OverflowError, ValueError):
        return math.nan


def _percent(metric: str) -> bool:
    return metric == "monthly_churn" or metric_range(metric) == (0.0, 1.0)


def _fmt(x: Any, metric: str = "", sign: bool = False) -> str:
    """A value as the page shows it: shares as percentages (their differences in
    percentage points), money and counts with thousands separators."""
    v = _float(x)
    if not math.isfinite(v):
        return "–"
    plus = "+" if sign else ""
    if metric and _percent(metric):
        return f"{v * 100:{plus}.2f} pp" if sign else f"{v:.2%}"
    if abs(v) >= 100:
        return f"{v:{plus},.0f}"
    return f"{v:{plus}.1f}" if abs(v) >= 10 else f"{v:{plus}.3g}"


def _span(low: Any, high: Any, metric: str = "", sign: bool = False) -> str:
    if not (math.isfinite(_float(low)) and math.isfinite(_float(high))):
        return ""
    return f"[{_fmt(low, metric, sign)}, {_fmt(high, metric, sign)}]"


def _cell(x: Any) -> str:
    """A table cell: numbers to four significant digits (the CSV file keeps them all),
    text escaped and cut."""
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    v = _float(x)
    if isinstance(x, int | float | np.integer | np.floating):
        if not math.isfinite(v):
            return "" if math.isnan(v) else _e(v)
        if v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}" if abs(v) >= 10_000 else f"{int(v)}"
        return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"
    text = "" if x is None else str(x)
    return _e(text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…")


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _text(x: Any, limit: int = 2000) -> str:
    """A text field of an untrusted document ('' if it is not text), cut at ``limit``."""
    return x[:limit] if isinstance(x, str) else ""


# a cell that holds a number (and perhaps its interval), right-aligned and kept on one line
_NUMBER = re.compile(r"^[+\-–]?(?:[\d,]*\.?\d+(?:e[+\-]?\d+)?|inf|nan)(?: ?%| pp)?"
                     r"(?: \[[^\]]*\])?$")


def _html_table(header: Sequence[str] | None, rows: Iterable[Sequence[str]], cls: str = ""
                ) -> str:
    """A table of cells already escaped (no header row with ``header`` None); a column of
    numbers is right-aligned."""
    rows = [list(r) for r in rows]
    width = len(header) if header is not None else max((len(r) for r in rows), default=0)

    def numeric(i: int) -> bool:
        cells = [r[i] for r in rows if i < len(r)]
        return (any(_NUMBER.match(c) for c in cells)
                and all(_NUMBER.match(c) or c in ("", "–") for c in cells))

    right = [numeric(i) for i in range(width)]
    head = "" if header is None else "<thead><tr>" + "".join(
        f'<th scope="col"{" class=num" if right[i] else ""}>{h}</th>'
        for i, h in enumerate(header)) + "</tr></thead>"
    body = "".join("<tr>" + "".join(
        f'<td class="num">{c}</td>' if i < width and right[i] and c else f"<td>{c}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f'<div class="table-wrap"><table class="{cls}">{head}<tbody>{body}</tbody>'
            "</table></div>")


def _pairs(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of label and value (both escaped already)."""
    return _html_table(None, rows, "pairs")


# ----------------------------------------------------------------------------- Markdown
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_ITEM = re.compile(r"^\s*[-*]\s+")


def _inline(text: str) -> str:
    """A line of Markdown escaped, then its **bold** and `code` made into tags."""
    out = _e(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _row(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_html(text: str) -> str:
    """The Markdown the tool writes (headings, paragraphs, lists, tables, bold, code) as
    HTML, every character of it escaped first; headings start at level 3 (the page's
    sections are level 2)."""
    out: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            level = min(len(m.group(1)) + 2, 6)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif (line.lstrip().startswith("|") and i + 1 < len(lines)
              and _TABLE_RULE.match(lines[i + 1].strip())):
            header, rows = _row(line), []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_row(lines[i]))
                i += 1
            out.append(_html_table([_inline(h) for h in header],
                                   [[_inline(c) for c in r] for r in rows]))
        elif _ITEM.match(line):
            items = []
            while i < len(lines) and _ITEM.match(lines[i]):
                items.append(f"<li>{_inline(_ITEM.sub('', lines[i]))}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        else:
            para = []
            while (i < len(lines) and lines[i].strip() and not lines[i].startswith("#")
                   and not lines[i].lstrip().startswith("|")
                   and not _ITEM.match(lines[i])):
                para.append(_inline(lines[i].strip()))
                i += 1
            out.append(f"<p>{' '.join(para)}</p>")
    return "\n".join(out)


# --------------------------------------------------------------------- plotly, packed
_PLOTLY_TAGS = re.compile(r"</?(?:b|i|em|sup|sub|br|extra)\s*/?>", re.IGNORECASE)


def _plotly_text(text: str) -> str:
    """A text for a Plotly chart: Plotly reads a few HTML tags in its texts, links among
    them; keep only its formatting tags and escape every other ``<`` and ``>``."""
    parts, last = [], 0
    for m in _PLOTLY_TAGS.finditer(text):
        parts.append(text[last:m.start()].replace("<", "&lt;").replace(">", "&gt;"))
        parts.append(m.group(0))
        last = m.end()
    parts.append(text[last:].replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(parts)


def _plotly_safe(x: Any) -> Any:
    """A chart's specification with every text made safe (``_plotly_text``)."""
    if isinstance(x, str):
        return _plotly_text(x)
    if isinstance(x, Mapping):
        return {str(k): _plotly_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plotly_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plotly_safe(x.tolist())
    return io.json_ready(x)


@functools.cache
def _plotly_bundle() -> tuple[str, str]:
    """plotly.js gzip-packed and base64-encoded, and the CSP hash of its text."""
    from plotly.offline import get_plotlyjs

    code = get_plotlyjs().encode("utf-8")
    packed = base64.b64encode(gzip.compress(code, compresslevel=6, mtime=0)).decode("ascii")
    return packed, _csp_hash(code)


def _csp_hash(code: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code).digest()).decode("ascii") + "'"


def _json_script(doc: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element: no ``<``, ``>``,
    ``&`` or line separators in it, so no text can close the element."""
    text = json.dumps(doc, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    for c, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(c, code)
    return text


PLOTLY_CONFIG = {"responsive": True, "displaylogo": False,
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "sendDataToCloud"]}

# the page's one script: opens every <details> for printing, unpacks plotly.js when the page
# has an interactive chart and draws them
LOADER = r"""(function () {
  "use strict";
  // printing: every folded table open, the charts at the width of a page (A4 or Letter)
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not(.wide)").forEach(function (d) { d.open = true; });
    if (window.Plotly) {
      document.querySelectorAll(".js-plotly-plot").forEach(function (d) {
        Plotly.relayout(d, {width: 680});
      });
    }
  });
  window.addEventListener("afterprint", function () {
    if (window.Plotly) {
      document.querySelectorAll(".js-plotly-plot").forEach(function (d) {
        Plotly.relayout(d, {width: null, autosize: true});
      });
    }
  });
  var specs = Array.prototype.slice.call(document.querySelectorAll("script.chart-spec"));
  if (!specs.length) { return; }
  function say(text) {
    specs.forEach(function (el) {
      var div = document.getElementById(el.getAttribute("data-for"));
      if (div) { div.textContent = text; div.className = "chart-note"; }
    });
  }
  var packed = document.getElementById("plotly-gzip-base64");
  if (!packed || typeof DecompressionStream === "undefined" || typeof Blob === "undefined") {
    say("This browser cannot unpack the interactive chart (it needs Chrome 80, Firefox " +
        "113, Safari 16.4 or later); the tables and figures show the same results.");
    return;
  }
  var raw = atob(packed.textContent.replace(/\s+/g, ""));
  var bytes = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  new Response(stream).text().then(function (code) {
    var s = document.createElement("script");
    s.textContent = code;
    document.head.appendChild(s);
    if (typeof Plotly === "undefined") { throw new Error("plotly.js did not start"); }
    return Promise.all(specs.map(function (el) {
      var fig = JSON.parse(el.textContent);
      var div = document.getElementById(el.getAttribute("data-for"));
      div.textContent = "";
      return Plotly.newPlot(div, fig.data, fig.layout, fig.config).then(function () {
        div.setAttribute("data-drawn", "true");
      });
    }));
  }).catch(function (err) {
    say("The interactive chart could not be drawn (" + err + "); the tables and " +
        "figures show the same results.");
  });
})();"""


# ------------------------------------------------------------------------------ the page
@dataclass
class _Page:
    """What the page holds, section by section (HTML already escaped)."""

    kind: str
    title: str
    subtitle: str = ""
    answer: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)
    charts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def chart(self, spec: dict[str, Any], caption: str, label: str, wide: bool = False
              ) -> str:
        """A div the loader draws ``spec`` into, with its caption; the spec is kept to
        be written as a JSON data block. A ``wide`` chart (the Sankey) keeps a width its
        labels fit in and scrolls sideways on a phone."""
        div = f"chart-{len(self.charts) + 1}"
        self.charts.append((div, spec))
        return (f'<figure class="chart"><div class="{"scroll-x" if wide else ""}">'
                f'<div id="{div}" class="plot{" wide" if wide else ""}" role="img" '
                f'aria-label="{_e(label)}"><p class="chart-note">Drawing the interactive '
                f'chart…</p></div></div><figcaption>{caption}</figcaption></figure>')


CSS = """
:root { color-scheme: light; --ink: #1d2329; --muted: #5b6670; --line: #d9dee3;
  --accent: #1f5f99; --soft: #f3f6f9; --good: #1e7a46; --warn: #9a5b00; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: #fff; }
header.top { background: var(--soft); border-bottom: 1px solid var(--line); }
.wrap { max-width: 72rem; margin: 0 auto; padding: 0 1.25rem; }
header.top .wrap { padding-top: 1.25rem; padding-bottom: 0.75rem; }
.kind { margin: 0; color: var(--muted); font-size: 0.85rem; text-transform: uppercase;
  letter-spacing: 0.06em; }
h1 { margin: 0.2rem 0 0.3rem; font-size: 1.7rem; line-height: 1.25;
  overflow-wrap: anywhere; }
.subtitle { margin: 0; color: var(--muted); overflow-wrap: anywhere; }
nav.toc { margin-top: 0.75rem; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; }
nav.toc a { color: var(--accent); text-decoration: none; font-weight: 600; }
nav.toc a:hover { text-decoration: underline; }
main { padding-bottom: 3rem; }
section { margin-top: 2rem; }
h2 { font-size: 1.35rem; border-bottom: 2px solid var(--line); padding-bottom: 0.25rem; }
h3 { font-size: 1.1rem; margin-top: 1.5rem; }
h4, h5, h6 { font-size: 1rem; }
h3 .file { font-weight: 400; color: var(--muted); font-size: 0.85rem; margin-left: 0.4rem; }
p, li { overflow-wrap: anywhere; }
code { font-size: 0.9em; background: var(--soft); padding: 0 0.2em; border-radius: 3px; }
.verdict { border-left: 5px solid var(--accent); background: var(--soft);
  padding: 0.75rem 1rem; margin: 1rem 0; font-size: 1.05rem; }
.verdict.good { border-color: var(--good); }
.verdict.warn { border-color: var(--warn); }
.covers { color: var(--muted); font-size: 0.95rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr));
  gap: 0.75rem; margin: 1rem 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 0.7rem 0.9rem; }
.card .label { color: var(--muted); font-size: 0.85rem; }
.card .value { font-size: 1.45rem; font-weight: 650; font-variant-numeric: tabular-nums;
  overflow-wrap: anywhere; }
.card .ci { font-size: 0.9rem; font-variant-numeric: tabular-nums; }
.card .value .name { display: block; font-size: 1rem; line-height: 1.35; padding: 0.2rem 0;
  overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; margin: 0.5rem 0 1rem; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 0.3rem 0.6rem; text-align: left;
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
th.num, td.num { text-align: right; }
td.num { white-space: nowrap; }
td { max-width: 32rem; overflow-wrap: break-word; }
td small { color: var(--muted); display: block; min-width: 12rem; }
table.pairs td:first-child { color: var(--muted); white-space: nowrap; }
figure { margin: 1.25rem 0 1.75rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.92rem; margin-top: 0.35rem; }
figcaption b { color: var(--ink); }
.plot { width: 100%; min-height: 12rem; }
.scroll-x { overflow-x: auto; }
.plot.wide { min-width: 50rem; }
.chart-note { color: var(--muted); font-style: italic; }
details { margin: 0.5rem 0 1rem; }
summary { cursor: pointer; color: var(--accent); font-weight: 600; }
pre { background: var(--soft); padding: 0.75rem; overflow-x: auto; font-size: 0.8rem;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.note { color: var(--warn); }
footer { color: var(--muted); font-size: 0.85rem; border-top: 1px solid var(--line);
  padding: 1rem 0 2rem; }
@media (max-width: 40rem) {
  body { font-size: 15px; }
  h1 { font-size: 1.35rem; }
  .wrap { padding: 0 0.8rem; }
  .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.5rem; }
  .card { padding: 0.5rem 0.6rem; }
  .card .value { font-size: 1.15rem; }
  th, td { padding: 0.25rem 0.4rem; }
}
@media print {
  @page { margin: 14mm 12mm; }
  body { font-size: 10pt; }
  header.top { background: none; border: 0; }
  nav.toc, .modebar-container, .updatemenu-container { display: none !important; }
  details.wide[open] > :not(summary) { display: none; }
  details.wide > summary::after { content: " (too wide to print: see the CSV file)";
    font-weight: 400; color: var(--muted); }
  .wrap { max-width: none; padding: 0; }
  section { margin-top: 1rem; }
  h2 { break-after: avoid; }
  figure, .card, .verdict, tr { break-inside: avoid; }
  figure img { max-height: 240mm; width: auto; max-width: 100%; }
  .table-wrap, .scroll-x { overflow: visible; }
  .plot.wide { min-width: 0; }
  table { font-size: 7.5pt; width: 100%; table-layout: fixed; }
  th, td, td.num { white-space: normal; overflow-wrap: anywhere; padding: 1px 3px;
    max-width: none; }
  td small { min-width: 0; }
  pre { white-space: pre-wrap; font-size: 7pt; }
}
"""


def _document(page: _Page, folder: Path) -> str:
    """The whole page: the CSP, the style, the sections, the charts and the script."""
    scripts = [_csp_hash(LOADER.encode("utf-8"))]
    packed = ""
    if page.charts:
        bundle, bundle_hash = _plotly_bundle()
        scripts.append(bundle_hash)
        packed = (f'<script type="application/octet-stream" id="plotly-gzip-base64">'
                  f"{bundle}</script>\n")
    csp = ("default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; "
           f"script-src {' '.join(scripts)}; base-uri 'none'; form-action 'none'")
    specs = "".join(
        f'<script type="application/json" class="chart-spec" data-for="{div}">'
        f"{_json_script(_plotly_safe(spec))}</script>\n" for div, spec in page.charts)
    sections = [("answer", "The answer", page.answer), ("figures", "Figures", page.figures),
                ("tables", "Tables", page.tables),
                ("assumptions", "Assumptions", page.assumptions),
                ("provenance", "Provenance", page.provenance)]
    toc = "".join(f'<a href="#{sid}">{title}</a>' for sid, title, parts in sections if parts)
    body = "".join(f'<section id="{sid}"><h2>{title}</h2>\n' + "\n".join(parts)
                   + "</section>\n" for sid, title, parts in sections if parts)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="journey-sim">\n'
        f"<title>{_e(page.title)} – journey-sim report</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n"
        f'<header class="top"><div class="wrap"><p class="kind">journey-sim · '
        f"{_e(KINDS[page.kind])}</p><h1>{_e(page.title)}</h1>"
        + (f'<p class="subtitle">{page.subtitle}</p>' if page.subtitle else "")
        + f'<nav class="toc" aria-label="Sections">{toc}</nav></div></header>\n'
        f'<main class="wrap">\n{body}</main>\n'
        f'<footer class="wrap">report.html of {_e(folder.name or folder)}: a view of the '
        "files in its folder, written after them; it opens offline and links nothing."
        "</footer>\n"
        f"{specs}{packed}<script>{LOADER}</script>\n</body>\n</html>\n")


# ------------------------------------------------------------------------ what it is
def _finished(folder: _Folder) -> tuple[str, dict[str, Any], str]:
    """The kind of folder, its finished mark's document and the mark's name.

    A folder is finished by the file its writer writes last (``sim.io.FINISHED_MARKS``):
    ``metrics.json`` for a run, merged blocks, a comparison or a sweep, an analysis's
    own JSON otherwise.
    """
    for mark in io.FINISHED_MARKS:
        if folder.has(mark):
            break
    else:
        raise _Refused(f"{folder.path}: not a finished folder of outputs (none of "
                       f"{', '.join(io.FINISHED_MARKS)} in it)")
    stale = io.stale_temp_files(folder.path)
    if stale:
        raise _Refused(f"{folder.path}: unfinished ({stale[0].name} left: a write was "
                       "stopped half-way)")
    doc = folder.json(mark)
    if not isinstance(doc, dict):
        raise _Refused(f"{folder.path / mark}: not a JSON object")
    if mark in MARKS:
        return MARKS[mark], doc, mark
    if "sweep" in doc:
        return "sweep", doc, mark
    if "comparison" in doc or folder.has("comparison.csv"):
        return "comparison", doc, mark
    merged = not folder.has("customers.csv") and folder.has("metrics.csv")
    return ("blocks" if merged else "run"), doc, mark


# ---------------------------------------------------------------------------- answers
def _cards(rows: Iterable[tuple[str, str, str, str]]) -> str:
    """Headline cards: (label, value, interval, note), escaped already."""
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{label}</div><div class="value">{value}'
        f'</div><div class="ci">{ci}</div>'
        + (f'<div class="label">{note}</div>' if note else "") + "</div>"
        for label, value, ci, note in rows) + "</div>"


def _run_answer(page: _Page, doc: dict[str, Any]) -> None:
    metrics = _dict(doc.get("metrics"))
    n = _float(doc.get("replications"))
    headline = [*RUN_HEADLINE, *(BASE_HEADLINE if "base.npv" in metrics else ())]
    cards = []
    for key, label in headline:
        m = _dict(metrics.get(key))
        if not m:
            continue
        ci = _span(m.get("low"), m.get("high"), key)
        cards.append((_e(label), _e(_fmt(m.get("mean"), key)),
                      _e(f"95% CI {ci}") if ci else "no interval", _e(key)))
    if not cards:
        page.answer.append('<p class="note">metrics.json holds none of the headline '
                           "metrics.</p>")
        return
    reps = f"{n:.0f} replication{'' if n == 1 else 's'}" if math.isfinite(n) else "replications"
    page.answer.append(f"<p>Mean per replication over {_e(reps)}, with its 95% confidence "
                       "interval across the replications.</p>")
    page.answer.append(_cards(cards))
    notes = []
    if n == 1:
        notes.append(ONE_REPLICATION)
    aware = _float(_dict(metrics.get("aware")).get("mean"))
    bought = _float(_dict(metrics.get("purchases")).get("mean"))
    if aware == 0:
        notes.append("Nobody became aware in any replication: the market, the channels' "
                     "reach or the horizon leave nothing to show.")
    elif bought == 0:
        notes.append("Nobody bought in any replication, so LTV, CAC, retention and payback "
                     "have no value.")
    page.answer += [f'<p class="note">{_e(x)}</p>' for x in notes]
    page.answer.append(f'<p class="covers"><b>What the intervals cover.</b> {COVERS_NOISE}</p>')


def _comparison_rows(doc: dict[str, Any], folder: _Folder) -> pd.DataFrame:
    """The comparison's rows (metrics.json's ``comparison``, else comparison.csv), every
    numeric column as numbers."""
    records = doc.get("comparison")
    table = (pd.DataFrame([r for r in records if isinstance(r, dict)])
             if isinstance(records, list) and records else folder.table("comparison.csv"))
    for c in ("scenario", "metric"):
        if c not in table.columns:
            raise _Refused(f"{folder.path}: the comparison has no column {c!r}")
    table["scenario"] = table["scenario"].astype(str)
    table["metric"] = table["metric"].astype(str)
    for c in ("rank", "difference", "difference_low", "difference_high", "share_better",
              "replications", "extra_cost", "roi", "roi_low", "roi_high"):
        table[c] = pd.to_numeric(table[c], errors="coerce") if c in table else math.nan
    return table


def _higher_is_better(metric: str) -> bool:
    return HEADLINE.get(metric, not metric.startswith(("cac", "monthly_churn", "costs")))


def _better_in(r: pd.Series) -> str:
    k, n = _float(r["share_better"]) * _float(r["replications"]), _float(r["replications"])
    return f"{k:.0f} of {n:.0f}" if math.isfinite(k) and math.isfinite(n) else "–"


def _verdict(best: pd.Series, metric: str, reference: str, n: float) -> tuple[str, str]:
    """The recommendation of a comparison in words, and its tone."""
    d, lo, hi = (_float(best[c]) for c in ("difference", "difference_low", "difference_high"))
    up = _higher_is_better(metric)
    name, how = _e(best["scenario"]), f"{_fmt(d, metric, True)} {_span(lo, hi, metric, True)}"
    sure = f"better in {_better_in(best)} replications"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (f"<b>{name} ranks first</b> on {_e(metric)} ({_e(how.strip())} against "
                f"{_e(reference)}) on a single replication: no interval, so no telling yet "
                "whether it is better; run at least two replications (run.replications=2 or "
                "more) before deciding.", "warn")
    if (lo > 0) if up else (hi < 0):
        return (f"<b>Recommendation: {name}</b>. {_e(metric)} {_e(how)} against "
                f"{_e(reference)} (paired, 95% CI), {_e(sure)}; surely "
                f"{'better' if d * (1 if up else -1) > 0 else 'worse'} on the replications "
                "run.", "good")
    if (hi < 0) if up else (lo > 0):
        return (f"<b>Recommendation: keep {_e(reference)}</b>. Every option does surely "
                f"worse on {_e(metric)}; the best of them, {name}, {_e(how)}.", "warn")
    return (f"<b>No option is surely better than {_e(reference)}</b> on {_e(metric)}: "
            f"{name} ranks first with {_e(how)}, an interval that holds 0 ({_e(sure)}). "
            f"Keep {_e(reference)}, or run more replications to narrow the intervals.",
            "warn")


def _comparison_answer(page: _Page, doc: dict[str, Any], folder: _Folder) -> None:
    table = _comparison_rows(doc, folder)
    rank_by = _text(doc.get("rank_by"), 200) or "npv"
    reference = _text(doc.get("reference"), 200) or "baseline"
    n = _float(doc.get("replications"))
    descriptions = {str(k): _text(v) for k, v in _dict(doc.get("scenarios")).items()}
    ranked = table[table["metric"] == rank_by].sort_values("rank", kind="stable")
    if not len(ranked):
        page.answer.append(f'<p class="note">The comparison has no row of its ranking metric '
                           f"{_e(rank_by)}.</p>")
        return
    text, tone = _verdict(ranked.iloc[0], rank_by, reference, n)
    page.answer.append(f'<p class="verdict {tone}">{text}</p>')
    rows = []
    for _, r in ranked.iterrows():
        d = f"{_fmt(r['difference'], rank_by, True)} " + _span(
            r["difference_low"], r["difference_high"], rank_by, True)
        roi = f"{_fmt(r['roi'])} {_span(r['roi_low'], r['roi_high'])}".strip()
        about = descriptions.get(r["scenario"], "")
        rows.append([_e(_fmt(r["rank"])), f"<b>{_e(r['scenario'])}</b>"
                     + (f"<small>{_e(about)}</small>" if about else ""),
                     _e(d.strip()), _e(_better_in(r)), _e(_fmt(r["extra_cost"])),
                     _e(roi if math.isfinite(_float(r["roi"])) else "–")])
    reps = f"{n:.0f}" if math.isfinite(n) else "?"
    page.answer.append(_html_table(
        ["rank", "option (what it changes)", f"Δ {_e(rank_by)} vs {_e(reference)} [95% CI]",
         "better in (replications)", "extra cost", "ROI [95% CI]"], rows))
    page.answer.append(
        f"<p>Each option against {_e(reference)}, replication by replication on common random "
        f"numbers ({_e(reps)} replications each): the paired difference with its 95% t "
        "interval. <i>better in</i> counts the replications where the option did better; "
        "the extra cost is every cost above the reference's, undiscounted; ROI = extra NPV ÷ "
        "extra cost.</p>")
    metrics = [m for m in dict.fromkeys([rank_by, *table["metric"]])]
    spec = _ranking_chart(table, metrics, reference)
    page.answer.append(page.chart(
        spec, "<b>The ranking, interactive.</b> Each option's paired difference from "
        f"{_e(reference)} with its 95% CI; hover for the values, click an option in the legend "
        "to hide or show it, pick another metric in the menu.",
        f"Paired differences from {reference}"))
    page.answer.append(f'<p class="covers"><b>What the intervals cover.</b> {COVERS_NOISE}</p>')


def _ranking_chart(table: pd.DataFrame, metrics: list[str], reference: str,
                   unit: str = "replications", interval: str = "95% CI") -> dict:
    """Plotly: one trace per option (the legend toggles it), its difference from the
    reference with its interval as error bars; a menu picks the metric. ``unit``: what
    "better in k of n" counts."""
    first = table[table["metric"] == metrics[0]].sort_values("rank", kind="stable")
    names = list(dict.fromkeys(first["scenario"])) or list(dict.fromkeys(table["scenario"]))
    per_metric = {}
    for m in metrics:
        rows = table[table["metric"] == m].set_index("scenario")
        scale = 100.0 if _percent(m) else 1.0
        pp = " (percentage points)" if scale == 100 else ""
        x, err, minus, custom = [], [], [], []
        for name in names:
            r = rows.loc[name] if name in rows.index else None
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            d, lo, hi = ((_float(r[c]) * scale if r is not None else math.nan)
                         for c in ("difference", "difference_low", "difference_high"))
            x.append([d])
            err.append(hi - d if math.isfinite(hi) else None)
            minus.append(d - lo if math.isfinite(lo) else None)
            custom.append([[_fmt(lo / scale, m, True), _fmt(hi / scale, m, True),
                            f"{_better_in(r)} {unit}" if r is not None else "–"]])
        per_metric[m] = {"x": x, "err": err, "minus": minus, "custom": custom,
                         "title": f"Δ {m} vs {reference}{pp}, {interval}"}
    hover = ("<b>%{y}</b><br>Δ {metric}: %{x:,.4g}{pp}<br>{interval} [%{customdata[0]}, "
             "%{customdata[1]}]<br>better in %{customdata[2]}<extra></extra>")

    def template(m: str) -> str:
        return (hover.replace("{metric}", m).replace("{interval}", interval)
                .replace("{pp}", " pp" if _percent(m) else ""))

    first_m = per_metric[metrics[0]]
    data = [{"type": "scatter", "mode": "markers", "name": name, "y": [name],
             "x": first_m["x"][i], "customdata": first_m["custom"][i],
             "error_x": {"type": "data", "symmetric": False, "array": [first_m["err"][i]],
                         "arrayminus": [first_m["minus"][i]], "thickness": 2, "width": 6},
             "marker": {"size": 11}, "hovertemplate": template(metrics[0])}
            for i, name in enumerate(names)]
    buttons = [{"label": m, "method": "update",
                "args": [{"x": per_metric[m]["x"], "customdata": per_metric[m]["custom"],
                          "error_x": [{"type": "data", "symmetric": False,
                                       "array": [per_metric[m]["err"][i]],
                                       "arrayminus": [per_metric[m]["minus"][i]],
                                       "thickness": 2, "width": 6}
                                      for i in range(len(names))],
                          "hovertemplate": [template(m)] * len(names)},
                         {"xaxis.title.text": per_metric[m]["title"]}]} for m in metrics]
    layout = {"height": 200 + 46 * len(names), "margin": {"l": 10, "r": 20, "t": 50, "b": 100},
              "xaxis": {"title": {"text": first_m["title"]}, "zeroline": True,
                        "zerolinewidth": 2, "zerolinecolor": "#888", "rangemode": "tozero",
                        "automargin": True},
              "yaxis": {"type": "category", "autorange": "reversed", "automargin": True},
              "legend": {"orientation": "h", "x": 0, "y": 0, "yref": "container",
                         "yanchor": "bottom"},
              "showlegend": True, "hovermode": "closest",
              "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
              "updatemenus": [{"buttons": buttons, "direction": "down", "x": 0, "y": 1.02,
                               "xanchor": "left", "yanchor": "bottom", "showactive": True,
                               "active": 0}] if len(metrics) > 1 else []}
    return {"data": data, "layout": layout, "config": PLOTLY_CONFIG}


def _psa_answer(page: _Page, doc: dict[str, Any], folder: _Folder) -> None:
    summary = folder.table("psa_summary.csv") if folder.has("psa_summary.csv") else None
    evppi = folder.table("evppi.csv") if folder.has("evppi.csv") else None
    metric = _text(doc.get("metric"), 200) or "npv"
    reference = _text(doc.get("reference"), 200) or "baseline"
    def share(x: Any) -> str:
        return f"{_float(x):.0%}" if math.isfinite(_float(x)) else "–"

    cards = [(_e("Recommended"), f'<span class="name">'
              f"{_e(_text(doc.get('recommended'), 200) or '–')}</span>",
              _e(f"highest expected {metric}"), "")]
    if summary is not None and {"option", "prob_best"} <= set(summary.columns) and len(summary):
        best = summary.iloc[0]
        se = _float(best.get("prob_best_se"))
        cards.append(("P(best)", _e(share(best["prob_best"])),
                      _e(f"± {se:.0%} (Monte Carlo SE)") if math.isfinite(se) else "",
                      "the share of the draws it is best in"))
        beats = _float(best.get("prob_beats_reference"))
        if math.isfinite(beats):
            cards.append((_e(f"P(beats {reference})"), _e(share(beats)), "",
                          "the share of the draws it does better in"))
    evpi = _float(doc.get("evpi"))
    if math.isfinite(evpi):
        se = (_float(evppi["evpi_se"].iloc[0]) if evppi is not None and len(evppi)
              and "evpi_se" in evppi else math.nan)
        cards.append(("EVPI", _e(_fmt(evpi)), _e(f"± {_fmt(se)} (bootstrap SE)")
                      if math.isfinite(se) else "", "what knowing every assumption is worth"))
    if evppi is not None and len(evppi) and {"assumptions", "evppi"} <= set(evppi.columns):
        top = evppi.iloc[0]
        cards.append(("Research first",
                      f'<span class="name">{_e(str(top["assumptions"])[:120])}</span>',
                      _e(f"EVPPI {_fmt(top['evppi'])}"), ""))
    page.answer.append(_cards(cards))
    if summary is not None and {"option", "difference", "difference_low",
                                "difference_high"} <= set(summary.columns):
        rows = summary.assign(scenario=summary["option"].astype(str), metric=metric,
                              share_better=pd.to_numeric(summary.get("prob_beats_reference"),
                                                         errors="coerce"),
                              replications=_float(doc.get("points_run")),
                              rank=pd.to_numeric(summary.get("rank"), errors="coerce"))
        rows = rows[rows["scenario"] != reference]
        if len(rows):
            page.answer.append(page.chart(
                _ranking_chart(_numeric(rows), [metric], reference, "draws",
                               "2.5 to 97.5 percentiles"),
                f"<b>The options under the PSA.</b> Each option's difference in {_e(metric)} "
                f"from {_e(reference)}, draw by draw: the mean and the 2.5 and 97.5 percentiles "
                "across the draws (not a confidence interval); hover for the values, click an "
                "option in the legend to hide or show it.", f"Options against {reference}"))
    _markdown_answer(page, folder, "psa.md")
    covers = _text(doc.get("covers"))
    if covers:
        page.answer.append(f'<p class="covers"><b>What the ranges cover.</b> {_e(covers)}</p>')


def _numeric(table: pd.DataFrame) -> pd.DataFrame:
    for c in ("difference", "difference_low", "difference_high", "share_better",
              "replications", "rank"):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    return table


def _markdown_answer(page: _Page, folder: _Folder, name: str) -> None:
    if folder.has(name):
        text = folder.text(name, "Markdown summary")
        if text.startswith("# "):  # its title: the page's own says it
            text = text.split("\n", 1)[1] if "\n" in text else ""
        page.answer.append('<div class="markdown">' + markdown_html(text) + "</div>")
    else:
        page.answer.append(f'<p class="note">No {_e(name)} in the folder: the answer in words '
                           "is missing; the tables below hold the numbers.</p>")


def _analysis_answer(page: _Page, doc: dict[str, Any], folder: _Folder) -> None:
    _markdown_answer(page, folder, MARKDOWN[page.kind])
    covers = _text(doc.get("covers"))
    if covers and " cover" not in page.answer[-1]:  # the words say it already, mostly
        page.answer.append(f'<p class="covers"><b>What the intervals cover.</b> {_e(covers)}'
                           "</p>")


def _sweep_answer(page: _Page, doc: dict[str, Any], folder: _Folder) -> None:
    params = [p for p in _list(doc.get("sweep")) if isinstance(p, str)][:20]
    table = folder.table("sweep.csv") if folder.has("sweep.csv") else None
    page.answer.append(f"<p>Sweep over {_e(', '.join(params) or 'parameters')}: every point's "
                       "headline metrics, mean per replication with its 95% CI.</p>")
    if table is not None and {"metric", "mean", "low", "high"} <= set(table.columns):
        keys = [c for c in [*params, "scenario"] if c in table.columns]
        shown = [m for m in HEADLINE if m in set(table["metric"].astype(str))]
        rows = []
        for values, group in table.groupby(keys, sort=False) if keys else []:
            values = values if isinstance(values, tuple) else (values,)
            by = group.set_index(group["metric"].astype(str))
            cells = [_cell(v) for v in values]
            for m in shown:
                r = by.loc[m] if m in by.index else None
                if isinstance(r, pd.DataFrame):
                    r = r.iloc[0]
                cells.append("" if r is None else _e(
                    f"{_fmt(r['mean'], m)} {_span(r['low'], r['high'], m)}".strip()))
            rows.append(cells)
        if len(rows) > MAX_TABLE_ROWS:
            page.answer.append(f"<p>The first {MAX_TABLE_ROWS} of {len(rows)} points "
                               "(every point: sweep.csv).</p>")
        page.answer.append(_html_table([*(_e(k) for k in keys), *(_e(m) for m in shown)],
                                       rows[:MAX_TABLE_ROWS]))
    covers = _text(doc.get("intervals")) or COVERS_NOISE
    page.answer.append(f'<p class="covers"><b>What the intervals cover.</b> {_e(covers)}</p>')


# ---------------------------------------------------------------------------- figures
def _figures(page: _Page, folder: _Folder) -> None:
    """The folder's PNGs in the reading order of ``FIGURES`` (others after them, by name),
    each a ``data:`` URI with its caption; the interactive Sankey before ``flows.png``."""
    order = list(FIGURES)
    pngs = sorted((n for n in folder.entries if n.endswith(".png") and not n.startswith(".")),
                  key=lambda n: (order.index(n[:-4]) if n[:-4] in order else len(order), n))
    if len(pngs) > MAX_FIGURES:
        raise _Refused(f"{folder.path}: {len(pngs)} PNG images; report.html embeds at most "
                       f"{MAX_FIGURES}")
    sankey = _sankey(page, folder)
    if sankey and "flows.png" not in pngs:
        page.figures.append(sankey)
    for name in pngs:
        if name == "flows.png" and sankey:
            page.figures.append(sankey)
        data, width, height = folder.png(name)
        what = FIGURES.get(name[:-4], "")
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        page.figures.append(
            f'<figure><img src="{uri}" width="{width}" height="{height}" '
            f'alt="{_e(what or name)}"><figcaption><b>{_e(name)}</b>'
            + (f": {_e(what)}" if what else "") + "</figcaption></figure>")
    if not page.figures:
        page.figures.append("<p>No figures in this folder (written with run.plots=false or "
                            "--no-plots).</p>")


def _sankey(page: _Page, folder: _Folder) -> str:
    """The interactive Sankey of the journey from ``flows.csv`` (``sim.present.flows``),
    '' when the folder has no flows or the package cannot draw them."""
    if not folder.has("flows.csv"):
        return ""
    try:
        from sim.present.flows import sankey_spec
    except ImportError:  # a package without journey flows: the PNG (if any) alone
        return ""
    table = folder.table("flows.csv")
    try:
        spec = sankey_spec(table)
    except (InputError, KeyError, ValueError, TypeError, IndexError) as err:
        import logging

        logging.getLogger("sim").warning("report.html: no interactive Sankey: %s", err)
        return (f'<p class="note">The interactive Sankey could not be drawn from flows.csv '
                f"({_e(_one_line(err))}).</p>")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("data"), list):
        return ""
    layout = dict(_dict(spec.get("layout")))
    layout.setdefault("height", 520)
    return page.chart({"data": spec["data"], "layout": layout, "config": PLOTLY_CONFIG},
                      "<b>The journey, interactive</b> (flows.csv): customers moving between "
                      "the journey's states; hover over a band or a state for its count, drag "
                      "a state to rearrange.", "Sankey of the journey", wide=True)


# ----------------------------------------------------------------------------- tables
_PARTNERS = ("mean", "expected", "difference", "marginal", "value")


def _columns(columns: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """Each column shown, with the columns of its interval folded into it: ``x`` with
    ``x_ci_low``/``x_ci_high`` or ``x_low``/``x_high``, ``x_mean`` with ``x_low``/``x_high``,
    and a bare ``low``/``high`` with the first of ``mean``, ``expected``, ``difference``..."""
    cols = list(columns)
    pairs: dict[str, tuple[str, str]] = {}
    for c in cols:
        base = c[:-5] if c.endswith("_mean") else c
        for lo, hi in ((f"{c}_ci_low", f"{c}_ci_high"), (f"{base}_low", f"{base}_high")):
            if lo in cols and hi in cols and lo != c:
                pairs[c] = (lo, hi)
                break
    bare = next((c for c in _PARTNERS if c in cols and c not in pairs), None)
    if bare is not None and "low" in cols and "high" in cols and "low" not in pairs:
        pairs[bare] = ("low", "high")
    folded = {x for pair in pairs.values() for x in pair}
    return [(c, *pairs.get(c, (None, None))) for c in cols if c not in folded]


def _table_block(name: str, what: str, table: pd.DataFrame, max_rows: int) -> str:
    n = len(table)
    plan = _columns([str(c) for c in table.columns])[:MAX_TABLE_COLUMNS]
    header = [_e(c) + (" [95% CI]" if lo and lo.endswith("_ci_low") else
                       " [low, high]" if lo else "") for c, lo, _ in plan]
    rows = []
    for record in table.head(max_rows).itertuples(index=False):
        values = dict(zip([str(c) for c in table.columns], record, strict=True))
        row = []
        for c, lo, hi in plan:
            cell = _cell(values[c])
            if lo and math.isfinite(_float(values[lo])) and math.isfinite(_float(values[hi])):
                cell += f" [{_cell(values[lo])}, {_cell(values[hi])}]"
            row.append(cell)
        rows.append(row)
    if len(plan) > max(10, 2 * len(rows)) and rows:  # wide and short: a column per row
        header, rows = (["", *(r[0] for r in rows)],
                        [[h, *(r[i] for r in rows)] for i, h in enumerate(header) if i])
    note = (f" The first {max_rows} of {n:,} rows; every row is in {_e(name)}."
            if n > max_rows else "")
    body = _html_table(header, rows) if rows else "<p>(no rows)</p>"
    block = (f"<p>{note.strip()}</p>" if note else "") + body
    if len(header) > 14:  # too wide for a printed page: folded, and left so in print
        return (f'<details class="wide"><summary>{_e(what)} ({_e(name)}, {n:,} rows, '
                f"{len(header)} columns)</summary>{block}</details>")
    if n > 25:  # long: folded away on screen, opened for printing
        return (f"<details><summary>{_e(what)} ({_e(name)}, {n:,} rows)</summary>{block}"
                "</details>")
    return f'<h3>{_e(what)} <span class="file">{_e(name)}</span></h3>{block}'


def _tables(page: _Page, folder: _Folder) -> None:
    kind = "run" if page.kind == "blocks" else page.kind
    for name, what in TABLES[kind]:
        if folder.has(name):
            page.tables.append(_table_block(name, what, folder.table(name),
                                            TABLE_ROWS.get(name, MAX_TABLE_ROWS)))
    if not page.tables:
        page.tables.append("<p>No small tables in this folder.</p>")


# ------------------------------------------------------------------------ assumptions
@dataclass
class _Hydra:
    """What Hydra wrote into a command's folder (``.hydra/``): the composed config, the
    group choices and the command-line overrides; empty for a folder written from Python
    or merged by ``python -m sim.report``."""

    config: dict[str, Any] | None = None
    config_text: str = ""
    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    config_dirs: list[str] = field(default_factory=list)  # --config-dir

    @classmethod
    def read(cls, folder: _Folder) -> _Hydra:
        config = folder.hydra("config.yaml")
        if config is None:
            return cls()
        runtime = _dict(_dict(_dict(folder.hydra("hydra.yaml")).get("hydra")).get("runtime"))
        choices = _dict(runtime.get("choices"))
        sources = runtime.get("config_sources")
        overrides = folder.hydra("overrides.yaml")
        return cls(config=_dict(config),
                   config_text=folder.text("config.yaml", "Hydra file", inside=".hydra"),
                   choices={str(k): str(v) for k, v in choices.items() if v is not None},
                   overrides=[o for o in overrides or [] if isinstance(o, str)][:1000],
                   config_dirs=[str(_dict(s).get("path")) for s in
                                (sources if isinstance(sources, list) else [])
                                if _dict(s).get("provider") == "command-line"][:10])

    def overridden(self) -> dict[str, str]:
        """The config keys (and groups) set on the command line, to the override."""
        return {o.split("=", 1)[0].lstrip("+~"): o for o in self.overrides}

    def source(self, key: str) -> str:
        """Where a key's value comes from: fitted from data (a calibration's ``fitted_*``
        group), made neutral by a fitted business, the command line, or set by hand."""
        for group, patterns in FITTED.items():
            choice = self.choices.get(group, "")
            if choice.startswith("fitted_") and any(fnmatch.fnmatchcase(key, p)
                                                    for p in patterns):
                return f"fitted from data ({group}={choice})"
        business = self.choices.get("business", "")
        if business.startswith("fitted_") and any(fnmatch.fnmatchcase(key, p)
                                                  for p in FITTED_NEUTRAL):
            return f"neutral in the fitted business (business={business}): the fit holds it"
        for k, override in self.overridden().items():
            if key == k or key.startswith(k + "."):
                return f"command line ({_shown(override, 80)})"
        return "set by hand (config)"


def _flat(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(key path, value) of every leaf of a config; a list of plain values is one leaf,
    a list of mappings is numbered (``campaigns[0].start_day``)."""
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [(prefix, tree)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict) and node:
            stack.extend((f"{path}.{k}" if path else str(k), v)
                         for k, v in reversed(list(node.items())))
        elif isinstance(node, list) and any(isinstance(v, dict | list) for v in node):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node))))
        else:
            out.append((path, node))
    return out


def _shown(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(io.json_ready(value),
                                                            ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def _distributions(tree: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(key path, the distribution in words) of every uncertain assumption of an
    ``uncertainty`` tree (a mapping with ``dist`` is one)."""
    out = []
    stack: list[tuple[str, Any]] = [(prefix, tree)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict) and "dist" in node:
            params = ", ".join(f"{k} {_shown(v, 80)}" for k, v in node.items() if k != "dist")
            out.append((path, f"{_shown(node['dist'], 40)}({params})"))
        elif isinstance(node, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v)
                         for k, v in reversed(list(node.items())))
    return out


def _lever(key: str, cfg: dict[str, Any]) -> bool:
    """Whether a key is one of the levers and costs shown first: ``LEVERS``, less the
    settings of a retention model, an order-value model or a programme not in use."""
    if not any(fnmatch.fnmatchcase(key, p) for p in LEVERS):
        return False
    retention, economics = _dict(cfg.get("retention")), _dict(cfg.get("economics"))
    unused = {"retention.repeat.": retention.get("model") != "repeat_purchase",
              "retention.subscription.": retention.get("model") != "subscription",
              "economics.gamma_gamma.": economics.get("order_value_model") != "gamma_gamma",
              "loyalty.discount": not _dict(cfg.get("loyalty")).get("enabled"),
              "loyalty.cost_": not _dict(cfg.get("loyalty")).get("enabled")}
    return not any(key.startswith(prefix) and off for prefix, off in unused.items())


def _config_assumptions(page: _Page, hydra: _Hydra) -> None:
    cfg = hydra.config or {}
    leaves = _flat({k: v for k, v in cfg.items() if k not in ("uncertainty",)})
    rows = [[_e(k), _e(_shown(v)), _e(hydra.source(k))] for k, v in leaves
            if _lever(k, cfg)]
    scenario = _dict(cfg.get("scenario"))
    name = _text(scenario.get("name"), 200) or hydra.choices.get("scenario", "baseline")
    page.assumptions.append(
        "<h3>Levers and costs</h3><p>From the config the command composed "
        "(<code>.hydra/config.yaml</code>), each marked by where its value comes from: "
        "<i>fitted from data</i> where a calibration's <code>fitted_*</code> group was "
        "chosen, <i>command line</i> for an override, else <i>set by hand</i> in the "
        "config files"
        + (f"; the scenario {_e(name)} changes some of them (its file under "
           "<code>scenarios/</code> lists which)" if name != "baseline" else "") + ".</p>"
        + _html_table(["key", "value", "source"], rows))
    ranges = [(f"{k}", d, hydra.source(f"uncertainty.{k}"))
              for k, d in _distributions(cfg.get("uncertainty"))]
    ranges += [(f"{name}:{k}", d, "the scenario's own (scenario.uncertainty)")
               for k, d in _distributions(scenario.get("uncertainty"))]
    if ranges:
        page.assumptions.append(
            "<h3>Uncertainty ranges</h3><p>The distributions a PSA (<code>psa.draws=N</code>) "
            "draws the assumptions from; a point run or a comparison uses the values "
            "above and ignores them.</p>"
            + _html_table(["assumption", "distribution", "source"],
                          [[_e(k), _e(d), _e(s)] for k, d, s in ranges]))
    others = [[_e(k), _e(_shown(v)), _e(hydra.source(k))] for k, v in leaves
              if not _lever(k, cfg)]
    page.assumptions.append(
        f"<details><summary>Every other key of the config ({len(others)})</summary>"
        + _html_table(["key", "value", "source"], others) + "</details>")


RUN_FIELDS = (("scenario.name", "scenario"), ("scenario.description", "what it changes"),
              ("journey", "journey"), ("engine", "engine"),
              ("horizon_days", "horizon (days)"), ("market_size", "market (people)"),
              ("retention_model", "retention model"),
              ("annual_discount_rate", "annual discount rate"))


def _assumptions(page: _Page, doc: dict[str, Any], hydra: _Hydra) -> None:
    if page.kind == "psa":
        words = [a for a in _list(doc.get("assumptions")) if isinstance(a, str)][:500]
        page.assumptions.append(
            "<h3>The uncertain assumptions drawn</h3><p>From psa.json: every assumption's "
            "distribution, as the PSA drew it.</p>"
            + ("<ul>" + "".join(f"<li>{_e(a)}</li>" for a in words) + "</ul>" if words
               else "<p>(none listed)</p>"))
    if page.kind in MARKS.values():
        settings = [(_e(k), _e(_shown(v))) for k, v in doc.items()
                    if k not in ("files", "covers", "assumptions")][:200]
        page.assumptions.append(f"<h3>The analysis's settings</h3><p>From "
                                f"{_e(_mark_of(page.kind))}.</p>" + _pairs(settings))
    if hydra.config is not None:
        _config_assumptions(page, hydra)
        return
    known = []
    if page.kind in ("run", "blocks"):
        for key, label in RUN_FIELDS:
            node: Any = doc
            for part in key.split("."):
                node = _dict(node).get(part)
            if node is not None:
                source = ("fitted from data (a journey=fitted_* group)"
                          if key == "journey" and str(node).startswith("fitted_") else
                          "recorded in metrics.json")
                known.append((_e(label), f"{_e(_shown(node))} <small>({_e(source)})</small>"))
    elif page.kind == "comparison":
        known = [(_e(k), _e(_text(v))) for k, v in _dict(doc.get("scenarios")).items()][:200]
    page.assumptions.append(
        "<p class=\"note\">This folder holds no config (<code>.hydra/config.yaml</code>: it "
        "was written from Python, <code>sim.api</code>, or merged by "
        "<code>python -m sim.report</code>), so the levers, the costs and the uncertainty "
        "ranges, and whether each was set by hand or fitted from data, cannot be read from "
        "it; shown here is what its own files record.</p>"
        + (_pairs(known) if known else ""))


def _mark_of(kind: str) -> str:
    return next(m for m, k in MARKS.items() if k == kind)


# ------------------------------------------------------------------------- provenance
def _versions(charts: bool) -> str:
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    names = ["numpy", "pandas", "simpy", "journey-sim", *(["plotly"] if charts else [])]
    return ", ".join([f"python {platform.python_version()}",
                      *(f"{n} {version(n)}" for n in names)])


PROVENANCE_FIELDS = ("seed", "replications", "first_replication", "engine", "fingerprint",
                     "draws", "points_run", "replications_per_draw", "design", "runs",
                     "merged_from")
NOT_SHOWN = {"customers.csv": "one row per customer: too large for a page",
             "events.csv": "one row per event: too large for a page",
             "purchases.csv": "the transaction log: too large for a page",
             "tickets.csv": "one row per ticket", "daily.csv": "per replication and day",
             "psa_runs.csv": "every run of the study",
             "comparison.md": "the ranking above, as Markdown"}


def _provenance(page: _Page, doc: dict[str, Any], folder: _Folder, mark: str,
                hydra: _Hydra) -> None:
    rows = [("folder", _e(folder.path.name or folder.path)), ("kind", _e(KINDS[page.kind]))]
    st = folder.entries[mark]
    when = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows.append(("finished", _e(f"{mark} written {when}")))
    run = _dict(_dict(hydra.config).get("run"))
    for key in PROVENANCE_FIELDS:
        if key in doc and not isinstance(doc[key], dict | list):
            rows.append((_e(key.replace("_", " ")), _e(_shown(doc[key]))))
        elif key in ("seed", "replications", "engine") and key in run:
            rows.append((_e(key), _e(f"{_shown(run[key])} (config: run.{key})")))
    if hydra.overrides or hydra.config is not None:
        command = " ".join(["python -m sim",
                            *(f"--config-dir {shlex.quote(d)}" for d in hydra.config_dirs),
                            *(shlex.quote(o) for o in hydra.overrides)])
        rows.append(("command", f"<code>{_e(command)}</code> (from .hydra/overrides.yaml "
                     "and hydra.yaml)"))
    rows.append(("report written with", _e(_versions(bool(page.charts)))))
    page.provenance.append(_pairs(rows))
    fields = [(_e(k), _e(_shown(v))) for k, v in doc.items()
              if k not in ("per_replication", "metrics", "comparison", "crn_variance_ratio")]
    page.provenance.append(f"<details><summary>The fields of {_e(mark)}</summary>"
                           + _pairs(fields[:300]) + "</details>")
    if hydra.config_text:
        text = hydra.config_text[:200_000]
        page.provenance.append("<details><summary>The config the command composed "
                               "(.hydra/config.yaml)</summary><pre>" + _e(text)
                               + "</pre></details>")
    files = []
    for name in sorted(folder.entries):
        st = folder.entries[name]
        if name == REPORT_FILE or stat.S_ISDIR(st.st_mode):
            continue
        use = ("a link: not read" if stat.S_ISLNK(st.st_mode) else
               "shown above" if name in folder.used else NOT_SHOWN.get(name, "not shown"))
        files.append([_e(name), _e(f"{st.st_size:,}"), _e(use)])
    page.provenance.append("<h3>Files in the folder</h3>"
                           + _html_table(["file", "bytes", "in this page"], files))


# ------------------------------------------------------------------------- the titles
def _titles(page: _Page, doc: dict[str, Any]) -> None:
    def s(key: str) -> str:
        return _text(doc.get(key), 200)

    kind = page.kind
    if kind in ("run", "blocks"):
        sc = _dict(doc.get("scenario"))
        page.title = _text(sc.get("name"), 200) or "a run"
        n, days = _float(doc.get("replications")), _float(doc.get("horizon_days"))
        bits = [f"journey {s('journey')}" if s("journey") else "",
                f"engine {s('engine')}" if s("engine") else "",
                f"{n:.0f} replication{'' if n == 1 else 's'}" if math.isfinite(n) else "",
                f"{days:g} days" if math.isfinite(days) else "",
                f"market {_float(doc.get('market_size')):,.0f}"
                if math.isfinite(_float(doc.get("market_size"))) else "",
                f"seed {_shown(doc['seed'])}" if "seed" in doc else ""]
        desc = _text(sc.get("description"))
        page.subtitle = (f"{_e(desc)}<br>" if desc else "") + _e(" · ".join(b for b in bits if b))
    elif kind == "comparison":
        ref = s("reference") or "baseline"
        options = [str(k) for k in _dict(doc.get("scenarios")) if k != ref][:30]
        page.title = f"{', '.join(options) or 'the options'} against {ref}"
        page.subtitle = _e(f"ranked by {s('rank_by') or 'npv'}, "
                           f"{_shown(doc.get('replications', '?'))} replications each, "
                           "common random numbers")
    elif kind == "sweep":
        params = [p for p in _list(doc.get("sweep")) if isinstance(p, str)][:20]
        page.title = f"Sweep over {', '.join(params) or 'parameters'}"
        page.subtitle = _e(f"{len(_list(doc.get('jobs')))} points; scenarios "
                           + ", ".join(str(x) for x in _list(doc.get("scenarios"))[:30]))
    elif kind == "psa":
        options = [str(o) for o in _list(doc.get("options"))][:30]
        page.title = f"Which option: {', '.join(options) or 'the options'}"
        page.subtitle = _e(f"{_shown(doc.get('points_run', '?'))} draws of "
                           f"{len(_list(doc.get('assumptions')))} uncertain assumptions, "
                           f"{s('design')} design, decision metric {s('metric')}, seed "
                           f"{_shown(doc.get('seed', '?'))}")
    elif kind == "curves":
        keys = ", ".join(str(k) for k in _list(doc.get("keys"))[:20])
        page.title = f"Response curves of {s('objective') or 'the objective'} over {keys}"
    elif kind == "allocation":
        page.title = ("Budget allocation over "
                      + ", ".join(str(c) for c in _list(doc.get("channels"))[:30]))
        page.subtitle = _e(f"objective {s('objective')}, budget {_shown(doc.get('budget'))} "
                           "per day")
    elif kind == "seek":
        page.title = (f"Goal seek: {s('key')} for {s('metric')} = "
                      f"{_shown(doc.get('target'))}")
    else:
        page.title = "Which interventions to launch together"
        page.subtitle = _e(f"objective {s('objective')}, budget "
                           f"{_shown(doc.get('budget'))} per day")


# ----------------------------------------------------------------------------- entries
ANSWERS: dict[str, Callable[[_Page, dict[str, Any], _Folder], None]] = {
    "run": lambda page, doc, folder: _run_answer(page, doc),
    "blocks": lambda page, doc, folder: _run_answer(page, doc),
    "comparison": _comparison_answer, "sweep": _sweep_answer, "psa": _psa_answer,
    "curves": _analysis_answer, "allocation": _analysis_answer, "seek": _analysis_answer,
    "portfolio": _analysis_answer}


def build_report(folder: Path) -> str:
    """The text of ``report.html`` for a finished folder of outputs (a run, merged blocks,
    a comparison, a sweep, a PSA, response curves, an allocation, a goal seek or a set of
    interventions), built from its files alone.

    Raises
    ------
    sim.errors.OutputError : one line naming the folder or the file the page cannot be
        built from and why (the folder is unfinished; a file is a link, too large, not
        UTF-8, not a well-formed CSV or JSON, a PNG that is not one).
    """
    path = Path(folder)
    try:
        folder_ = _Folder(path)
        kind, doc, mark = _finished(folder_)
        page = _Page(kind, "")
        _titles(page, doc)
        ANSWERS[kind](page, doc, folder_)
        _figures(page, folder_)
        _tables(page, folder_)
        hydra = _Hydra.read(folder_)
        _assumptions(page, doc, hydra)
        _provenance(page, doc, folder_, mark, hydra)
        return _document(page, path)
    except _Refused as err:
        raise OutputError(f"{path / REPORT_FILE}: not written: {_one_line(err)}") from None


def write_report(folder: Path) -> Path:
    """Write ``report.html`` (``build_report``) into ``folder``, atomically; the folder's
    other files are left as they are whatever happens.

    Raises
    ------
    sim.errors.OutputError : as ``build_report``, or the file cannot be written.
    """
    text = build_report(folder)
    return io.atomic_write(Path(folder) / REPORT_FILE,
                           lambda f: f.write(text.encode("utf-8")), mode="wb")
