"""The metric names a PromQL expression reads, so tests can hold dashboards and alerts to the real /metrics.

Not a PromQL parser: a tokenizer that drops what cannot be a metric name (strings, label matchers, range and
subquery brackets, grouping label lists, numbers and durations, Grafana variables), then takes every
remaining identifier that is not a keyword and is not followed by `(` or `by` / `without` (a function or
an aggregation).
"""

from __future__ import annotations

import re

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
)
# Keywords followed by a parenthesised list of label names, not of expressions.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_NUMBER_LITERALS = frozenset({"inf", "nan"})

_TOKEN = re.compile(
    r"""
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<variable>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)(?:[a-zA-Z]+[0-9]*)*)
    | (?P<identifier>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<open>[({\[])
    | (?P<close>[)}\]])
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    """The expression's brackets do not balance."""


def metric_names(expression: str) -> set[str]:
    """Every metric name `expression` selects (`up` included)."""
    tokens = [
        (kind, text)
        for match in _TOKEN.finditer(expression)
        for kind, text in [(match.lastgroup or "", match.group())]
        if kind not in ("space", "string", "variable", "number")
    ]
    names: set[str] = set()
    skipping: list[str] = []  # closing brackets of the spans being dropped (label matchers, ranges, lists)
    depth: list[str] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "open":
            closing = {"(": ")", "{": "}", "[": "]"}[text]
            if skipping or text in "{[":
                skipping.append(closing)
            else:
                depth.append(closing)
        elif kind == "close":
            stack = skipping or depth
            if not stack or stack.pop() != text:
                raise PromQLError(f"unbalanced {text!r} in {expression!r}")
        elif skipping:
            pass
        elif kind == "identifier":
            lowered = text.lower()
            if lowered in _LABEL_LISTS and following == "(":
                skipping.append(")")
                index += 2  # past the keyword and its "("
                continue
            # `sum by (job) (...)`: an aggregation whose grouping comes before its argument.
            aggregation = following.lower() in ("by", "without")
            if following != "(" and not aggregation and lowered not in _KEYWORDS | _NUMBER_LITERALS:
                names.add(text)
        index += 1
    if skipping or depth:
        raise PromQLError(f"unclosed bracket in {expression!r}")
    return names
