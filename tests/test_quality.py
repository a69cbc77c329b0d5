"""The quality gate on real partitions and on drifted copies of them (real GX, no mocks)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from flai.datasets import Categorical, Dataset, Partitioning, write_partitions
from flai.datasets.partition import dirichlet_split
from flai.quality import (
    QualityInputError,
    _data_source,
    expectation_suite,
    suite_version,
    validate,
)

HEART = Dataset.HEART.schema
CENSUS = Dataset.CENSUS.schema
HOSPITALS = ("cleveland", "hungary", "switzerland", "va-long-beach")


@pytest.fixture(scope="module")
def heart_files(tmp_path_factory):
    """Each hospital's partition as the provider holds it: one Parquet file."""
    return write_partitions(Dataset.HEART, tmp_path_factory.mktemp("heart"), Partitioning())


@pytest.fixture
def cleveland(heart_files) -> pd.DataFrame:
    return pd.read_parquet(heart_files["cleveland"])


@pytest.fixture(scope="module")
def census_partitions() -> dict[str, pd.DataFrame]:
    """A Dirichlet label-skewed split of all 299,285 people (loading takes seconds)."""
    return dirichlet_split(Dataset.CENSUS.load(), CENSUS.label, providers=4, alpha=0.5, seed=0)


def test_every_hospital_partition_passes(heart_files):
    assert sorted(heart_files) == list(HOSPITALS)
    for hospital, path in heart_files.items():
        frame = pd.read_parquet(path)
        report = validate(frame, HEART)
        assert (report.passed, report.failed) == (True, ()), hospital
        assert report.rows == len(frame)
        assert report.evaluated == len(expectation_suite(HEART).expectations)


def test_census_dirichlet_partitions_pass(census_partitions):
    sizes = {name: len(part) for name, part in census_partitions.items()}
    assert sum(sizes.values()) == 299_285
    for name in (min(sizes, key=sizes.get), max(sizes, key=sizes.get)):
        report = validate(census_partitions[name], CENSUS)
        assert (report.passed, report.failed) == (True, ()), name


def test_suite_is_built_from_the_schema():
    rules = {
        (rule.expectation_type, getattr(rule, "column", None)): rule
        for rule in expectation_suite(HEART).expectations
    }
    assert rules["expect_column_values_to_not_be_null", "chol"].mostly == pytest.approx(0.8)
    assert rules["expect_column_values_to_not_be_null", "age"].mostly == 1.0
    assert ("expect_column_values_to_not_be_null", "ca") not in rules  # all nulls allowed
    between = rules["expect_column_values_to_be_between", "oldpeak"]
    assert (between.min_value, between.max_value) == (-5, 10)
    assert rules["expect_column_values_to_be_in_set", "sex"].value_set == ["female", "male"]
    assert rules["expect_column_values_to_be_in_set", "disease"].value_set == [0, 1]
    assert rules["expect_table_row_count_to_be_between", None].min_value == 50
    columns = rules["expect_table_columns_to_match_set", None]
    assert (set(columns.column_set), columns.exact_match) == (set(HEART.column_names), True)


