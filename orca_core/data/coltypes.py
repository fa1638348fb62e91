"""Column types decided over a whole dataset, the same way whichever backend read the files.

A reader produces raw shards: object DataFrames of the text fields of CSV (`""` for an empty
field) or of the values of JSON records. Each shard is summarised (`summarize`), the summaries are
combined on the driver (`combine`) and every shard is converted with the result (`convert`), so
that a column has one dtype across all shards, as if all files were one file read by pandas:

- all missing -> float64 (CSV) or object (JSON); no rows at all -> object
- integers -> int64, or float64 when a value is missing anywhere; numbers -> float64
- booleans -> bool, or object (True/False/NaN) when a value is missing anywhere
- strings -> pandas' string dtype; JSON objects and arrays -> object
- a CSV column mixing kinds keeps its text; a JSON column mixing kinds becomes the JSON text
  of its values, as Spark's JSON reader does.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity)", re.IGNORECASE)
TRUE_VALUES = frozenset({"True", "TRUE", "true"})
FALSE_VALUES = frozenset({"False", "FALSE", "false"})


@dataclass(frozen=True)
class CsvOptions:
    """The pandas keywords that decide CSV types: na_values, keep_default_na, true/false_values, dtype, parse_dates."""

    na_values: object = None
    keep_default_na: bool = True
    true_values: tuple = ()
    false_values: tuple = ()
    dtype: object = None
    parse_dates: tuple = ()

    def missing(self, column) -> frozenset:
        from pandas._libs.parsers import STR_NA_VALUES

        extra = self.na_values.get(column, ()) if isinstance(self.na_values, dict) else self.na_values
        if isinstance(extra, str):
            extra = (extra,)
        base = STR_NA_VALUES if self.keep_default_na else ()
        return frozenset(base) | frozenset(str(v) for v in (extra or ()))

    @property
    def trues(self) -> frozenset:
        return TRUE_VALUES | frozenset(self.true_values)

    @property
    def falses(self) -> frozenset:
        return FALSE_VALUES | frozenset(self.false_values)


@dataclass
class Summary:
    """What one shard holds: its columns in order, its rows, and per column the kinds of values seen."""

    columns: list = field(default_factory=list)
    rows: int = 0
    kinds: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)


def _csv_kind(text: str, options: CsvOptions) -> str:
    if _INT.fullmatch(text):
        return "int"
    if _FLOAT.fullmatch(text):
        return "float"
    if text in options.trues or text in options.falses:
        return "bool"
    return "str"


def _json_kind(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "nested"


def summarize(raw, fmt: str, options: CsvOptions | None = None) -> Summary:
    """The kinds of values in each column of a raw shard (`fmt` is "csv" or "json")."""
    summary = Summary(columns=list(raw.columns), rows=len(raw))
    for column in raw.columns:
        kinds, missing = set(), False
        na = options.missing(column) if fmt == "csv" else None
        for value in raw[column].tolist():
            kind = (None if value in na else _csv_kind(value, options)) if fmt == "csv" else _json_kind(value)
            if kind is None:
                missing = True
            else:
                kinds.add(kind)
        summary.kinds[column], summary.missing[column] = kinds, missing
    return summary


def _type(kinds: set, missing: bool, rows: int, fmt: str) -> str:
    if rows == 0:
        return "object"
    if not kinds:
        return "float64" if fmt == "csv" else "object"
    if kinds == {"int"}:
        return "float64" if missing else "int64"
    if kinds <= {"int", "float"}:
        return "float64"
    if kinds == {"bool"}:
        return "object" if missing else "bool"
    if kinds == {"str"}:
        return "str"
    if kinds == {"nested"}:
        return "object"
    return "text"


def combine(summaries: list[Summary], fmt: str) -> dict:
    """Column -> type for the dataset: columns in the order first seen (JSON: sorted by name)."""
    columns, kinds, missing = [], {}, {}
    rows = sum(s.rows for s in summaries)
    for s in summaries:
        for column in s.columns:
            if column not in kinds:
                columns.append(column)
                kinds[column], missing[column] = set(), False
            kinds[column] |= s.kinds[column]
            missing[column] |= s.missing[column]
    for s in summaries:
        for column in columns:
            missing[column] |= bool(s.rows) and column not in s.kinds
    if fmt == "json":
        columns.sort(key=str)
    return {column: _type(kinds[column], missing[column], rows, fmt) for column in columns}


def convert(raw, types: dict, fmt: str, options: CsvOptions | None = None):
    """The typed pandas DataFrame of a raw shard."""
    import numpy as np
    import pandas as pd

    data = {}
    for column, kind in types.items():
        values = raw[column].tolist() if column in raw.columns else [None] * len(raw)
        if fmt == "csv":
            na = options.missing(column)
            values = [None if v is None or v in na else v for v in values]
            data[column] = _csv_column(values, kind, column, options, pd, np)
        else:
            values = [None if _json_kind(v) is None else v for v in values]
            data[column] = _json_column(values, kind, pd, np)
    return pd.DataFrame(data, index=pd.RangeIndex(len(raw)))


def _csv_column(values, kind, column, options: CsvOptions, pd, np):
    wanted = options.dtype.get(column) if isinstance(options.dtype, dict) else options.dtype
    if column in options.parse_dates:
        return pd.to_datetime(pd.Series(values, dtype=object))
    if wanted is not None and pd.api.types.is_string_dtype(pd.api.types.pandas_dtype(wanted)):
        return pd.Series([np.nan if v is None else v for v in values], dtype=wanted)
    if kind == "int64":
        series = pd.Series([int(v) for v in values], dtype="int64")
    elif kind == "float64":
        series = pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    elif kind in ("bool", "object") and values and all(v is None or v in options.trues | options.falses for v in values):
        series = pd.Series([np.nan if v is None else v in options.trues for v in values], dtype=kind)
    elif kind == "object":
        series = pd.Series([np.nan if v is None else v for v in values], dtype=object)
    else:
        series = pd.Series([np.nan if v is None else v for v in values], dtype="str")
    return series.astype(wanted) if wanted is not None else series


def _json_column(values, kind, pd, np):
    if kind == "int64":
        return pd.Series(values, dtype="int64")
    if kind == "float64":
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "text":
        text = [v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in values]
        return pd.Series([np.nan if v is None else v for v in text], dtype="str")
    if kind == "str":
        return pd.Series([np.nan if v is None else v for v in values], dtype="str")
    return pd.Series([np.nan if v is None else v for v in values], dtype=kind)


def common_dtypes(dtypes: list[dict]) -> dict:
    """Column -> the dtype pandas gives when concatenating shards of these dtypes (parquet)."""
    import warnings

    import pandas as pd

    columns: dict = {}
    for shard in dtypes:
        for column, dtype in shard.items():
            columns.setdefault(column, []).append(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return {c: pd.concat([pd.Series([], dtype=d) for d in ds]).dtype for c, ds in columns.items()}
