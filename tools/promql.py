"""Just enough PromQL reading for the monitoring bundle's linters and end-to-end test.

Not a parser: a tokenizer that knows where strings, label matchers, ranges and label lists are, so
it can list an expression's vector selectors, expand Grafana variables, and turn an alert
expression into probes that return data when the series it reads exist and match up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

AGGREGATIONS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
KEYWORDS = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
        "and", "or", "unless", "atan2", "inf", "nan", "start", "end",
    }
)  # fmt: skip
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z0-9_:]+\]\])
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_:]))
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?)(?![A-Za-z0-9_:]))
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=@])
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_MATCHER = re.compile(
    r"""\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(?:,|$)"""
)
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


@dataclass(frozen=True)
class Token:
    """One lexical token and its position in the expression."""

    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Matcher:
    """One label matcher, its value unquoted."""

    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """One vector selector: a metric name (or None for `{...}` alone) and its matchers."""

    name: str | None
    matchers: tuple[Matcher, ...]
    text: str

    def has(self, label: str, op: str, value: str) -> bool:
        """True when this selector carries exactly that matcher."""
        return Matcher(label, op, value) in self.matchers


class PromQLError(ValueError):
    """The expression could not be tokenized."""


def tokenize(expr: str) -> list[Token]:
    """Split an expression into tokens, dropping whitespace.

    A `{...}` matcher block is one token ("matchers"), and so is a `[...]` range or subquery
    ("range"), since Grafana variables and colons inside it are not PromQL tokens.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        if expr[pos] == "[" and not expr.startswith("[[", pos):
            end = expr.find("]", pos)
            if end < 0:
                raise PromQLError(f"unterminated [ at {pos} in {expr!r}")
            tokens.append(Token("range", expr[pos : end + 1], pos, end + 1))
            pos = end + 1
            continue
        if expr[pos] == "{":
            end = _closing_brace(expr, pos)
            tokens.append(Token("matchers", expr[pos : end + 1], pos, end + 1))
            pos = end + 1
            continue
        match = _TOKEN.match(expr, pos)
        if not match:
            raise PromQLError(f"cannot read {expr[pos : pos + 20]!r} at {pos} in {expr!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos, match.end()))
        pos = match.end()
    return tokens


def _closing_brace(expr: str, start: int) -> int:
    pos = start + 1
    while pos < len(expr):
        char = expr[pos]
        if char in "\"'`":
            match = _TOKEN.match(expr, pos)
            if not match or match.lastgroup != "string":
                raise PromQLError(f"unterminated string at {pos} in {expr!r}")
            pos = match.end()
            continue
        if char == "}":
            return pos
        pos += 1
    raise PromQLError(f"unterminated {{ at {start} in {expr!r}")


def _unquote(value: str) -> str:
    body = value[1:-1]
    if value[0] == "`":
        return body
    return re.sub(r"\\(.)", r"\1", body)


def parse_matchers(block: str) -> tuple[Matcher, ...]:
    """The matchers of a `{...}` block."""
    inner = block[1:-1].strip()
    matchers: list[Matcher] = []
    pos = 0
    while pos < len(inner):
        match = _MATCHER.match(inner, pos)
        if not match:
            raise PromQLError(f"cannot read label matchers {block!r}")
        matchers.append(Matcher(match["label"], match["op"], _unquote(match["value"])))
        pos = match.end()
    return tuple(matchers)


def _skip_group(tokens: list[Token], index: int) -> int:
    """Index just past the parenthesised group opening at tokens[index]."""
    depth = 0
    for i in range(index, len(tokens)):
        if tokens[i].text == "(":
            depth += 1
        elif tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise PromQLError("unbalanced parentheses")


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of the expression, in order."""
    tokens = tokenize(expr)
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.kind == "ident" and token.text in LABEL_LIST_KEYWORDS:
            # by (a, b), on (), group_left (c): label names, not metrics.
            i = _skip_group(tokens, i + 1) if following and following.text == "(" else i + 1
            continue
        if token.kind == "ident" and (token.text in KEYWORDS or token.text in AGGREGATIONS):
            i += 1
            continue
        if token.kind == "ident" and following is not None and following.text == "(":
            i += 1  # a function call
            continue
        if token.kind == "ident":
            if following is not None and following.kind == "matchers":
                text = expr[token.start : following.end]
                found.append(Selector(token.text, parse_matchers(following.text), text))
                i += 2
            else:
                found.append(Selector(token.text, (), token.text))
                i += 1
            continue
        if token.kind == "matchers":
            matchers = parse_matchers(token.text)
            names = [m.value for m in matchers if m.label == "__name__" and m.op == "="]
            found.append(Selector(names[0] if names else None, matchers, token.text))
        i += 1
    return found


def range_arguments(expr: str) -> Iterator[tuple[str, str]]:
    """(function, range text) for every `f(selector[range])` call, e.g. ("rate", "$__rate_interval")."""
    tokens = tokenize(expr)
    calls: list[str] = []  # function name per open parenthesis ("" for plain grouping)
    for i, token in enumerate(tokens):
        if token.text == "(":
            before = tokens[i - 1] if i else None
            calls.append(before.text if before is not None and before.kind == "ident" else "")
        elif token.text == ")":
            if calls:
                calls.pop()
        elif token.kind == "range":
            yield (calls[-1] if calls else "", token.text[1:-1].strip())


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Expand Grafana variables ($name, ${name}, ${name:format}, [[name]]); unknown names raise KeyError."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"undefined variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def variables(expr: str) -> set[str]:
    """Names of the Grafana variables the expression uses."""
    return {m.group(1) or m.group(2) or m.group(3) for m in _VARIABLE.finditer(expr)}


def _top_level(tokens: list[Token]) -> Iterator[tuple[int, Token]]:
    depth = 0
    for i, token in enumerate(tokens):
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif depth == 0:
            yield i, token


def split_top_level_or(expr: str) -> list[str]:
    """The operands of top-level `or` operators (the expression itself when there are none)."""
    tokens = tokenize(expr)
    cuts = [t for _, t in _top_level(tokens) if t.kind == "ident" and t.text == "or"]
    parts: list[str] = []
    start = 0
    for cut in cuts:
        parts.append(expr[start : cut.start].strip())
        start = cut.end
    parts.append(expr[start:].strip())
    return parts


def absent_arguments(expr: str) -> list[str]:
    """The argument of every absent(...) / absent_over_time(...) call in the expression."""
    tokens = tokenize(expr)
    found: list[str] = []
    for i, token in enumerate(tokens[:-1]):
        if token.text in ("absent", "absent_over_time") and tokens[i + 1].text == "(":
            close = _skip_group(tokens, i + 1) - 1
            inner = expr[tokens[i + 1].end : tokens[close].start].strip()
            if token.text == "absent_over_time":
                inner = re.sub(r"\[[^\]]*\]\s*$", "", inner).strip()
            found.append(inner)
    return found


def with_bool(expr: str) -> str:
    """The expression with `bool` added to every top-level comparison, so it no longer filters."""
    tokens = tokenize(expr)
    out = expr
    for i, token in reversed(list(_top_level(tokens))):
        if token.kind == "op" and token.text in COMPARISONS:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is None or following.text != "bool":
                out = out[: token.end] + " bool" + out[token.end :]
    return out


def healthy_probes(expr: str) -> list[str]:
    """Queries that must return data whenever the series an alert reads exist, firing or not.

    An alert expression is empty while nothing is wrong, so running it proves little. Instead:
    each top-level `or` operand is probed on its own; an operand built on `absent(x)` is probed as
    `x` (it must exist for the alert to stay quiet); any other operand gets `bool` on its top-level
    comparisons, which turns `a > b` from a filter into a 0/1 sample for every pair of series that
    match, so an empty answer means a misspelt metric or label matching that never pairs anything.
    """
    probes: list[str] = []
    for part in split_top_level_or(expr):
        probes.extend(absent_arguments(part) or [with_bool(part)])
    return probes
