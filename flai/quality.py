"""The data-quality gate a provider runs on its own partition before every round and query.

The expectations come from the public ``TabularSchema``: exactly the declared columns, the
right kind of values (numeric or string), numeric values within ``[low, high]``, categories
from the declared domain, at most ``max_null_fraction`` nulls per column, at least
``min_rows`` rows, and a 0/1 label. Great Expectations evaluates them locally.

Only a ``QualityReport`` leaves the provider: the verdict, the row count, how many
expectations ran and the names of those that failed. GX is asked for boolean results only
(``BOOLEAN_ONLY``), so it never even collects the unexpected values or observed statistics
that its default result format would carry, and nothing of its result object is copied out
but the expectation type, the column name and the success flag.

A verdict depends only on the data, the schema, these rules and GX's version, so a provider
keeps it on disk next to its partition (``validate_partition``) and runs GX, and imports it,
only for a data version it has not judged before: the import alone costs ~2 s and ~270 MB.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from flai.datasets.schema import Column, Numeric, TabularSchema

# GX is imported inside the functions that use it, never here: see the module docstring.
if TYPE_CHECKING:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.datasource.fluent import PandasDatasource

__all__ = [
    "QualityInputError",
    "QualityReport",
    "expectation_suite",
    "suite_version",
    "validate",
    "validate_partition",
    "verdict_path",
]

# Column dtypes that count as numeric. GX compares the column's dtype with these names; the
# nullable extension dtypes ("Int64", "Float64") never match in GX 1.24, so they are absent.
_NUMERIC_DTYPES = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)  # fmt: skip
# "StringDtype" matches a column of dtype ``pd.StringDtype()`` (see ``_as_gx_frame``); for an
# ``object`` column GX checks every non-null value's Python type against "str" instead.
_STRING_TYPES = ("StringDtype", "str")
_LABEL_DOMAIN = (0, 1)


class QualityInputError(TypeError):
    """The input cannot be validated at all (it is not a table); a bad table fails instead."""

    def __init__(self, schema: str, received: type) -> None:
        super().__init__(
            f"the quality gate of {schema!r} needs a pandas DataFrame, got {received.__name__}"
        )
        self.schema = schema
        self.received = received


@dataclass(frozen=True)
class QualityReport:
    """What may leave a provider about its data: a verdict and counts, never a value.

    ``failed`` holds names such as ``"expect_column_values_to_not_be_null(chol)"``: an
    expectation type and, for column expectations, the (public) schema column. Column names
    the schema does not declare are never named. ``report_hash`` is the SHA-256 of
    ``canonical_json()`` and is what lineage records on chain.

    >>> report = QualityReport("heart", passed=True, rows=304, evaluated=58, failed=())
    >>> report.canonical_json()
    '{"evaluated":58,"failed":[],"passed":true,"rows":304,"schema":"heart"}'
    >>> report.report_hash == hashlib.sha256(report.canonical_json().encode()).hexdigest()
    True
    """

    schema: str
    passed: bool
    rows: int
    evaluated: int
    failed: tuple[str, ...]
    report_hash: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.canonical_json().encode()).hexdigest()
        object.__setattr__(self, "report_hash", digest)

    def summary(self) -> dict[str, object]:
        """The fields the hash covers (everything but the hash itself)."""
        return {
            "schema": self.schema,
            "passed": self.passed,
            "rows": self.rows,
            "evaluated": self.evaluated,
            "failed": list(self.failed),
        }

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace: the same report always gives the same bytes."""
        return json.dumps(self.summary(), sort_keys=True, separators=(",", ":"))


