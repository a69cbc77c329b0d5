"""One federation of the four hospitals for the whole module: queries do not harm providers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors import federation as fed
from flai.datasets import Dataset
from tests.fl.conftest import heart_files  # noqa: F401  (pytest fixture)


@pytest.fixture(scope="module")
def heart_federation(ray_cluster, heart_files) -> Iterator[fed.Federation]:  # noqa: F811
    federation = fed.Federation("test-fa-heart", Dataset.HEART, tuple(heart_files), "heart-4")
    fed.start(federation)
    yield federation
    fed.stop(federation)
