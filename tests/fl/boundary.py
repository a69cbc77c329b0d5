"""What may cross a provider actor's boundary: metadata of plain scalars, nothing more."""

from __future__ import annotations

import dataclasses

_SCALARS = (str, int, float, bool, type(None))


def only_scalars(value) -> bool:
    """True when ``value`` is a dataclass/tuple of plain scalars: no tensor, array or frame."""
    if dataclasses.is_dataclass(value):
        return all(only_scalars(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return all(only_scalars(item) for item in value)
    return isinstance(value, _SCALARS)