def expectation_suite(schema: TabularSchema) -> gx.ExpectationSuite:
    """The schema's rules as a GX suite (a fresh object: callers may add to it).

    >>> from flai.datasets.heart import SCHEMA
    >>> suite = expectation_suite(SCHEMA)
    >>> suite.name, len(suite.expectations)
    ('flai-heart', 59)
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    table = [
        # The set check names no column and ignores duplicates; the count catches those.
        gxe.ExpectTableColumnsToMatchSet(column_set=list(schema.column_names), exact_match=True),
        gxe.ExpectTableColumnCountToEqual(value=len(schema.columns)),
        gxe.ExpectTableRowCountToBeBetween(min_value=schema.min_rows),
        gxe.ExpectColumnValuesToBeInSet(column=schema.label, value_set=list(_LABEL_DOMAIN)),
    ]
    columns = [rule for column in schema.columns for rule in _column_rules(column)]
    # Passed to the constructor: ``add_expectation`` would need a context to exist already.
    return gx.ExpectationSuite(name=f"flai-{schema.name}", expectations=table + columns)


def _column_rules(column: Column) -> list[gxe.Expectation]:
    import great_expectations.expectations as gxe

    # Named per column, so a missing column shows up as expect_column_to_exist(<name>).
    rules: list[gxe.Expectation] = [gxe.ExpectColumnToExist(column=column.name)]
    if column.max_null_fraction < 1.0:  # 1.0 allows an all-null column: nothing to check
        rules.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=column.name, mostly=1.0 - column.max_null_fraction
            )
        )
    if isinstance(column, Numeric):
        return rules + [
            gxe.ExpectColumnValuesToBeInTypeList(column=column.name, type_list=[*_NUMERIC_DTYPES]),
            gxe.ExpectColumnValuesToBeBetween(
                column=column.name, min_value=column.low, max_value=column.high
            ),
        ]
    return rules + [
        gxe.ExpectColumnValuesToBeInTypeList(column=column.name, type_list=[*_STRING_TYPES]),
        gxe.ExpectColumnValuesToBeInSet(column=column.name, value_set=[*column.domain]),
    ]


def validate(frame: pd.DataFrame, schema: TabularSchema) -> QualityReport:
    """Run the schema's suite on ``frame`` and keep only the verdict, counts and names.

    A malformed table (missing or extra columns, wrong types, too few rows) gives a failing
    report; only an input that is not a DataFrame raises ``QualityInputError``.

    >>> from flai.datasets.heart import SCHEMA
    >>> report = validate(pd.DataFrame({"age": [40.0]}), SCHEMA)
    >>> report.passed, report.rows, "expect_column_to_exist(chol)" in report.failed
    (False, 1, True)
    """
    if not isinstance(frame, pd.DataFrame):
        raise QualityInputError(schema.name, type(frame))
    suite = expectation_suite(schema)
    with _LOCK:
        source = _data_source()
        # A fresh asset per call: several schemas and frames share one context; removing it
        # afterwards keeps a long-lived provider's context from growing.
        asset_name = f"{schema.name}-{uuid.uuid4().hex}"
        asset = source.add_dataframe_asset(asset_name)
        try:
            batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
                batch_parameters={"dataframe": _as_gx_frame(frame)}
            )
            result = batch.validate(suite, result_format="BOOLEAN_ONLY")
        finally:
            source.delete_asset(asset_name)
    failed = sorted(
        _name(outcome.expectation_config) for outcome in result.results if not outcome.success
    )
    return QualityReport(
        schema=schema.name,
        passed=bool(result.success),
        rows=len(frame),
        evaluated=len(result.results),
        failed=tuple(failed),
    )


def _name(config: gxe.ExpectationConfiguration) -> str:
    column = config.kwargs.get("column")
    return config.type if column is None else f"{config.type}({column})"


def _as_gx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Give string and categorical columns a dtype that GX's type check understands.

    GX 1.24 matches no type name against pandas 3's default ``str`` dtype (a ``StringDtype``
    whose missing value is NaN) nor against ``category``, so such columns would always fail.
    A ``str`` column is relabelled as ``pd.StringDtype()``, the very dtype GX builds for the
    name "StringDtype": a dtype-level check, and an almost free conversion (2 ms for 180k
    rows x 15 columns; checking each value instead made validation 3-5x slower). A
    categorical column becomes ``object``, whose values GX checks one by one, because its
    categories need not be strings. The caller's frame is left as it is.
    """
    relabel: dict[str, object] = {}
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.StringDtype):
            relabel[name] = pd.StringDtype()
        elif isinstance(dtype, pd.CategoricalDtype):
            relabel[name] = object
    return frame.astype(relabel) if relabel else frame


def validate_partition(partition: Path, data_digest: str, schema: TabularSchema,
                       frame: Callable[[], pd.DataFrame]) -> QualityReport:
    """The verdict on ``partition`` whose bytes hash to ``data_digest`` (SHA-256, hex).

    Read from ``verdict_path(partition)`` when that file holds a verdict for this very digest
    and ``suite_version(schema)``; otherwise ``validate(frame(), schema)``, recorded there for
    the next incarnation or job. ``frame`` is called, and GX imported, only in that case. The
    report is the same either way, ``report_hash`` included.
    """
    suite = suite_version(schema)
    report = _recorded_verdict(verdict_path(partition), data_digest, suite, schema)
    if report is None:
        report = validate(frame(), schema)
        _record_verdict(verdict_path(partition), data_digest, suite, report)
    return report


def verdict_path(partition: Path) -> Path:
    """Where a partition's verdict is kept: next to it, as ``<partition>.quality.json``.

    >>> verdict_path(Path("/d/provider-0/census.parquet")).as_posix()
    '/d/provider-0/census.parquet.quality.json'
    """
    return partition.with_name(partition.name + ".quality.json")


@cache
def suite_version(schema: TabularSchema) -> str:
    """SHA-256 (hex) of what a verdict depends on besides the data: the schema, the rules
    (this module's source, so any edit to it re-validates) and the installed GX version."""
    inputs = {
        "schema": repr(schema),
        "rules": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "great_expectations": importlib.metadata.version("great_expectations"),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _recorded_verdict(path: Path, data_digest: str, suite: str,
                      schema: TabularSchema) -> QualityReport | None:
    """The verdict recorded for exactly this data and suite, or None. A file that is missing,
    unreadable, for other data or another suite, or not a well-formed report is not trusted:
    the caller validates again and replaces it."""
    try:
        record = json.loads(path.read_text())
        if (record["data_digest"], record["suite_version"]) != (data_digest, suite):
            return None
        fields = record["report"]
        if not (fields["schema"] == schema.name and type(fields["passed"]) is bool
                and type(fields["rows"]) is int and type(fields["evaluated"]) is int
                and type(fields["failed"]) is list
                and all(type(name) is str for name in fields["failed"])):
            return None
        report = QualityReport(fields["schema"], fields["passed"], fields["rows"],
                               fields["evaluated"], tuple(fields["failed"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # The hash the record was written with: a record edited or damaged anywhere disagrees.
    return report if record.get("report_hash") == report.report_hash else None


def _record_verdict(path: Path, data_digest: str, suite: str, report: QualityReport) -> None:
    """Write the verdict atomically: a provider starting meanwhile sees the old file or the new."""
    record = {"data_digest": data_digest, "suite_version": suite, "report": report.summary(),
              "report_hash": report.report_hash}
    staging = None
    try:
        fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(record, out, sort_keys=True, indent=1)
        os.replace(staging, path)
    except OSError:
        # A data directory the provider may read but not write: the verdict still stands for
        # this incarnation; the next one only validates again.
        if staging is not None:
            Path(staging).unlink(missing_ok=True)


_LOCK = threading.Lock()  # one GX context per process; actors may run calls concurrently


@cache
def _data_source() -> PandasDatasource:
    """The process's one ephemeral GX context (slow to create) and its pandas source."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_pandas("flai")
