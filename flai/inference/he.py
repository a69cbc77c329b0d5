"""Private inference under CKKS homomorphic encryption (TenSEAL): no interaction at all.

1. The consumer makes a CKKS context; its secret key never leaves the consumer. A query
   carries the context's public part (encryption, relinearisation and Galois keys) and its
   SHA-256; the holder deserialises a context once and keeps it under that digest, which it
   checks, so a public context costs its ~0.06 s of loading once per consumer key.
2. The consumer packs up to ``slots / 2**ceil(log2 F)`` rows into one ciphertext
   (``tenseal.enc_matmul_encoding``: each row zero-padded to a power of two) and encrypts.
3. The holder, with the public context and its plaintext weights only, computes
   ``X w + b`` on each ciphertext (``enc_matmul_plain``: one plaintext multiplication, then
   rotations and additions within each row's block) and returns the ciphertexts.
4. The consumer decrypts the logits and applies the sigmoid.

Parameters: ring degree N = 8192 (4096 slots), coefficient moduli of 60, 40 and 60 bits
(160 of the 218 bits the HE security standard allows N = 8192 at 128-bit security), scale
``2**40``: one multiplicative level, which a plaintext dot product uses up. Measured error on
heart's 38 features: about 2e-6 on a logit.

Only linear and logistic models (``Backend.HE``): a ReLU is not a low-degree polynomial.
What each party learns: the holder, the number of ciphertexts (hence about ``n``) and the
public context; the consumer, the logits (and nothing of the weights beyond them).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from flai.inference.backend import Backend
from flai.inference.model import ModelWeights, sigmoid

POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 40, 60)
SCALE_BITS = 40
KEPT_CONTEXTS = 4  # public contexts the holder keeps loaded (one per recent consumer key)


class HeInferenceError(ValueError):
    """A query the holder will not evaluate (its context, or its shape)."""


@dataclass(frozen=True)
class HeQuery:
    """What the consumer sends: public context, its digest, encrypted rows and their count."""

    public_context: bytes
    context_sha256: str
    ciphertexts: tuple[bytes, ...]
    rows: int
    features: int


@dataclass(frozen=True)
class HeAnswer:
    """What the holder sends back: the encrypted logits, one ciphertext per query ciphertext."""

    ciphertexts: tuple[bytes, ...]


def rows_per_ciphertext(features: int) -> int:
    """Rows one ciphertext holds: each row takes the next power of two of ``features`` slots.

    >>> rows_per_ciphertext(38)
    64
    """
    return (POLY_MODULUS_DEGREE // 2) // (1 << (features - 1).bit_length())


def _chunks(rows: int, features: int) -> list[slice]:
    per = rows_per_ciphertext(features)
    return [slice(start, min(start + per, rows)) for start in range(0, rows, per)]


class HeConsumer:
    """The consumer's half: holds the secret key, encrypts rows, decrypts logits."""

    def __init__(self) -> None:
        import tenseal as ts

        self._context = ts.context(ts.SCHEME_TYPE.CKKS, POLY_MODULUS_DEGREE,
                                   coeff_mod_bit_sizes=list(COEFF_MOD_BIT_SIZES))
        self._context.global_scale = 2.0**SCALE_BITS
        self._context.generate_galois_keys()  # the rotations that sum a row's products
        public = self._context.copy()
        public.make_context_public()
        self._public = public.serialize()
        self._public_sha256 = hashlib.sha256(self._public).hexdigest()

    def query(self, rows: np.ndarray) -> HeQuery:
        """Encrypt ``rows`` (``[n, F]``) under this consumer's key."""
        import tenseal as ts

        n, features = rows.shape
        if not (n and np.isfinite(rows).all()):
            raise HeInferenceError(f"{n} row(s); need at least one, all finite")
        ciphertexts = tuple(ts.enc_matmul_encoding(self._context, rows[part].tolist()).serialize()
                            for part in _chunks(n, features))
        return HeQuery(self._public, self._public_sha256, ciphertexts, n, features)

    def decrypt(self, answer: HeAnswer, rows: int) -> np.ndarray:
        """The probability of class 1 for each of the ``rows`` rows of the query answered."""
        import tenseal as ts

        logits = np.concatenate([ts.ckks_vector_from(self._context, c).decrypt()
                                 for c in answer.ciphertexts])
        if logits.shape != (rows,):
            raise HeInferenceError(f"{logits.shape[0]} logits for {rows} rows")
        return sigmoid(logits)


class HeHolder:
    """The model holder's half: evaluates a logistic model on ciphertexts, keyless."""

    def __init__(self) -> None:
        self._contexts: OrderedDict[str, object] = OrderedDict()

    def evaluate(self, weights: ModelWeights, query: HeQuery) -> HeAnswer:
        """``X w + b`` for the query's rows, encrypted under the consumer's key."""
        import tenseal as ts

        Backend.HE.require(weights.kind)
        (layer,) = weights.layers
        if query.features != layer.weight.shape[1] or len(query.ciphertexts) != len(
                _chunks(query.rows, query.features)):
            raise HeInferenceError(f"{query.rows} rows of {query.features} features in "
                                   f"{len(query.ciphertexts)} ciphertexts; the model takes "
                                   f"{layer.weight.shape[1]} features")
        context = self._context(query)
        weight, bias = layer.weight[0].tolist(), float(layer.bias[0])
        return HeAnswer(tuple(
            (ts.ckks_vector_from(context, ciphertext).enc_matmul_plain(weight, part.stop - part.start)
             + bias).serialize()
            for ciphertext, part in zip(query.ciphertexts, _chunks(query.rows, query.features))))

    def _context(self, query: HeQuery):
        """The query's public context, loaded once per digest; one holding a secret is refused."""
        import tenseal as ts

        if (context := self._contexts.get(query.context_sha256)) is not None:
            self._contexts.move_to_end(query.context_sha256)
            return context
        if hashlib.sha256(query.public_context).hexdigest() != query.context_sha256:
            raise HeInferenceError("the query's public context does not match its digest")
        context = ts.context_from(query.public_context)
        if context.is_private():
            raise HeInferenceError("the query's context holds the consumer's secret key; the "
                                   "holder evaluates under public contexts only")
        self._contexts[query.context_sha256] = context
        while len(self._contexts) > KEPT_CONTEXTS:
            self._contexts.popitem(last=False)
        return context
