"""The one place that adapts CrypTen 0.4.1 to torch 2.13. Import crypten only through here.

Five adaptations, all measured (shared/STACK.md and our own tests):

1. torch moved ``torch.onnx._internal.registration`` to
   ``torch.onnx._internal.torchscript_exporter.registration``; CrypTen only imports the name,
   so registering the new module under the old name is enough.
2. CrypTen passes no timeout to ``init_process_group``/``new_group``, so a party whose peer
   died would wait torch's default 30 minutes. ``set_collective_timeout`` lowers torch's
   default for the process; it applies to the rendezvous and to every collective.
3. A rendezvous that fails part-way leaves torch's process-group counter advanced and, if it
   failed inside CrypTen's communicator set-up, a default group CrypTen no longer knows. The
   next session of that party would then wait on store keys no fresh party writes.
   ``reset_process_groups`` returns the process to the state of a fresh one.
4. ``crypten.uninit`` keeps the trusted-third-party client singleton bound to the old session,
   so the next TTP session skips its seed exchange with the dealer and both sides wait until
   they time out. ``reset_process_groups`` drops that singleton too.
5. Every attribute access on a ``CrypTensor`` first reads ``cfg.debug.validation_mode``, an
   omegaconf lookup (18 us); in a profile of a comparison circuit that was a third of a
   party's CPU time.
   FLAI never runs CrypTen's validation mode, so ``load_crypten`` restores the plain
   ``__getattribute__``.
"""

from __future__ import annotations

import importlib
import sys
from datetime import timedelta
from types import ModuleType

_OLD = "torch.onnx._internal.registration"
_NEW = "torch.onnx._internal.torchscript_exporter.registration"


def load_crypten() -> ModuleType:
    """Import crypten with the registration alias in place."""
    if _OLD not in sys.modules:
        sys.modules[_OLD] = importlib.import_module(_NEW)
    import crypten
    from crypten.cryptensor import CrypTensor

    CrypTensor.__getattribute__ = getattr(CrypTensor.__getattribute__, "__wrapped__",
                                          CrypTensor.__getattribute__)
    return crypten


def set_collective_timeout(seconds: float) -> None:
    """Bound the rendezvous and every gloo collective of this process to ``seconds``."""
    from torch.distributed import distributed_c10d

    distributed_c10d.default_pg_timeout = timedelta(seconds=seconds)


def reset_process_groups() -> None:
    """Forget any (partly) initialised session so the next one starts like a fresh process."""
    import torch.distributed as dist
    from crypten.mpc.provider.ttp_provider import TTPClient
    from torch.distributed import distributed_c10d

    TTPClient.uninit()
    if dist.is_initialized():
        dist.destroy_process_group()
    distributed_c10d._world.group_count = 0
