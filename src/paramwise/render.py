"""Showing a ``Plan``: a rich table for terminals, plain text without rich, JSON and CSV for tools.

``rich`` is optional and imported only inside the functions that draw with it, so the core
library never needs it. Every view can keep only the parameters whose name contains a substring
and order the rows by rule, by group or in model order (sections for the first two).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .plan import Plan, format_value
from .rules import DEFAULT_RULE, ParamEntry

__all__ = [
    "SECTION_CHOICES",
    "plan_csv",
    "plan_html",
    "plan_json",
    "plan_table",
    "plan_text",
    "rule_text",
    "select_rows",
]

SECTION_CHOICES = ("none", "rule", "group")


def rule_text(entry: ParamEntry) -> str:
    """The rules that set ``entry``'s values: one rule by name, several as ``lr: bias_lr_mult; weight_decay: ...``."""
    by_rule: dict[str, list[str]] = {}
    for key, rule in entry.rules.items():
        if rule != DEFAULT_RULE:
            by_rule.setdefault(rule, []).append(key)
    if not by_rule:
        return DEFAULT_RULE
    if len(by_rule) == 1:  # the common case, e.g. one custom key setting lr and weight_decay
        return next(iter(by_rule))
    return "; ".join(f"{', '.join(keys)}: {rule}" for rule, keys in by_rule.items())


def select_rows(plan: Plan, group_by: str = "none", name_filter: str | None = None) -> list[list[int]]:
    """The indices of the entries to show, in sections.

    ``group_by='none'`` gives one section in model order; ``'rule'`` and ``'group'`` give one
    section per rule text or group index, in the order each first appears in the model.
    Only names containing ``name_filter`` are kept; empty sections are dropped.
    """
    if group_by not in SECTION_CHOICES:
        raise ValueError(f"group_by must be one of {', '.join(SECTION_CHOICES)}, got {group_by!r}")
    kept = [i for i, e in enumerate(plan.entries) if not name_filter or name_filter in e.name]
    if group_by == "none":
        return [kept] if kept else []
    groups = plan.group_of()
    sections: dict[Any, list[int]] = {}
    for i in kept:
        key = groups[i] if group_by == "group" else rule_text(plan.entries[i])
        sections.setdefault(key, []).append(i)
    return list(sections.values())


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) or "()"


def _summary(plan: Plan) -> str:
    total = sum(e.numel for e in plan.entries)
    base = ", ".join(f"{k}={format_value(v)}" for k, v in plan.base.items())
    groups = len(plan.groups)
    return (
        f"{plan.optimizer}({base}): {len(plan.entries)} parameters, {total:,} elements, "
        f"{groups} group{'s' if groups != 1 else ''}"
    )


def _filter_note(plan: Plan, shown: int, name_filter: str | None) -> str | None:
    if not name_filter:
        return None
    return f"{shown} of {len(plan.entries)} parameters contain {name_filter!r}"


# ----------------------------------------------------------------------------- rich