def _set(
    column: str, rows: slice, value: object, dtype: object = None
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Overwrite some rows of a column, first widening it (numbers: float64) to hold ``value``."""

    def drift(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if dtype is not None or not isinstance(value, str):
            frame[column] = frame[column].astype(dtype or "float64")
        frame.loc[frame.index[rows], column] = value
        return frame

    return drift


def _nulls(column: str, fraction: float, extra: int = 0) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Null out rows until ``fraction`` of the column, plus ``extra`` rows, is null."""

    def drift(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        present = frame.index[frame[column].notna()]
        wanted = math.floor(fraction * len(frame)) + extra - (len(frame) - len(present))
        frame.loc[present[:wanted], column] = np.nan
        return frame

    return drift


DRIFTS = {
    "missing column": (
        lambda frame: frame.drop(columns="chol"),
        {  # every rule on the absent column fails, each naming it
            "expect_column_to_exist(chol)",
            "expect_column_values_to_not_be_null(chol)",
            "expect_column_values_to_be_in_type_list(chol)",
            "expect_column_values_to_be_between(chol)",
            "expect_table_columns_to_match_set",
            "expect_table_column_count_to_equal",
        },
    ),
    "nulls beyond the allowed fraction": (
        _nulls("chol", HEART.column("chol").max_null_fraction, extra=1),
        {"expect_column_values_to_not_be_null(chol)"},
    ),
    "a null where none is allowed": (
        _set("age", slice(0, 1), np.nan),
        {"expect_column_values_to_not_be_null(age)"},
    ),
    "label out of its domain": (
        _set("disease", slice(0, 3), 2),
        {
            "expect_column_values_to_be_in_set(disease)",
            "expect_column_values_to_be_between(disease)",
        },
    ),
    "a value out of range": (
        _set("chol", slice(5, 6), 701.0),
        {"expect_column_values_to_be_between(chol)"},
    ),
    "an unknown category": (
        _set("cp", slice(7, 8), "unknown"),
        {"expect_column_values_to_be_in_set(cp)"},
    ),
    "too few rows": (
        lambda frame: frame.head(HEART.min_rows - 1),
        {"expect_table_row_count_to_be_between"},
    ),
    "a numeric column holding strings": (
        lambda frame: frame.astype({"age": "str"}),
        {
            "expect_column_values_to_be_in_type_list(age)",
            "expect_column_values_to_be_between(age)",
        },
    ),
    "a categorical column holding numbers": (
        lambda frame: frame.assign(sex=(frame["sex"] == "male").astype("int64")),
        {"expect_column_values_to_be_in_type_list(sex)", "expect_column_values_to_be_in_set(sex)"},
    ),
    "a number among the strings of an object column": (
        _set("cp", slice(0, 1), 3, dtype=object),
        {"expect_column_values_to_be_in_type_list(cp)", "expect_column_values_to_be_in_set(cp)"},
    ),
    "a duplicated column": (
        lambda frame: pd.concat([frame, frame[["thal"]]], axis="columns"),
        {"expect_table_column_count_to_equal", "expect_column_values_to_be_in_set(thal)"},
    ),
    "an undeclared extra column": (
        lambda frame: frame.assign(patient_secret_id=range(len(frame))),
        {"expect_table_columns_to_match_set", "expect_table_column_count_to_equal"},
    ),
}


@pytest.mark.parametrize("drift", DRIFTS)
def test_drifted_partition_fails_naming_the_problem(cleveland, drift):
    change, expected = DRIFTS[drift]
    report = validate(change(cleveland), HEART)
    assert not report.passed
    assert set(report.failed) == expected


@pytest.mark.parametrize("column", ["chol", "trestbps", "slope"])
def test_null_fraction_at_the_limit_passes(cleveland, column):
    report = validate(_nulls(column, HEART.column(column).max_null_fraction)(cleveland), HEART)
    assert (report.passed, report.failed) == (True, ())


def test_string_columns_in_other_dtypes_pass(cleveland):
    textual = [column.name for column in HEART.columns if isinstance(column, Categorical)]
    for dtype in ("object", "category"):
        report = validate(cleveland.astype({name: dtype for name in textual}), HEART)
        assert (report.passed, report.failed) == (True, ()), dtype


def test_validate_leaves_the_frame_alone(cleveland):
    before = cleveland.copy()
    validate(cleveland, HEART)
    pd.testing.assert_frame_equal(cleveland, before)


def test_report_carries_no_raw_value(cleveland):
    sentinel_text, sentinel_number = "zq-sentinel-5b1f0c", 987654.25
    frame = _set("cp", slice(0, 25), sentinel_text)(cleveland)
    frame = _set("chol", slice(0, 25), sentinel_number)(frame)
    report = validate(frame.assign(zq_sentinel_column=1), HEART)
    assert "expect_column_values_to_be_in_set(cp)" in report.failed
    assert "expect_column_values_to_be_between(chol)" in report.failed
    for text in (repr(report), report.canonical_json()):
        assert "sentinel" not in text
        assert "987654" not in text


def test_report_hash_is_deterministic_and_follows_the_verdict(cleveland):
    first, second = validate(cleveland, HEART), validate(cleveland.copy(), HEART)
    assert first == second and first.report_hash == second.report_hash
    assert first.report_hash == hashlib.sha256(first.canonical_json().encode()).hexdigest()
    failing = validate(_set("age", slice(0, 1), 150.0)(cleveland), HEART)
    assert not failing.passed and failing.report_hash != first.report_hash


def test_report_survives_pickling(cleveland):
    """Reports cross the provider actor's boundary, which pickles them."""
    report = validate(cleveland.head(10), HEART)
    assert pickle.loads(pickle.dumps(report)) == report


def test_one_context_serves_many_schemas_without_growing(cleveland, census_partitions):
    census = next(iter(census_partitions.values())).head(500)
    pairs = [(cleveland, HEART), (census, CENSUS), (cleveland, CENSUS), (census, HEART)]
    assert [validate(frame, schema).passed for frame, schema in pairs] == [True, True, False, False]
    assert _data_source().assets == []  # each call removed the asset it added


@pytest.mark.parametrize("not_a_frame", [{"age": [40.0]}, "providers/x/heart.parquet", None])
def test_input_that_is_not_a_table_raises(not_a_frame):
    with pytest.raises(QualityInputError) as raised:
        validate(not_a_frame, HEART)
    assert raised.value.schema == "heart"
    assert raised.value.received is type(not_a_frame)


def test_validation_draws_no_progress_bars(cleveland, capfd):
    validate(cleveland, HEART)
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_the_suite_version_changes_with_the_schema():
    """Recorded verdicts are keyed by it: a changed rule set must not reuse an old verdict."""
    assert suite_version(HEART) == suite_version(dataclasses.replace(HEART))
    assert suite_version(HEART) != suite_version(CENSUS)
    stricter = dataclasses.replace(HEART, min_rows=HEART.min_rows + 1)
    assert suite_version(stricter) != suite_version(HEART)
