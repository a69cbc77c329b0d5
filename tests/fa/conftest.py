"""The FL fixtures (real provider actors over the heart partitions), shared with tests/fl."""

from tests.fl.conftest import heart_federation, heart_files  # noqa: F401  (pytest fixtures)
