"""What the rewards code raises on input that does not fit."""

from __future__ import annotations


class RewardsInputError(ValueError):
    """A value does not fit: which field, what came, and what was expected."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        super().__init__(f"{field}={value!r}: expected {expected}")
        self.field = field
        self.value = value
        self.expected = expected
