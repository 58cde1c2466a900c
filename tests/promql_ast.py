"""PromQL read through promql-parser's AST, for the tests that lint the dashboards and the rules.

A real parser rather than a hand tokenizer: an expression that is not valid PromQL raises the
parser's ValueError here, so every lint that reads an expression also checks its syntax.

Dashboard queries hold Grafana variables, which are not PromQL. `$job` inside a matcher's string is
valid as written, but `[$__rate_interval]` is not, so Grafana's built-in variables are expanded to
stand-ins first: durations and numbers nobody writes by hand, so that a range read back from the
AST can be traced to the variable it was written with.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import promql_parser

from tools.grafana_query import substitute

STAND_INS = {
    "__rate_interval": "999991s",
    "__interval": "999992s",
    "__range": "999993s",
    "__range_s": "999994",
    "__interval_ms": "999995",
    "__range_ms": "999996",
}
STAND_IN_RANGES = {timedelta(seconds=int(v[:-1])): f"${k}" for k, v in STAND_INS.items() if v.endswith("s")}
MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})
ABSENT = frozenset({"absent", "absent_over_time"})


@dataclass(frozen=True)
class Selector:
    """One vector selector: its metric name (None for `{...}` without one) and its label matchers."""

    name: str | None
    matchers: frozenset[tuple[str, str, str]]  # (label, op, value), the metric name left out
    text: str

    def has(self, label: str, op: str, value: str) -> bool:
        """True when this selector carries exactly that matcher."""
        return (label, op, value) in self.matchers


def parse(expr: str) -> promql_parser.Expr:
    """The AST of a PromQL expression, Grafana's built-in variables replaced by their stand-ins."""
    return promql_parser.parse(substitute(expr, STAND_INS, strict=False))


def walk(expr: promql_parser.Expr) -> Iterator[tuple[promql_parser.Expr, promql_parser.Expr | None]]:
    """Every node of the tree with its parent (None for the root), depth first."""
    found: list[tuple[promql_parser.Expr, promql_parser.Expr | None]] = []
    path: list[promql_parser.Expr] = []

    def enter(node: promql_parser.Expr) -> None:
        found.append((node, path[-1] if path else None))
        path.append(node)

    def leave(_node: promql_parser.Expr) -> None:
        path.pop()

    promql_parser.walk(expr, enter, leave)
    return iter(found)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of the expression, in order (those under a range included)."""
    found = []
    for node, _parent in walk(parse(expr)):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [(m.name, MATCH_OPS[str(m.op)], m.value) for m in node.matchers.matchers]
            name = node.name or next(
                (v for label, op, v in matchers if (label, op) == ("__name__", "=")), None
            )
            others = frozenset(m for m in matchers if not (node.name and m[0] == "__name__"))
            found.append(Selector(name, others, str(node)))
    return found


def window(duration: timedelta) -> str:
    """A range as written: `$__rate_interval` for its stand-in, else PromQL's duration (5m)."""
    return STAND_IN_RANGES.get(duration) or promql_parser.display_duration(duration)


def range_arguments(expr: str) -> list[tuple[str, str]]:
    """(function, window) for every range or subquery, e.g. ("rate", "$__rate_interval").

    The function is the call the range is an argument of, "" when it is not one.
    """
    found = []
    for node, parent in walk(parse(expr)):
        if isinstance(node, (promql_parser.MatrixSelector, promql_parser.SubqueryExpr)):
            function = parent.func.name if isinstance(parent, promql_parser.Call) else ""
            if node.range is not None:
                found.append((function, window(node.range)))
    return found


def offsets(expr: str) -> list[str]:
    """The `offset` of every selector or subquery that has one, as written (`$__range`, 7d)."""
    return [
        window(node.offset)
        for node, _parent in walk(parse(expr))
        if isinstance(node, (promql_parser.VectorSelector, promql_parser.SubqueryExpr))
        and node.offset is not None
    ]


def _or_operands(node: promql_parser.Expr) -> list[promql_parser.Expr]:
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "or":
        return [*_or_operands(node.lhs), *_or_operands(node.rhs)]
    return [node]


def _with_bool(node: promql_parser.Expr) -> str:
    """The expression with `bool` on every comparison not inside a call, aggregation or parentheses."""
    if not isinstance(node, promql_parser.BinaryExpr):
        return str(node)
    modifier = str(node.modifier).strip() if node.modifier else ""
    if str(node.op) in COMPARISONS:
        modifier = ("bool " + modifier.removeprefix("bool").strip()).strip()
    return " ".join(
        part for part in (_with_bool(node.lhs), str(node.op), modifier, _with_bool(node.rhs)) if part
    )


def healthy_probes(expr: str) -> list[str]:
    """Queries that must return data whenever the series an alert reads exist, firing or not.

    An alert expression is empty while nothing is wrong, so running it proves little. Instead:
    each top-level `or` operand is probed on its own; an operand built on `absent(x)` is probed as
    `x` (it must exist for the alert to stay quiet); any other operand gets `bool` on its top-level
    comparisons, which turns `a > b` from a filter into a 0/1 sample for every pair of series that
    match, so an empty answer means a misspelt metric or label matching that never pairs anything.
    """
    probes = []
    for operand in _or_operands(parse(expr)):
        absent = [
            node
            for node, _ in walk(operand)
            if isinstance(node, promql_parser.Call) and node.func.name in ABSENT
        ]
        for call in absent:
            (argument,) = call.args
            inner = (
                argument.vector_selector if isinstance(argument, promql_parser.MatrixSelector) else argument
            )
            probes.append(str(inner))
        if not absent:
            probes.append(_with_bool(operand))
    for probe in probes:
        promql_parser.parse(probe)  # the AST printed back must still be PromQL
    return probes


def aggregations(expr: str) -> list[tuple[str, str, frozenset[str]]]:
    """(operator, "by" or "without", labels) of every aggregation; one with no clause is `by ()`."""
    found: list[tuple[str, str, frozenset[str]]] = []
    for node, _parent in walk(parse(expr)):
        if isinstance(node, promql_parser.AggregateExpr):
            if node.modifier is None:
                found.append((str(node.op), "by", frozenset()))
            else:
                kind = "without" if node.modifier.type == promql_parser.AggModifierType.Without else "by"
                found.append((str(node.op), kind, frozenset(node.modifier.labels)))
    return found


def _number(node: promql_parser.Expr) -> float | None:
    if isinstance(node, promql_parser.ParenExpr):
        return _number(node.expr)
    if isinstance(node, promql_parser.UnaryExpr):
        inner = _number(node.expr)
        return None if inner is None else -inner
    return float(node.val) if isinstance(node, promql_parser.NumberLiteral) else None


def compared_numbers(expr: str) -> list[float]:
    """The literal numbers the expression's comparisons compare against (`x > 0` gives 0.0)."""
    found: list[float] = []
    for node, _parent in walk(parse(expr)):
        if isinstance(node, promql_parser.BinaryExpr) and str(node.op) in COMPARISONS:
            found.extend(n for n in (_number(node.lhs), _number(node.rhs)) if n is not None)
    return found


def constant_vector(expr: str) -> float | None:
    """N when the expression is `vector(N)` for a literal number N, else None."""
    node = parse(expr)
    if isinstance(node, promql_parser.Call) and node.func.name == "vector":
        return _number(node.args[0])
    return None
