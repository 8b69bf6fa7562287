"""Load the built dataset into pandas with the right dtypes.

    from pipeline import load, load_credits
    df = load("outputs", filters=[("source", "==", "(臺)中央社CNA"),
                                  ("published_at", ">=", "2020-10-01")])
    credits = load_credits("outputs")          # one row per (article, role, name)

Filters are pushed down to the Parquet reader (row groups are skipped, not read and
dropped). Values for timestamp and date columns may be given as strings, dates or
datetimes; naive values are taken as UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.discover import is_url, local_path
from pipeline.schema import ARTICLE_SCHEMA

if TYPE_CHECKING:
    # Both import pandas (pyarrow.dataset does so itself): they are imported inside the functions,
    # so that importing this module (and `from pipeline import load`) stays cheap for the build CLI.
    import pandas as pd
    import pyarrow.dataset as ds

__all__ = ["load", "load_credits", "read_articles_table", "to_pandas", "dataset_path", "CREDIT_COLUMNS"]

# A filter: one (column, op, value) tuple, a conjunction (list of tuples) or a DNF
# (list of lists of tuples, OR-ed), as in pyarrow.parquet; a ready pyarrow Expression also works.
Filters = Any

CREDIT_COLUMNS = ["article_id", "role", "name", "published_at", "roc_date", "source", "section", "title"]

_OPS = {"==", "=", "!=", "<", "<=", ">", ">=", "in", "not in"}


def dataset_path(path: str | Path) -> Path:
    """The local folder of a dataset given as a path or a file:// URL (as `build --output` takes it).
    Other URLs raise ValueError: reading a remote dataset is not supported."""
    if isinstance(path, Path):
        return path
    if is_url(path):
        raise ValueError(f"only local datasets can be read (a folder or a file:// URL), not {path}; "
                         "copy it to a local folder first")
    return Path(local_path(path))


def _articles_files(path: str | Path) -> list[str]:
    root = dataset_path(path)
    folder = root / "articles"
    # Hidden / underscore files are in-progress writes or metadata: same rule as pyarrow's discovery.
    files = sorted(
        str(p) for p in folder.glob("*.parquet") if not p.name.startswith((".", "_"))
    ) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"no dataset at {root}: expected Parquet files in {folder}. "
            "Build it first with `make dataset` (or `make dataset RAW=<posts> OUT=<dir>`), "
            "or pass the output folder, e.g. load('path/to/outputs')."
        )
    return files


def _dataset(path: str | Path) -> ds.Dataset:
    import pyarrow.dataset as ds

    files = _articles_files(path)
    # ARTICLE_SCHEMA fixes the contract's types; extra columns a newer build adds are kept.
    found = ds.dataset(files[0], format="parquet").schema
    extra = [f for f in found if f.name not in ARTICLE_SCHEMA.names]
    schema = pa.schema(list(ARTICLE_SCHEMA) + extra)
    return ds.dataset(files, schema=schema, format="parquet")


def _coerce(value: Any, typ: pa.DataType) -> Any:
    """Turn a user-friendly filter value into an Arrow scalar of the column's type."""
    if value is None or isinstance(value, pa.Scalar):
        return value
    if pa.types.is_timestamp(typ):
        return pa.scalar(_as_datetime(value, typ.tz), type=typ)
    if pa.types.is_date(typ):
        return pa.scalar(_as_date(value), type=typ)
    if pa.types.is_integer(typ):
        return pa.scalar(int(value), type=typ)
    return value


def _as_datetime(value: Any, tz: str | None) -> dt.datetime:
    if hasattr(value, "to_pydatetime"):  # pandas / numpy-ish timestamps
        value = value.to_pydatetime()
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"cannot use {value!r} as a timestamp filter value")
    if tz is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)  # naive values mean UTC, like the data
    return value


def _as_date(value: Any) -> dt.date:
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10])
    raise TypeError(f"cannot use {value!r} as a date filter value")


def _term(schema: pa.Schema, col: str, op: str, value: Any) -> pc.Expression:
    if op not in _OPS:
        raise ValueError(f"unsupported filter operator {op!r}; use one of {sorted(_OPS)}")
    if col not in schema.names:
        raise KeyError(f"filter on unknown column {col!r}; columns are {schema.names}")
    typ = schema.field(col).type
    field = pc.field(col)
    if op in ("in", "not in"):
        values = [_coerce(v, typ) for v in value]
        arr = pa.array([v.as_py() if isinstance(v, pa.Scalar) else v for v in values], type=typ)
        expr = field.isin(arr)
        return ~expr if op == "not in" else expr
    v = _coerce(value, typ)
    if v is None:  # `== None` means "is null", as an analyst would expect
        if op in ("==", "="):
            return field.is_null()
        if op == "!=":
            return field.is_valid()
        raise ValueError(f"cannot compare {col!r} {op} None")
    return {
        "==": field == v, "=": field == v, "!=": field != v,
        "<": field < v, "<=": field <= v, ">": field > v, ">=": field >= v,
    }[op]


