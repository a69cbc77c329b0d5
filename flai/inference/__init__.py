"""Private inference: a consumer's rows go in, only the consumer learns the predictions.

Two back-ends behind ``Backend`` (``flai.inference.backend``), each in two halves, one per
party: ``mpc`` (``serve_as_holder`` / ``predict_as_consumer`` on a kept two-party CrypTen
session with a dealer) and ``he`` (``HeConsumer`` encrypts and decrypts, ``HeHolder``
evaluates on ciphertexts). ``plaintext_predict`` is the reference both are tested against,
within ``TOLERANCE``. Nothing here imports Ray, Prefect or the actors; CrypTen only through
``flai.mpc.crypten_adapter``, TenSEAL only where the HE halves run.
"""

from flai.inference.backend import Backend, BackendUnsupported
from flai.inference.model import (
    TOLERANCE,
    Architecture,
    Dense,
    ModelRef,
    ModelWeights,
    plaintext_predict,
    sigmoid,
)

__all__ = ["TOLERANCE", "Architecture", "Backend", "BackendUnsupported", "Dense", "ModelRef",
           "ModelWeights", "plaintext_predict", "sigmoid"]
