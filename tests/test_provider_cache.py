"""A provider does its data-dependent work once per data version (real providers, real GX).

The data version is the SHA-256 of the partition file. The quality verdict is kept next to
the file, so another incarnation of the provider reuses it without importing Great
Expectations; the encoded features are kept for the incarnation and never changed by training.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from actors.provider import Provider
from flai.datasets import Dataset, Partitioning, write_partitions
from flai.learning import features
from flai.learning.models import ModelKind, to_vector
from flai.learning.strategy import FitConfig
from flai.quality import QualityReport, suite_version, validate, verdict_path

HEART = Dataset.HEART
REPO = Path(__file__).resolve().parents[1]
HEAVY = ("great_expectations", "duckdb", "crypten", "analytics")


@pytest.fixture(scope="module")
def cleveland_file(tmp_path_factory) -> Path:
    return write_partitions(HEART, tmp_path_factory.mktemp("heart"), Partitioning())["cleveland"]


@pytest.fixture
def partition(cleveland_file, tmp_path) -> Path:
    """A private copy of one hospital's file, without a verdict yet."""
    path = tmp_path / "cleveland" / cleveland_file.name
    path.parent.mkdir()
    shutil.copyfile(cleveland_file, path)
    return path


def provider(path: Path) -> Provider:
    return Provider("cleveland", HEART, path, max_update_norm=100.0)


def whole(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def drift(path: Path) -> None:
    """Rewrite the file with an age out of range: other bytes, and a failing verdict."""
    frame = whole(path)
    frame.loc[0, "age"] = 150.0
    frame.to_parquet(path, index=False)


def in_a_fresh_process(script: str) -> str:
    """Run ``script`` in a new interpreter, as a restarted provider would; its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_the_data_version_is_the_digest_of_the_file(partition):
    assert provider(partition).data_digest == hashlib.sha256(partition.read_bytes()).hexdigest()


def test_the_verdict_is_reached_once_and_equals_a_fresh_validation(partition):
    first = provider(partition)
    report = first.check_quality()

    assert report == validate(whole(partition), HEART.schema)
    assert report.passed and first.check_quality() is report  # the same object: not re-run
    record = json.loads(verdict_path(partition).read_text())
    assert record["data_digest"] == first.data_digest
    assert record["suite_version"] == suite_version(HEART.schema)


def test_a_restarted_provider_reuses_the_verdict_without_importing_gx(partition):
    fresh = provider(partition).check_quality()

    printed = in_a_fresh_process(f"""
        import sys
        from pathlib import Path
        from actors.provider import Provider
        from flai.datasets import Dataset
        party = Provider("cleveland", Dataset.HEART, Path({str(partition)!r}), 100.0)
        report = party.check_quality()
        print(report.report_hash, "great_expectations" in sys.modules)
    """)

    assert printed == f"{fresh.report_hash} False"


def test_a_changed_file_is_validated_again(partition):
    before = provider(partition).check_quality()
    drift(partition)

    changed = provider(partition)
    after = changed.check_quality()

    assert before.passed and not after.passed
    assert after == validate(whole(partition), HEART.schema)
    assert json.loads(verdict_path(partition).read_text())["data_digest"] == changed.data_digest


def _forged(partition: Path, **change) -> str:
    """A record claiming that ``partition`` passed, for its current bytes, altered by ``change``."""
    claim = QualityReport(HEART.schema.name, passed=True, rows=len(whole(partition)),
                          evaluated=59, failed=())
    record = {"data_digest": hashlib.sha256(partition.read_bytes()).hexdigest(),
              "suite_version": suite_version(HEART.schema), "report": claim.summary(),
              "report_hash": claim.report_hash}
    for key, value in change.items():
        if key in record:
            record[key] = value
        else:
            record["report"][key] = value
    return json.dumps(record)


UNTRUSTED = {
    "not JSON": lambda path: "{\"data_digest\": ",
    "not an object": lambda path: "[1, 2, 3]",
    "for other data": lambda path: _forged(path, data_digest="0" * 64),
    "for another suite": lambda path: _forged(path, suite_version="0" * 64),
    "a verdict edited after it was written": lambda path: _forged(path, report_hash="0" * 64),
    "a field of the wrong type": lambda path: _forged(path, rows="304"),
    "failures that are not a list": lambda path: _forged(path, failed="none"),
    "another data set's verdict": lambda path: _forged(path, schema="census"),
}


@pytest.mark.parametrize("kind", UNTRUSTED)
def test_a_verdict_file_that_does_not_hold_for_these_bytes_is_not_trusted(partition, kind):
    drift(partition)  # the truth is a failure; every record below claims a pass
    verdict_path(partition).write_text(UNTRUSTED[kind](partition))

    report = provider(partition).check_quality()

    assert not report.passed and report == validate(whole(partition), HEART.schema)
    assert json.loads(verdict_path(partition).read_text())["report"] == report.summary()


def test_a_well_formed_verdict_for_these_bytes_is_used_as_it_is(partition):
    """The counterpart of the test above: the forged record differs only where it is refused."""
    verdict_path(partition).write_text(_forged(partition))
    assert provider(partition).check_quality().passed  # the claim, since nothing contradicts it


def test_a_verdict_that_cannot_be_recorded_still_stands(partition):
    """Where the verdict file cannot be written (here: a directory is in its place), the
    provider keeps its verdict in memory and leaves no staging file behind."""
    verdict_path(partition).mkdir()

    party = provider(partition)
    report = party.check_quality()

    assert report.passed and party.check_quality() is report
    assert sorted(path.name for path in partition.parent.iterdir()) == sorted(
        [partition.name, verdict_path(partition).name])


def test_features_are_encoded_once_and_training_leaves_them_unchanged(partition):
    party = provider(partition)
    start = to_vector(ModelKind.LOGREG.build(features.feature_count(HEART.schema), 0))
    X_train, y_train = party._train_features
    X_holdout, y_holdout = party._holdout_features

    first = party.fit("c/1", start, ModelKind.LOGREG, FitConfig(), seed=0)
    party.evaluate("e/1", start, ModelKind.LOGREG, seed=0)
    second = party.fit("c/2", start, ModelKind.LOGREG, FitConfig(), seed=0)

    assert party._train_features[0] is X_train and party._holdout_features[0] is X_holdout
    for (X, y), rows in (((X_train, y_train), party._train),
                         ((X_holdout, y_holdout), party._holdout)):
        X_fresh, y_fresh = features.encode(rows, HEART.schema)
        assert torch.equal(X, X_fresh) and torch.equal(y, y_fresh)
    assert first.train_loss == second.train_loss  # the same round on the same data, twice


def test_importing_the_actors_loads_no_heavy_library():
    """GX, DuckDB, CrypTen and the planner are imported where used, not by every provider."""
    printed = in_a_fresh_process(f"""
        import sys
        import actors.provider, actors.federation
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert printed == "[]"


def test_a_valuation_sample_below_the_policy_minimum_is_refused_and_spends_nothing(partition):
    from actors.provider import ContributionRefused
    from flai.mpc.secure_utilities import UtilitySpec

    party = provider(partition)
    party._to_value["c"] = torch.zeros(3, dtype=torch.float64)
    floor = party.dataset.policy.min_group_size
    spec = UtilitySpec(("cleveland",), torch.zeros(2, dtype=torch.float64), rows=floor - 1)
    with pytest.raises(ContributionRefused, match="below the data's policy minimum"):
        party.join_secure_utilities(None, "c", spec, seed=0)
    assert "c" in party._to_value  # still there for a valuation that respects the floor
