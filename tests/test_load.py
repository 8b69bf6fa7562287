"""pipeline.load: dtypes, filter pushdown, credits table, clear errors."""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pytest
from _dataset_factory import CNA, RFI, make_dataset

from pipeline.load import load, load_credits
from pipeline.schema import ARTICLE_SCHEMA

STR = pd.StringDtype("pyarrow")
TS = pd.DatetimeTZDtype(unit="ms", tz="UTC")


@pytest.fixture
def data(tmp_path):
    return make_dataset(tmp_path / "out")


def _expected_dtype(name: str, typ: pa.DataType):
    if name in ("published_at", "feed_date"):
        return TS
    if name == "roc_date":
        return pd.ArrowDtype(pa.date32())
    if name == "dateline_day":
        return pd.Int8Dtype()
    if pa.types.is_list(typ):
        return pd.ArrowDtype(typ)
    return STR


def test_dtypes_exact(data):
    df = load(data)
    assert list(df.columns) == ARTICLE_SCHEMA.names
    for f in ARTICLE_SCHEMA:
        assert df[f.name].dtype == _expected_dtype(f.name, f.type), f.name
    assert len(df) == 8
    assert df["published_at"].dtype.unit == "ms"


def test_dtypes_on_empty_dataset(tmp_path):
    df = load(make_dataset(tmp_path / "empty", articles=[]))
    assert len(df) == 0
    for f in ARTICLE_SCHEMA:
        assert df[f.name].dtype == _expected_dtype(f.name, f.type), f.name


def test_values_round_trip(data):
    df = load(data).set_index("article_id")
    row = df.loc["202010000001"]
    assert row["published_at"] == pd.Timestamp("2020-10-01 03:00", tz="UTC")
    assert row["roc_date"] == dt.date(2020, 10, 1)
    assert row["dateline_day"] == 1
    assert df.loc["202010000006", "dateline_day"] is pd.NA
    assert pd.isna(df.loc["0f1e2d3c4b5a6978", "published_at"])
    assert list(df.loc["202010000001", "paragraphs"]) == ["第一段 1", "第二段 1"]


def test_columns_subset(data):
    df = load(data, columns=["article_id", "roc_date"])
    assert list(df.columns) == ["article_id", "roc_date"]
    with pytest.raises(KeyError):
        load(data, columns=["nope"])


def test_filter_source(data):
    df = load(data, columns=["article_id", "source"], filters=[("source", "==", RFI)])
    assert set(df["source"]) == {RFI} and len(df) == 2


@pytest.mark.parametrize("lo, hi", [
    ("2020-10-02", "2020-10-05"),
    (dt.date(2020, 10, 2), dt.date(2020, 10, 5)),
    (dt.datetime(2020, 10, 2), dt.datetime(2020, 10, 5, tzinfo=dt.timezone.utc)),
    (pd.Timestamp("2020-10-02"), pd.Timestamp("2020-10-05T00:00Z")),
    ("2020-10-02T00:00:00Z", "2020-10-05T08:00:00+08:00"),
])
def test_filter_date_range_on_timestamp(data, lo, hi):
    df = load(data, columns=["article_id", "published_at"],
              filters=[("source", "==", CNA), ("published_at", ">=", lo), ("published_at", "<", hi)])
    assert sorted(df["article_id"]) == ["202010000003", "202010000004"]


def test_filter_date_column_and_dnf(data):
    df = load(data, columns=["article_id"], filters=[("roc_date", ">", "2020-10-01")])
    assert sorted(df["article_id"]) == ["202010000003", "202010000004"]
    df = load(data, columns=["article_id"],
              filters=[[("section", "in", ["acn"])], [("published_at", "==", None)]])
    assert sorted(df["article_id"]) == ["0f1e2d3c4b5a6978", "202010000004"]
    df = load(data, columns=["article_id"], filters=("dateline_day", "==", 1))
    assert len(df) == 5


def test_filter_is_pushed_down(data, monkeypatch):
    # The filter must reach pyarrow's scanner (row groups skipped), not be applied in pandas.
    # `pipeline.load` is also the name of a function the package may export: get the module itself.
    L = importlib.import_module("pipeline.load")

    seen = {}
    real = L._dataset

    class Spy:
        def __init__(self, d):
            self.d = d
            self.schema = d.schema

        def to_table(self, **kw):
            seen.update(kw)
            return self.d.to_table(**kw)

    monkeypatch.setattr(L, "_dataset", lambda path: Spy(real(path)))
    df = load(data, columns=["article_id"], filters=[("published_at", ">=", "2020-10-02")])
    assert len(df) == 5
    assert seen["filter"] is not None and "published_at" in str(seen["filter"])
    assert seen["columns"] == ["article_id"]


def test_bad_filters(data):
    with pytest.raises(ValueError):
        load(data, filters=[("source", "~", "x")])
    with pytest.raises(KeyError):
        load(data, filters=[("nope", "==", "x")])


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make dataset"):
        load(tmp_path / "nothing")
    (tmp_path / "x" / "articles").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="make dataset"):
        load_credits(tmp_path / "x")


def test_load_credits(data):
    c = load_credits(data)
    assert list(c.columns) == ["article_id", "role", "name", "published_at", "roc_date", "source",
                               "section", "title"]
    assert len(c) == 12  # one row per (article, role, name); articles without credits have none
    assert c["published_at"].dtype == TS and c["roc_date"].dtype == pd.ArrowDtype(pa.date32())
    assert c["role"].dtype == STR and c["name"].dtype == STR
    first = c[c["article_id"] == "202010000004"]
    assert list(zip(first["role"], first["name"], strict=True)) == [
        ("translator", "楊昭彥"), ("reviewer", "劉學源"), ("editor", "張芷瑄")]
    assert set(first["section"]) == {"acn"}
    busiest = c[c["role"] == "translator"]["name"].value_counts()
    assert busiest.index[0] == "陳正健" and busiest.iloc[0] == 3


def test_load_credits_filters_and_empty(data, tmp_path):
    c = load_credits(data, filters=[("source", "==", RFI)])
    assert set(c["article_id"]) == {"a1b2c3d4e5f60718"}
    empty = load_credits(make_dataset(tmp_path / "empty", articles=[]))
    assert len(empty) == 0 and empty["published_at"].dtype == TS


def test_import_is_cheap():
    # `from pipeline import load` may be bound in pipeline/__init__.py: importing it must not pull in
    # pandas (nor pyarrow.dataset, which imports pandas) for the build CLI.
    code = "import sys, pipeline.load; print('pandas' in sys.modules, 'pyarrow.dataset' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(importlib.import_module("pipeline.notebooks").PROJECT_ROOT))
    assert res.stdout.split() == ["False", "False"]


def test_file_url(data):
    """`build --output file:///x` writes a local folder: load('file:///x') reads it."""
    pd.testing.assert_frame_equal(load(f"file://{data}"), load(data))
    assert len(load_credits(f"file://{data}")) == 12


def test_remote_url_is_a_clear_error():
    with pytest.raises(ValueError, match="only local datasets"):
        load("s3://bucket/outputs")
