"""The SQL each provider runs on its own table: fixed-shape partial aggregates per group cell.

Every query groups with DuckDB's own hash aggregate on the key expressions, then maps each
group's key tuple to its cell of the declared domain with ``LIST_POSITION`` (row-major, the
last key fastest). Rows whose key is outside the declared domain get no cell and are left
out. ``flai.sql_engine`` scatters the rows into zero-filled vectors, so every provider's
vectors have the same shape whichever groups it actually has.
"""

from __future__ import annotations

from sqlglot import exp

from analytics.aggregates import Histogram, Layout
from analytics.domains import Value, sql_literal
from flai.query_types import PartialPlan, PartialQuery


def compile_partials(select: exp.Select, table: str, keys: list[exp.Expression],
                     domains: tuple[tuple[Value, ...], ...], layout: Layout) -> PartialPlan:
    """The provider-side plan: one main query, one query per histogram.

    >>> import sqlglot
    >>> from analytics.aggregates import Layout
    >>> select = sqlglot.parse_one("SELECT COUNT(*) FROM heart WHERE age > 50 GROUP BY sex")
    >>> plan = compile_partials(select, "heart", [exp.column("sex")], (("female", "male"),), Layout())
    >>> print(plan.queries[0].sql)
    SELECT (LIST_POSITION(['female', 'male'], _k0) - 1) * 1 AS _cell, _s0 FROM (SELECT sex AS _k0, CAST(COUNT(*) AS DOUBLE) AS _s0 FROM heart WHERE age > 50 GROUP BY sex) AS _g
    """
    where = select.args.get("where")
    condition = where.this.sql("duckdb") if where is not None else None
    source = exp.to_identifier(table).sql("duckdb")
    histogram_columns = layout.histogram_columns
    plain = [i for i in range(len(layout.sums)) if i not in histogram_columns]
    aggregates = ([f"CAST({layout.sums[i][0]} AS DOUBLE) AS _s{i}" for i in plain]
                  + [f"CAST({slot.sql} AS DOUBLE) AS _n{j}" for j, slot in enumerate(layout.mins)]
                  + [f"CAST({slot.sql} AS DOUBLE) AS _x{j}" for j, slot in enumerate(layout.maxs)])
    outputs = ([f"_s{i}" for i in plain] + [f"_n{j}" for j in range(len(layout.mins))]
               + [f"_x{j}" for j in range(len(layout.maxs))])
    main = PartialQuery(
        _query(keys, domains, aggregates, outputs, source, condition),
        sum_columns=tuple(plain),
        min_columns=tuple(range(len(layout.mins))),
        max_columns=tuple(range(len(layout.maxs))),
    )
    histograms = tuple(_histogram_query(h, keys, domains, source, condition)
                       for h in layout.histograms)
    return PartialPlan(
        table=table,
        cells=_cells(domains),
        sum_width=len(layout.sums),
        min_neutral=tuple(slot.neutral for slot in layout.mins),
        max_neutral=tuple(slot.neutral for slot in layout.maxs),
        queries=(main, *histograms),
    )


def _cells(domains: tuple[tuple[Value, ...], ...]) -> int:
    cells = 1
    for domain in domains:
        cells *= len(domain)
    return cells


def _query(keys: list[exp.Expression], domains: tuple[tuple[Value, ...], ...],
           aggregates: list[str], outputs: list[str], source: str, condition: str | None,
           extra_key: str | None = None) -> str:
    key_items = [f"{key.sql('duckdb')} AS _k{j}" for j, key in enumerate(keys)]
    group = [key.sql("duckdb") for key in keys]
    if extra_key is not None:
        key_items.append(f"{extra_key} AS _bin")
        group.append(extra_key)
        outputs = ["_bin", *outputs]
    inner = f"SELECT {', '.join(key_items + aggregates)} FROM {source}"
    if condition is not None:
        inner += f" WHERE {condition}"
    if group:
        inner += f" GROUP BY {', '.join(group)}"
    return f"SELECT {_cell(domains)} AS _cell, {', '.join(outputs)} FROM ({inner}) AS _g"


def _cell(domains: tuple[tuple[Value, ...], ...]) -> str:
    if not domains:
        return "0"
    terms, stride = [], 1
    for j in reversed(range(len(domains))):
        values = ", ".join(sql_literal(v) for v in domains[j])
        terms.append(f"(LIST_POSITION([{values}], _k{j}) - 1) * {stride}")
        stride *= len(domains[j])
    return " + ".join(reversed(terms))


def _histogram_query(histogram: Histogram, keys: list[exp.Expression],
                     domains: tuple[tuple[Value, ...], ...], source: str,
                     condition: str | None) -> PartialQuery:
    x = histogram.argument
    present = f"({x}) IS NOT NULL"
    condition = f"({condition}) AND {present}" if condition is not None else present
    bin_of = (f"LEAST(CAST(FLOOR((({x}) - {sql_literal(histogram.low)}) / "
              f"{sql_literal(histogram.width)}) AS BIGINT), {histogram.count - 1})")
    sql = _query(keys, domains, ["CAST(COUNT(*) AS DOUBLE) AS _h"], ["_h"], source, condition,
                 extra_key=bin_of)
    return PartialQuery(sql, sum_columns=(histogram.offset,), binned=True)
