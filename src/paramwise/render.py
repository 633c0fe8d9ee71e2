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
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from paramwise.plan.rules import DEFAULT_RULE, ParamEntry
from paramwise.suggestions import plural

if TYPE_CHECKING:  # rich stays optional: imported for real only where a table is drawn
    from rich.console import Console, ConsoleOptions
    from rich.measure import Measurement
    from rich.segment import Segment
    from rich.table import Table
    from rich.text import Text

    from paramwise.plan.plan import Plan  # plan imports this module to show itself: no import back at run time

__all__ = [
    "NAME_BREAKS",
    "RULE_BREAKS",
    "explain_text",
    "fold_words",
    "json_safe",
    "SECTION_CHOICES",
    "plan_csv",
    "plan_html",
    "plan_json",
    "plan_table",
    "plan_text",
    "plural",
    "route_text",
    "rule_text",
    "select_rows",
    "unpadded",
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


def route_text(plan: Plan, entry: ParamEntry) -> str:
    """The optimizer a parameter goes to: its type, with the route's name where that differs (``attn (Muon)``)."""
    kind = plan.route_names().get(entry.route, entry.route)
    return kind if entry.route in (kind, "main") else f"{entry.route} ({kind})"


def _route_columns(plan: Plan, reason: bool = False) -> list[str]:
    """The route columns of a plan with routes: the optimizer (and the reason for HTML); none without routes."""
    if not plan.routes:
        return []
    return ["optimizer", "route reason"] if reason else ["optimizer"]


def _route_cells(plan: Plan, entry: ParamEntry, reason: bool = False) -> list[str]:
    if not plan.routes:
        return []
    return [route_text(plan, entry), entry.route_reason] if reason else [route_text(plan, entry)]


def _explained(plan: Plan, entry: ParamEntry) -> str:
    """``explain_text``, led by why the parameter went to its optimizer where the plan has routes (the
    rule column wraps, so the reason goes there rather than into a column of its own)."""
    text = explain_text(entry)
    if not plan.routes or not entry.route_reason:
        return text
    return f"{route_text(plan, entry)}: {entry.route_reason}" + ("" if text == DEFAULT_RULE else f"; {text}")


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
    for route in plan.routes:  # the other optimizers, in the order of the composite's children
        args = ", ".join(f"{k}={value_text(v)}" for k, v in route.spec.kwargs.items())
        name = "" if route.name == route.spec.type_name else f"{route.name}: "
        base += f") + {name}{route.spec.type_name}({args}"
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


#: Where a parameter name may break: after a dot, then after an underscore (never inside a word).
NAME_BREAKS = "._"
#: Where a rule text may break: after a space, then after ``[``, a dot or an underscore.
RULE_BREAKS = (" ", "[", ".", "_")
#: The rule column narrows to ``RULE_ROOM`` cells, then ``RULE_LEAST`` before names break after dots,
#: and to ``RULE_MIN`` before they break after underscores (``_share``).
RULE_ROOM = 24
RULE_LEAST = 12
RULE_MIN = 6


def _tokens(text: str, width: int, breaks: Sequence[str]) -> list[str]:
    """``text`` cut after each separator of the first kind; a piece wider than ``width`` is cut at the next kind."""
    if len(text) <= width:
        return [text]
    if not breaks:  # one word wider than the column: only here does a cut fall inside a word
        return [text[i:i + width] for i in range(0, len(text), width)]
    pieces = re.split(f"(?<={re.escape(breaks[0])})", text)
    return [t for piece in pieces if piece for t in _tokens(piece, width, breaks[1:])]


def fold_words(text: str, width: int, breaks: Sequence[str] = NAME_BREAKS) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken only after a character of ``breaks``.

    The kinds are tried in order (``'._'``: dots first, then underscores), so
    ``backbone.absolute_pos_embed`` breaks after ``backbone.`` and never inside ``embed``; only a run
    with no break in it that is wider than ``width`` is cut. Joined, the lines give ``text`` back, less
    the spaces at the ends of the lines.
    """
    width = max(width, 1)
    lines: list[str] = []
    line = ""
    for token in _tokens(text, width, breaks):
        if line and len((line + token).rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line = line + token if line else token.lstrip()  # a line never starts with the space it broke at
    if line.rstrip() or not lines:
        lines.append(line.rstrip())
    return lines


def _folded(text: Text, width: int | None, breaks: Sequence[str]) -> Text:
    """``text`` with line breaks where ``fold_words`` puts them, styles kept; unchanged without a width."""
    if width is None or text.cell_len <= width:
        return text
    from rich.text import Text

    return Text("\n".join(fold_words(text.plain, width, breaks)), style=text.style)


def _share(room: int, name: int, rule: int, name_word: int, name_piece: int) -> tuple[int, int]:
    """The widths of the name and rule columns in ``room`` cells: the rule narrows first, then names break.

    ``name`` and ``rule`` are the widest cells; ``name_word`` the widest part of a name between dots,
    ``name_piece`` between dots and underscores. Each step keeps names more whole than the next: whole
    while the rule keeps ``RULE_ROOM``, then ``RULE_LEAST`` cells; broken after dots only; broken after
    underscores too. Whatever room is left over goes to the names.
    """
    if name + rule <= room:
        return name, rule
    steps = ((name, RULE_ROOM), (name, RULE_LEAST), (name_word, RULE_LEAST), (name_word, RULE_MIN),
             (name_piece, RULE_MIN))
    floor = min(rule, RULE_MIN)
    for need, least in steps:
        if room - min(rule, least) >= min(name, need):
            floor = min(rule, least)
            break
    width = max(min(name, room - floor), 1)
    return width, max(room - width, 1)


class _FittedTable:
    """The parameter table, fitted to the console: where it is too wide, the rule wraps before names break.

    Left alone, rich narrows the widest columns evenly and cuts names mid-word
    (``backbone.absolute_pos_e|mbed`` at 110 columns). When the table is too wide this tightens it
    (columns one space apart, option headers such as ``weight_decay`` broken after the underscore),
    narrows the rule column first (it wraps at spaces, brackets and dots), and breaks names only after
    a dot (then an underscore) when the rule has no more room to give (``_share``).
    """

    def __init__(self, make: Callable[[tuple[int, int] | None], Table], name_width: int, rule_width: int,
                 names: Sequence[str]) -> None:
        self.make = make  # (name width, rule width) -> the tight table; None -> the table at ease
        self.name_width = name_width
        self.rule_width = rule_width
        # the widest part of a name that ends at a dot (with it), and at a dot or an underscore
        self.name_word = max([1, *(len(p) for n in names for p in re.split(r"(?<=\.)", n))])
        self.name_piece = max([1, *(len(p) for n in names for p in re.split(r"(?<=[._])", n))])

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
            if room >= 2:  # else nothing fits: rich folds every column
                yield self.make(_share(room, *whole, self.name_word, self.name_piece))
                yield Text()  # the tight table has no edge, so no blank line below it
                return
        yield table


class _Unpadded:
    """A renderable drawn as ``inner`` is, less the spaces that pad each line to the width."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        return Measurement.get(console, options, self.inner)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        from rich.segment import Segment

        for line in console.render_lines(self.inner, options, pad=False, new_lines=False):
            segments = list(line)
            while segments and not segments[-1].control and not segments[-1].text.rstrip(" "):
                segments.pop()
            if segments and not segments[-1].control:
                last = segments.pop()
                segments.append(Segment(last.text.rstrip(" "), last.style))
            yield from segments
            yield Segment.line()


def unpadded(renderable: Any) -> Any:
    """``renderable`` with no spaces at the ends of its lines: tables pad every row to their width,
    which a pipe or a file does not need (audit lines of 400 characters, mostly spaces)."""
    return _Unpadded(renderable)


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
            rule = _explained(plan, entry) if explain else rule_text(entry)
            cells = [Text(entry.name), Text(_shape(entry.shape)), Text(f"{entry.numel:,}"), Text(str(groups[i])),
                     *(Text(c, style="green") for c in _route_cells(plan, entry)),
                     *values, Text(rule, style="dim" if rule == DEFAULT_RULE else "magenta")]
            rows.append((cells, n == len(section) - 1))

    def widest(column: int, header: str) -> int:
        return max([cell_len(header), *(cells[column].cell_len for cells, _ in rows)])

    # tight: an option column as wide as its values or a word of its name (weight_decay: 'weight_')
    route_columns = _route_columns(plan)
    first_option = 4 + len(route_columns)
    option_widths = [max([*map(len, re.split("(?<=_)", key)),
                          *(cells[first_option + c].cell_len for cells, _ in rows)]) for c, key in enumerate(keys)]

    def make(tight: tuple[int, int] | None) -> Table:
        # cells are broken between words (fold_words) before rich sees them; fold is the last resort
        params = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=tight is not None,
                       show_edge=tight is None)
        name_width, rule_width = tight or (None, None)
        params.add_column("name", overflow="fold", width=name_width)
        params.add_column("shape", overflow="fold")
        params.add_column("numel", justify="right", overflow="fold")
        params.add_column("group", justify="right", overflow="fold")
        for column in route_columns:
            params.add_column(column, overflow="fold")
        for key, width in zip(keys, option_widths):
            header = "\n".join(fold_words(key, width, "_")) if tight else key
            params.add_column(header, justify="right", overflow="fold", width=width if tight else None)
        params.add_column("rule", overflow="fold", width=rule_width)
        for cells, last in rows:
            name, *middle, rule = cells
            params.add_row(_folded(name, name_width, NAME_BREAKS), *middle, _folded(rule, rule_width, RULE_BREAKS),
                           end_section=last)
        return params

    params = _FittedTable(make, widest(0, "name"), widest(-1, "rule"), [cells[0].plain for cells, _ in rows])

    group_table = Table(title="parameter groups", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("group", "params", "numel", *route_columns[:1], *keys):
        group_table.add_column(name, justify="right", overflow="fold")
    for record, spec in zip(plan.group_records(), plan.groups):
        first = plan.entries[spec.members[0]]
        settings = [value_text(plan.value_of(first, k) if k not in spec.hyperparams else spec.hyperparams[k])
                    for k in keys]
        group_table.add_row(str(record["group"]), str(record["params"]), f"{record['numel']:,}",
                            *_route_cells(plan, first), *settings)

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
    header = ["name", "shape", "numel", "group", *_route_columns(plan), *keys, "rule"]
    rows: list[list[str]] = []
    for section in select_rows(plan, group_by, name_filter):
        if rows:
            rows.append([])  # a blank line between sections
        for i in section:
            entry = plan.entries[i]
            values = [value_text(plan.value_of(entry, k)) for k in keys]
            why = _explained(plan, entry) if explain else rule_text(entry)
            rows.append([entry.name, _shape(entry.shape), str(entry.numel), str(groups[i]),
                         *_route_cells(plan, entry), *values, why])
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
    header = ["name", "shape", "numel", "group", *_route_columns(plan, True), *keys, "rule", "factors"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for entry, group in zip(plan.entries, plan.group_of()):
        cells = [entry.name, _shape(entry.shape), str(entry.numel), str(group), *_route_cells(plan, entry, True),
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
        **({"routes": plan.route_names()} if plan.routes else {}),
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
    if plan.routes:
        columns += ["route", "optimizer", "route_reason"]
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
