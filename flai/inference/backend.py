"""Which private back-end serves which model.

``Backend.MPC``: CrypTen two-party computation between the model holder and the consumer,
with Beaver triples from a dealer that is neither (``flai.inference.mpc``); any model kind.
``Backend.HE``: CKKS homomorphic encryption under the consumer's key (``flai.inference.he``);
linear and logistic models only, since a ReLU is not a low-degree polynomial.
"""

from __future__ import annotations

from enum import Enum

from flai.learning.config import ModelKind


class Backend(str, Enum):
    MPC = "mpc"
    HE = "he"

    def supports(self, kind: ModelKind) -> bool:
        """Whether this back-end serves ``kind``.

        >>> Backend.HE.supports(ModelKind.MLP), Backend.MPC.supports(ModelKind.MLP)
        (False, True)
        """
        return kind in _KINDS[self]

    def require(self, kind: ModelKind) -> None:
        """Raise ``BackendUnsupported`` unless this back-end serves ``kind``."""
        if not self.supports(kind):
            raise BackendUnsupported(self, kind)


_KINDS = {Backend.MPC: frozenset(ModelKind), Backend.HE: frozenset({ModelKind.LOGREG})}


class BackendUnsupported(ValueError):
    """The back-end does not serve this model kind."""

    def __init__(self, backend: Backend, kind: ModelKind) -> None:
        served = ", ".join(sorted(k.value for k in _KINDS[backend]))
        super().__init__(f"the {backend.value} back-end does not serve {kind.value} models "
                         f"(it serves: {served}); "
                         + ("the MLP's ReLU needs a secure comparison: use the mpc back-end"
                            if kind is ModelKind.MLP else ""))
        self.backend, self.kind = backend, kind