def filters_to_expression(filters: Filters, schema: pa.Schema = ARTICLE_SCHEMA) -> pc.Expression | None:
    """Build a pyarrow Expression from DNF filters, coercing values to the column types."""
    if filters is None or isinstance(filters, pc.Expression):
        return filters
    if isinstance(filters, tuple):
        filters = [filters]
    if not isinstance(filters, Sequence) or isinstance(filters, str):
        raise TypeError("filters must be a list of (column, op, value) tuples or a list of such lists")
    if not filters:
        return None
    disjuncts = filters if all(isinstance(f, list) for f in filters) else [filters]
    out: pc.Expression | None = None
    for conj in disjuncts:
        expr: pc.Expression | None = None
        for item in conj:
            if not (isinstance(item, tuple | list) and len(item) == 3):
                raise TypeError(f"filter terms are (column, op, value) tuples, got {item!r}")
            t = _term(schema, *item)
            expr = t if expr is None else expr & t
        if expr is not None:
            out = expr if out is None else out | expr
    return out


def read_articles_table(path: str | Path = "outputs", columns: Sequence[str] | None = None,
                        filters: Filters = None) -> pa.Table:
    """The articles as one Arrow table (rows in file order), with filters pushed down."""
    dataset = _dataset(path)
    if columns is not None:
        missing = [c for c in columns if c not in dataset.schema.names]
        if missing:
            raise KeyError(f"unknown columns {missing}; columns are {dataset.schema.names}")
    expr = filters_to_expression(filters, dataset.schema)
    return dataset.to_table(columns=list(columns) if columns is not None else None, filter=expr)


def _types_mapper(typ: pa.DataType) -> Any:
    import pandas as pd

    # Timestamps: return None so pyarrow makes numpy-backed datetime64[ms, UTC].
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return pd.StringDtype("pyarrow")
    if pa.types.is_date(typ) or pa.types.is_nested(typ):
        return pd.ArrowDtype(typ)  # dates stay dates; lists/structs stay Arrow lists (no object arrays)
    if pa.types.is_integer(typ):
        return {
            "int8": pd.Int8Dtype(), "int16": pd.Int16Dtype(), "int32": pd.Int32Dtype(),
            "int64": pd.Int64Dtype(), "uint8": pd.UInt8Dtype(), "uint16": pd.UInt16Dtype(),
            "uint32": pd.UInt32Dtype(), "uint64": pd.UInt64Dtype(),
        }[str(typ)]
    if pa.types.is_boolean(typ):
        return pd.BooleanDtype()
    return None


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Convert an articles-like Arrow table with the dataset's pandas dtypes."""
    df = table.to_pandas(types_mapper=_types_mapper)
    for name in table.column_names:  # pyarrow may pick ns for empty tables: pin ms, UTC
        typ = table.schema.field(name).type
        if pa.types.is_timestamp(typ):
            df[name] = df[name].astype(f"datetime64[{typ.unit}, {typ.tz or 'UTC'}]")
    return df


def load(path: str | Path = "outputs", columns: Sequence[str] | None = None,
         filters: Filters = None) -> pd.DataFrame:
    """Load the articles of a built dataset as a pandas DataFrame.

    path: the build's output folder (holding `articles/`), or its file:// URL.
    columns: subset of columns to read (default: all).
    filters: e.g. [("source", "==", "(臺)中央社CNA"), ("published_at", ">=", "2020-10-01")];
        a list of such lists is OR-ed; ops ==, !=, <, <=, >, >=, in, not in.

    Dtypes: published_at / feed_date datetime64[ms, UTC]; roc_date ArrowDtype(date32);
    strings StringDtype("pyarrow"); lists and structs ArrowDtype; dateline_day Int8.
    """
    return to_pandas(read_articles_table(path, columns, filters))


def load_credits(path: str | Path = "outputs", filters: Filters = None) -> pd.DataFrame:
    """One row per (article, role, name): who translated, reviewed, edited what.

    Columns: article_id, role, name, published_at, roc_date, source, section, title.
    Articles without credits have no rows. `filters` apply to the articles, as in load().
    """
    table = read_articles_table(path, [c for c in CREDIT_COLUMNS if c not in ("role", "name")] + ["credits"],
                                filters)
    return to_pandas(explode_credits(table))


def explode_credits(table: pa.Table) -> pa.Table:
    """Arrow-only explode of `credits` (list<struct<role, name>>) keeping article columns."""
    credits = table.column("credits").combine_chunks() if table.num_rows else pa.array(
        [], type=ARTICLE_SCHEMA.field("credits").type)
    parents = pc.list_parent_indices(credits)
    flat = pc.list_flatten(credits)
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in CREDIT_COLUMNS:
        if name in ("role", "name"):
            cols[name] = pc.struct_field(flat, name)
        elif name in table.column_names:
            cols[name] = table.column(name).take(parents)
    schema = pa.schema([
        pa.field(n, ARTICLE_SCHEMA.field("credits").type.value_type.field(n).type if n in ("role", "name")
                 else table.schema.field(n).type)
        for n in cols
    ])
    return pa.table(cols, schema=schema)
