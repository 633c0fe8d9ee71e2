"""Showing a ``Plan``: a rich table for terminals, plain text without rich, JSON and CSV for tools.

``rich`` is optional and imported only inside the functions that draw with it, so the core
library never needs it. Every view can keep only the parameters whose name contains a substring
and order the rows by rule, by group or in model order (sections for the first two).
Views for people show numbers to 6 significant digits (``value_text``); JSON and CSV keep them exact.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from paramwise.plan.rules import DEFAULT_RULE, ParamEntry
from paramwise.suggestions import plural

if TYPE_CHECKING:  # rich stays optional: imported for real only where a table is drawn
    from rich.console import Console, ConsoleOptions
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    from paramwise.plan.plan import Plan  # plan imports this module to show itself: no import back at run time

__all__ = [
    "explain_text",
    "json_safe",
    "SECTION_CHOICES",
    "plan_csv",
    "plan_html",
    "plan_json",
    "plan_table",
    "plan_text",
    "plural",
    "rule_text",
    "select_rows",
    "value_text",
]

SECTION_CHOICES = ("none", "rule", "group")


def value_text(value: Any) -> str:
    """A hyperparameter value for people: numbers to 6 significant digits, however they arrive.

    Floats, numpy scalars, tensors and other real numbers are rounded (``0.1 * 0.003`` shows as
    ``0.0003``), tuples and lists as ``(0.9, 0.999)``, mappings as ``{key: value}``; the rest as ``str``.
    JSON and CSV do not use this: they keep values exact.
    """
    if isinstance(value, (bool, str)) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):  # float, numpy floats, Fraction
        return f"{float(value):.6g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(value_text(v) for v in value) + ")"
    if hasattr(value, "tolist") and not isinstance(value, type):  # tensors and numpy arrays
        return value_text(value.tolist())
    return str(value)


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


def explain_text(entry: ParamEntry) -> str:
    """Every value a rule changed, as the product of its factors: ``lr = 0.001 x 0.1 custom_keys['head']``."""
    parts = [f"{key} = {' '.join(str(f) for f in factors)}" for key, factors in entry.factors.items()
             if any(f.op != "base" for f in factors)]
    return "; ".join(parts) or DEFAULT_RULE


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
    base = ", ".join(f"{k}={value_text(v)}" for k, v in plan.base.items())
    return (
        f"{plan.optimizer}({base}): {plural(len(plan.entries), 'parameter')}, {plural(total, 'element')}, "
        f"{plural(len(plan.groups), 'group')}"
    )


def _filter_note(plan: Plan, shown: int, name_filter: str | None) -> str | None:
    if not name_filter:
        return None
    verb = "contains" if shown == 1 else "contain"
    return f"{shown} of {plural(len(plan.entries), 'parameter')} {verb} {name_filter!r}"


# ----------------------------------------------------------------------------- rich


class _FittedTable:
    """The parameter table, fitted to the console: on one too narrow for it, cells fold and are never cut.

    Left alone, rich narrows the widest columns evenly and ends what does not fit with '…', which cut
    ``custom_keys['backbone']``, the reason for the values, at 80 columns. When the table is too wide
    this tightens it (columns one space apart, option headers such as ``weight_decay`` folded to the
    width of their values) and keeps the rule whole while the name folds, down to a third of the room
    the two share; only below that does the rule fold too.
    """

    def __init__(self, make: Callable[[tuple[int, int] | None], Table], name_width: int, rule_width: int) -> None:
        self.make = make  # (name width, rule width) -> the tight table; None -> the table at ease
        self.name_width = name_width
        self.rule_width = rule_width

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        return Measurement.get(console, options, self.make(None))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table | Text]:
        from rich.measure import Measurement
        from rich.text import Text

        def width(table: Table) -> int:
            return Measurement.get(console, options.update_width(1_000_000), table).maximum

        table = self.make(None)
        if width(table) > options.max_width:
            whole = (self.name_width, self.rule_width)
            room = sum(whole) - max(0, width(self.make(whole)) - options.max_width)
            if room >= 2:  # else nothing fits: rich folds every column (still no '…')
                name = max(room - self.rule_width, min(self.name_width, room // 3), 1)
                yield self.make((name, room - name))
                yield Text()  # the tight table has no edge, so no blank line below it
                return
        yield table


def plan_table(plan: Plan, *, group_by: str = "none", name_filter: str | None = None, explain: bool = False) -> Any:
    """A rich renderable of ``plan``: the parameter table, the group table, the warnings and the notes.

    With ``explain`` the last column shows each changed value as its factors instead of the rule names.

    The result goes straight to ``rich.print`` or ``Console.print``; ``Plan.__rich__`` can return it.
    """
    from rich import box
    from rich.cells import cell_len
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    keys = plan.option_keys()
    groups = plan.group_of()
    sections = select_rows(plan, group_by, name_filter)
    shown = sum(map(len, sections))

    rows: list[tuple[list[Text], bool]] = []  # the cells of a row, and whether it ends a section
    for section in sections:
        for n, i in enumerate(section):
            entry = plan.entries[i]
            values = [
                Text(value_text(plan.value_of(entry, k)),
                     style="bold cyan" if entry.rules.get(k, DEFAULT_RULE) != DEFAULT_RULE else "")
                for k in keys
            ]
            rule = explain_text(entry) if explain else rule_text(entry)
            cells = [Text(entry.name), Text(_shape(entry.shape)), Text(f"{entry.numel:,}"), Text(str(groups[i])),
                     *values, Text(rule, style="dim" if rule == DEFAULT_RULE else "magenta")]
            rows.append((cells, n == len(section) - 1))

    def widest(column: int, header: str) -> int:
        return max([cell_len(header), *(cells[column].cell_len for cells, _ in rows)])

    # tight: an option column as wide as its values or a word of its name (weight_decay: 'weight')
    option_widths = [max([*(cell_len(part) for part in key.split("_")),
                          *(cells[4 + c].cell_len for cells, _ in rows)]) for c, key in enumerate(keys)]

    def make(tight: tuple[int, int] | None) -> Table:
        # no cell is ever cut with '…': where a column is narrower than a cell, the cell folds
        params = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=tight is not None,
                       show_edge=tight is None)
        name_width, rule_width = tight or (None, None)
        params.add_column("name", overflow="fold", width=name_width)
        params.add_column("shape", overflow="fold")
        params.add_column("numel", justify="right", overflow="fold")
        params.add_column("group", justify="right", overflow="fold")
        for key, width in zip(keys, option_widths):
            params.add_column(key, justify="right", overflow="fold", width=width if tight else None)
        params.add_column("rule", overflow="fold", width=rule_width)
        for cells, last in rows:
            params.add_row(*cells, end_section=last)
        return params

    params = _FittedTable(make, widest(0, "name"), widest(-1, "rule"))

    group_table = Table(title="parameter groups", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("group", "params", "numel", *keys):
        group_table.add_column(name, justify="right", overflow="fold")
    for record, spec in zip(plan.group_records(), plan.groups):
        settings = [value_text(spec.hyperparams.get(k, plan.base.get(k))) for k in keys]
        group_table.add_row(str(record["group"]), str(record["params"]), f"{record['numel']:,}", *settings)

    # the summary is a line of its own, not the table's title: titles wrap to the table's width
    parts: list[Any] = [Text(_summary(plan), style="bold"), params]
    note = _filter_note(plan, shown, name_filter)
    if note:
        parts.append(Text(note, style="dim"))
    parts.append(group_table)
    parts += [Text(f"warning: {w}", style="yellow") for w in plan.warnings]
    parts += [Text(f"note: {n}", style="dim") for n in plan.notes]
    return Group(*parts)


# ----------------------------------------------------------------------------- plain text


def plan_text(plan: Plan, *, group_by: str = "none", name_filter: str | None = None, explain: bool = False) -> str:
    """The plan as aligned plain text (``str(plan)``): parameter rows, then groups, warnings and notes.

    With ``explain`` the last column shows each changed value as its factors.
    """
    keys = plan.option_keys()
    groups = plan.group_of()
    header = ["name", "shape", "numel", "group", *keys, "rule"]
    rows: list[list[str]] = []
    for section in select_rows(plan, group_by, name_filter):
        if rows:
            rows.append([])  # a blank line between sections
        for i in section:
            entry = plan.entries[i]
            values = [value_text(plan.value_of(entry, k)) for k in keys]
            why = explain_text(entry) if explain else rule_text(entry)
            rows.append([entry.name, _shape(entry.shape), str(entry.numel), str(groups[i]), *values, why])
    widths = [max(len(r[c]) for r in [header, *rows] if r) for c in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    note = _filter_note(plan, sum(1 for r in rows if r), name_filter)
    if note:
        lines.append(note)
    lines.append("")
    for g in plan.group_records():
        hp = ", ".join(f"{k}={value_text(v)}" for k, v in g["hyperparams"].items())
        lines.append(f"group {g['group']}: {plural(g['params'], 'param')}, {plural(g['numel'], 'element')}, {hp}")
    lines += [f"warning: {w}" for w in plan.warnings]
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


def plan_html(plan: Plan) -> str:
    """The parameter table as HTML, for notebooks (``Plan._repr_html_``)."""
    keys = plan.option_keys()
    header = ["name", "shape", "numel", "group", *keys, "rule", "factors"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for entry, group in zip(plan.entries, plan.group_of()):
        cells = [entry.name, _shape(entry.shape), str(entry.numel), str(group),
                 *(value_text(plan.value_of(entry, k)) for k in keys), rule_text(entry), explain_text(entry)]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    notes = [*(f"warning: {w}" for w in plan.warnings), *(f"note: {n}" for n in plan.notes)]
    after = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{after}"


# ----------------------------------------------------------------------------- JSON and CSV


def json_safe(value: Any) -> Any:
    """Plain JSON values: tuples become lists, tensors lists, non-finite floats the strings 'inf'/'nan'."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "tolist"):  # tensors and numpy values
        return json_safe(value.tolist())
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def plan_json(plan: Plan, *, group_by: str = "none", name_filter: str | None = None) -> dict[str, Any]:
    """The documented JSON form of ``plan`` (see docs/cli.md); ``params`` holds only the selected rows."""
    records = plan.to_records()
    order = [i for section in select_rows(plan, group_by, name_filter) for i in section]
    return json_safe({
        "optimizer": plan.optimizer,
        "base": dict(plan.base),
        "params": [records[i] for i in order],
        "groups": plan.group_records(),
        "warnings": [str(w) for w in plan.warnings],
        "notes": [str(n) for n in plan.notes],
        "frozen": list(plan.frozen),
        "duplicates": [list(pair) for pair in plan.duplicates],
    })


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(json_safe(value))
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
