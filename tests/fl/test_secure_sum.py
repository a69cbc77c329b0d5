"""The one-PRZS secure sum, with real CrypTen parties in real Ray actors."""

from __future__ import annotations

import ray
import torch

from flai.mpc.fixed_point import SCALE, decode, encode
from flai.mpc.secure_sum import secure_sum
from flai.mpc.session import MpcSession, run_in_session
from flai.net import free_port


@ray.remote(num_cpus=0)
class Party:
    """A bare MPC party holding one tensor; the protocol is the production one."""

    def __init__(self, name: str, value: torch.Tensor) -> None:
        torch.set_num_threads(1)
        self.name, self.value = name, value

    def sum(self, session: MpcSession):
        return run_in_session(session, self.name, lambda rank: secure_sum(self.value))


def _secure_sum(values: list[torch.Tensor]):
    names = tuple(f"p{i}" for i in range(len(values)))
    session = MpcSession("test", names, "127.0.0.1", free_port("127.0.0.1"), 20.0)
    parties = [Party.remote(name, value) for name, value in zip(names, values)]
    try:
        return ray.get([party.sum.remote(session) for party in parties], timeout=60)
    finally:
        for party in parties:
            ray.kill(party)


def test_secure_sum_matches_plaintext_for_mixed_signs(ray_cluster):
    generator = torch.Generator().manual_seed(7)
    # Values just above negative integers are where CrypTen's own decode goes wrong.
    tricky = -torch.arange(1, 1001, dtype=torch.float64) + 1.0 / SCALE
    values = [torch.zeros(3000, dtype=torch.float64)]  # the aggregator holds no data
    values += [torch.cat([tricky / 3, 1e3 * torch.randn(2000, generator=generator,
                                                        dtype=torch.float64)])
               for _ in range(3)]
    results = _secure_sum(values)
    expected = sum(values)
    assert results[1:] == [None, None, None], "only rank 0 may obtain the sum"
    # Each of 4 parties rounds once: error <= 4 * 2**-17.
    assert torch.max(torch.abs(results[0] - expected)).item() <= 4 / (2 * SCALE) + 1e-12


def test_decode_is_right_where_crypten_decode_is_wrong():
    import flai.mpc.crypten_adapter  # noqa: F401  (loads crypten, adapted)

    from crypten.encoder import FixedPointEncoder

    ring = encode(torch.tensor([-3.0 + 1 / SCALE, -1.0 + 1 / SCALE, -0.5, 2.25]))
    assert decode(ring).tolist() == [-3.0 + 1 / SCALE, -1.0 + 1 / SCALE, -0.5, 2.25]
    crypten_decoded = FixedPointEncoder(precision_bits=16).decode(ring).double()
    # The upstream bug this module works around; if it is ever fixed, this tells us.
    assert crypten_decoded[0].item() == -4.0 + 1 / SCALE


def test_encode_refuses_values_the_ring_cannot_hold():
    import pytest

    from flai.mpc.fixed_point import MAX_ABS, FixedPointRangeError

    for bad in (float("nan"), float("inf"), MAX_ABS):
        with pytest.raises(FixedPointRangeError):
            encode(torch.tensor([1.0, bad]))
