"""One SQL fixture file per planner rule (``rules/<rule>.sql``): input, then expected output.

A block is an input statement and either the rule's expected output or ``REFUSED: <text>``,
the text being part of the ``QueryRefused`` reason. ``#`` lines are titles; blank lines
separate blocks. Each rule is applied alone, as sqlglot's optimizer fixtures do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics import RULES, QueryRefused
from analytics.plan import parse
from flai.datasets.heart import SCHEMA

FIXTURES = Path(__file__).parent / "rules"
_RULES = {rule.__name__: rule for rule in RULES}


def _cases() -> list:
    cases = []
    for path in sorted(FIXTURES.glob("*.sql")):
        for number, block in enumerate(path.read_text().split("\n\n")):
            lines = [line for line in block.strip().splitlines() if not line.startswith("#")]
            statements = [s.strip() for s in "\n".join(lines).split(";\n")]
            source, expected = statements[0], statements[1].rstrip(";")
            cases.append(pytest.param(path.stem, source, expected, id=f"{path.stem}-{number}"))
    return cases


@pytest.mark.parametrize(("rule", "source", "expected"), _cases())
def test_rule(rule, source, expected):
    apply = _RULES[rule]
    if expected.startswith("REFUSED:"):
        with pytest.raises(QueryRefused) as refused:
            apply(parse(source), SCHEMA)
        assert expected.removeprefix("REFUSED:").strip() in refused.value.reason
    else:
        assert apply(parse(source), SCHEMA).sql("duckdb") == parse(expected).sql("duckdb")


def test_every_rule_has_fixtures():
    assert {path.stem for path in FIXTURES.glob("*.sql")} == set(_RULES)


def test_rules_are_idempotent():
    sql = "SELECT sex, AVG(age), CORR(age, chol) FROM heart GROUP BY 1 HAVING COUNT(*) > 2"
    once = parse(sql)
    for rule in RULES:
        once = rule(once, SCHEMA)
    twice = once
    for rule in RULES:
        twice = rule(twice, SCHEMA)
    assert twice.sql() == once.sql()