def plan_table(plan: Plan, *, group_by: str = "none", name_filter: str | None = None) -> Any:
    """A rich renderable of ``plan``: the parameter table, the group table and the warnings.

    The result goes straight to ``rich.print`` or ``Console.print``; ``Plan.__rich__`` can return it.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    keys = plan.option_keys()
    groups = plan.group_of()
    sections = select_rows(plan, group_by, name_filter)
    shown = sum(map(len, sections))

    # the summary is a line of its own, not the table's title: titles wrap to the table's width
    params = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    params.add_column("name", no_wrap=True)
    params.add_column("shape")
    params.add_column("numel", justify="right")
    params.add_column("group", justify="right")
    for key in keys:
        params.add_column(key, justify="right")
    params.add_column("rule")
    for section in sections:
        for n, i in enumerate(section):
            entry = plan.entries[i]
            values = [
                Text(format_value(plan.value_of(entry, k)),
                     style="bold cyan" if entry.rules.get(k, DEFAULT_RULE) != DEFAULT_RULE else "")
                for k in keys
            ]
            rule = rule_text(entry)
            params.add_row(
                entry.name, _shape(entry.shape), f"{entry.numel:,}", str(groups[i]), *values,
                Text(rule, style="dim" if rule == DEFAULT_RULE else "magenta"),
                end_section=n == len(section) - 1,
            )

    group_table = Table(title="parameter groups", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("group", "params", "numel", *keys):
        group_table.add_column(name, justify="right")
    for record, spec in zip(plan.group_records(), plan.groups):
        cells = [format_value(spec.hyperparams.get(k, plan.base.get(k))) for k in keys]
        group_table.add_row(str(record["group"]), str(record["params"]), f"{record['numel']:,}", *cells)

    parts: list[Any] = [Text(_summary(plan), style="bold"), params]
    note = _filter_note(plan, shown, name_filter)
    if note:
        parts.append(Text(note, style="dim"))
    parts.append(group_table)
    parts += [Text(f"warning: {w}", style="yellow") for w in plan.warnings]
    return Group(*parts)


# ----------------------------------------------------------------------------- plain text


def plan_text(plan: Plan, *, group_by: str = "none", name_filter: str | None = None) -> str:
    """The plan as aligned plain text (``str(plan)``): parameter rows, then groups, then warnings."""
    keys = plan.option_keys()
    groups = plan.group_of()
    header = ["name", "shape", "numel", "group", *keys, "rule"]
    rows: list[list[str]] = []
    for section in select_rows(plan, group_by, name_filter):
        if rows:
            rows.append([])  # a blank line between sections
        for i in section:
            entry = plan.entries[i]
            values = [format_value(plan.value_of(entry, k)) for k in keys]
            rows.append([entry.name, _shape(entry.shape), str(entry.numel), str(groups[i]), *values, rule_text(entry)])
    widths = [max(len(r[c]) for r in [header, *rows] if r) for c in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    note = _filter_note(plan, sum(1 for r in rows if r), name_filter)
    if note:
        lines.append(note)
    lines.append("")
    for g in plan.group_records():
        hp = ", ".join(f"{k}={format_value(v)}" for k, v in g["hyperparams"].items())
        lines.append(f"group {g['group']}: {g['params']} params, {g['numel']} elements, {hp}")
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


def plan_html(plan: Plan) -> str:
    """The parameter table as HTML, for notebooks (``Plan._repr_html_``)."""
    keys = plan.option_keys()
    header = ["name", "shape", "numel", "group", *keys, "rule"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for entry, group in zip(plan.entries, plan.group_of()):
        cells = [entry.name, _shape(entry.shape), str(entry.numel), str(group),
                 *(format_value(plan.value_of(entry, k)) for k in keys), rule_text(entry)]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    notes = "".join(f"<p>warning: {html.escape(w)}</p>" for w in plan.warnings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}"


# ----------------------------------------------------------------------------- JSON and CSV


def _json_safe(value: Any) -> Any:
    """Plain JSON values: tuples become lists, tensors lists, non-finite floats the strings 'inf'/'nan'."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "tolist"):  # tensors and numpy values
        return _json_safe(value.tolist())
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def plan_json(plan: Plan, *, group_by: str = "none", name_filter: str | None = None) -> dict[str, Any]:
    """The documented JSON form of ``plan`` (see docs/cli.md); ``params`` holds only the selected rows."""
    records = plan.to_records()
    order = [i for section in select_rows(plan, group_by, name_filter) for i in section]
    return _json_safe({
        "optimizer": plan.optimizer,
        "base": dict(plan.base),
        "params": [records[i] for i in order],
        "groups": plan.group_records(),
        "warnings": list(plan.warnings),
        "frozen": list(plan.frozen),
        "duplicates": [list(pair) for pair in plan.duplicates],
    })


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(_json_safe(value))
    return str(value)


def plan_csv(plan: Plan, *, group_by: str = "none", name_filter: str | None = None) -> str:
    """One CSV row per selected parameter, with the columns of ``Plan.to_records()``; shapes as ``64x3x3x3``."""
    records = plan.to_records()
    keys = plan.option_keys()
    columns = ["name", "shape", "numel", "group", "trainable"]
    for key in keys:
        columns += [key, f"{key}_rule"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for section in select_rows(plan, group_by, name_filter):
        for i in section:
            record = dict(records[i], shape=_shape(records[i]["shape"]))
            writer.writerow([_csv_cell(record.get(c)) for c in columns])
    return out.getvalue()
