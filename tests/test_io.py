"""The CSV writer (``sim.io.to_csv``) against its oracle, pandas' own ``DataFrame.to_csv``:
every table must come out byte for byte as pandas writes it, only faster."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim import io as sim_io

FORMATS = ("%.6g", "%.10g")


def pandas_text(table: pd.DataFrame, float_format: str) -> str:
    return table.to_csv(index=False, float_format=float_format, lineterminator="\n")


def our_text(table: pd.DataFrame, float_format: str) -> str:
    buffer = io.StringIO()
    sim_io.to_csv(table, buffer, float_format)
    return buffer.getvalue()


floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1e-300, 123456.5, 0.1, 2.5e15, math.nan]))
# no carriage return: whether the csv module quotes a lone "\r" depends on the Python
# version; we always quote it (test_carriage_return_is_quoted)
texts = st.text(alphabet=st.sampled_from(list('ab ,"\n;é\'x')), max_size=6)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    """Frames of every dtype the simulator writes, with the awkward values in them."""
    n = draw(st.integers(0, 40))
    columns: dict[str, pd.Series] = {}
    kinds = draw(st.lists(st.sampled_from(["float", "float32", "int", "uint8", "bool", "text",
                                           "category", "object"]), min_size=2, max_size=6))
    for i, kind in enumerate(kinds):
        name = draw(st.sampled_from([f"c{i}", f"c,{i}", f'c"{i}', f"c {i}"]))
        if kind == "float":
            values = pd.Series(draw(st.lists(floats, min_size=n, max_size=n)), dtype=float)
        elif kind == "float32":
            values = pd.Series(draw(st.lists(st.floats(width=32), min_size=n, max_size=n)),
                               dtype=np.float32)
        elif kind == "int":
            values = pd.Series(draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n,
                                             max_size=n)), dtype=np.int64)
        elif kind == "uint8":
            values = pd.Series(draw(st.lists(st.integers(0, 255), min_size=n, max_size=n)),
                               dtype=np.uint8)
        elif kind == "bool":
            values = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        elif kind == "text":
            values = pd.Series(draw(st.lists(st.one_of(texts, st.none()), min_size=n,
                                             max_size=n)), dtype="string")
        elif kind == "category":
            labels = draw(st.lists(texts, min_size=1, max_size=4, unique=True))
            codes = draw(st.lists(st.integers(-1, len(labels) - 1), min_size=n, max_size=n))
            values = pd.Series(pd.Categorical.from_codes(codes, categories=labels))
        else:  # object: text, numbers and missing values mixed, as a report table has them
            values = pd.Series(draw(st.lists(st.one_of(texts, st.none(), floats,
                                                       st.integers(-5, 5)),
                                             min_size=n, max_size=n)), dtype=object)
        columns[f"{name}_{i}"] = values.reset_index(drop=True)
    return pd.DataFrame(columns)


@settings(max_examples=300, deadline=None)
@given(table=tables(), float_format=st.sampled_from(FORMATS), chunk=st.integers(1, 7))
def test_writes_what_pandas_writes(table: pd.DataFrame, float_format: str, chunk: int) -> None:
    """Hypothesis: any frame of the dtypes above, any float format, chunks of 1 to 7 rows
    (so that chunk boundaries fall everywhere): the same text as pandas."""
    saved = sim_io.CSV_CHUNK_ROWS
    sim_io.CSV_CHUNK_ROWS = chunk
    try:
        assert our_text(table, float_format) == pandas_text(table, float_format)
    finally:
        sim_io.CSV_CHUNK_ROWS = saved


@pytest.mark.parametrize("table", [
    pd.DataFrame({"only": [1.5, math.nan]}),  # one column: pandas quotes an empty row
    pd.DataFrame({"when": pd.to_datetime(["2025-01-01", "2025-02-03"]), "x": [1, 2]}),
    pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "x": [0.5, 2.0]}),
    pd.DataFrame({0: [1.0], 1: [2.0]}),  # names that are not text
    pd.DataFrame({"a": [], "b": []}),
], ids=["one-column", "dates", "nullable-int", "int-names", "empty"])
def test_tables_left_to_pandas_or_empty(table: pd.DataFrame) -> None:
    """What the fast path does not cover goes to pandas, and an empty table is its header."""
    assert our_text(table, "%.6g") == pandas_text(table, "%.6g")


def test_run_outputs_are_what_pandas_writes() -> None:
    """A short run's customers, purchases, tickets and daily tables: pandas' text exactly."""
    run = sim.run(overrides=["run=smoke"])
    for name in ("customers", "purchases", "tickets", "daily"):
        table = getattr(run, name)()
        assert len(table) > 0, name
        assert our_text(table, "%.6g") == pandas_text(table, "%.6g"), name


def test_carriage_return_is_quoted() -> None:
    """A field with a carriage return is quoted (as Python 3.12's csv module does; 3.11's
    does not when the line ends are "\\n"), and reads back as written."""
    table = pd.DataFrame({"note": ["a\rb", "plain", 'say "hi"'], "x": [1.0, math.nan, -0.0]})
    text = our_text(table, "%.6g")
    assert text == 'note,x\n"a\rb",1\nplain,\n"say ""hi""",-0\n'
    back = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert back["note"].tolist() == table["note"].tolist()
