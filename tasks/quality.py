"""The data-quality gate: every selected provider checks its own partition before training.

Only each provider's ``QualityReport`` (a verdict, counts and failed expectation names) comes
back. A provider whose data fails sits the round out, with the failed expectations as the
reason; the round goes on with the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from actors import federation as fed
from flai.lineage import combined_quality_hash
from flai.quality import QualityReport
from flai.settings import get_settings


@dataclass(frozen=True)
class QualityGate:
    passed: tuple[str, ...]  # the providers that may train this round, in selection order
    verdicts: dict[str, QualityReport]  # every report received, passing or not
    dropped: dict[str, str] = field(default_factory=dict)  # failed the gate, or did not answer

    @property
    def report_hash(self) -> str:
        """What lineage records: :func:`flai.lineage.combined_quality_hash` of the verdicts."""
        return combined_quality_hash({name: report.report_hash for name, report in self.verdicts.items()})


@task(cache_policy=NO_CACHE)
def check_quality(federation: fed.Federation, participants: tuple[str, ...]) -> QualityGate:
    verdicts, dropped = fed.call_each(federation, participants,
                                      lambda provider: provider.check_quality.remote(),
                                      get_settings().provider_call_timeout_s)
    for name, report in verdicts.items():
        if not report.passed:
            dropped[name] = "failed the quality gate: " + ", ".join(report.failed)
    if dropped:
        get_run_logger().warning("dropped by the quality gate: %s", dropped)
    passed = tuple(name for name in participants if name in verdicts and verdicts[name].passed)
    return QualityGate(passed, verdicts, dropped)
