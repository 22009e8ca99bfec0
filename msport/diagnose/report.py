"""How findings are presented: the result object, the console table, ``--json`` and ``--report DIR``.

Every diagnosis (compare-ckpt, layer-diff, audit) produces a
:class:`DiagnosisResult`: a list of flat records (one per parameter or layer,
in torch naming, each with a ``flagged`` field and a ``reason`` when flagged)
and a summary. This module knows nothing about frameworks; it turns records
into a fixed-width table, a JSON document and a Markdown report with PNG
plots. matplotlib is imported only when a report is written, with the Agg
backend so no display is needed.
"""

import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from msport.errors import UserError, positive_int


@dataclass
class DiagnosisResult:
    """Findings of one diagnosis: ``records`` (dicts), ``summary`` (dict) and free-text ``notes``."""

    command: str
    records: list
    summary: dict
    notes: list = field(default_factory=list)

    @property
    def flagged(self):
        """The records that need attention, in the order they were found."""
        return [r for r in self.records if r.get("flagged")]

    @property
    def exit_code(self):
        return 1 if self.flagged else 0

    def verdict(self):
        """The RESULT line's text (a diagnosis that can be incomplete says so here)."""
        flagged = self.flagged
        return f"{len(flagged)} flagged; first: {flagged[0]['name']}" if flagged else "nothing flagged"

    def to_dict(self):
        return {"command": self.command, "summary": self.summary, "notes": self.notes,
                "records": self.records}


@dataclass(frozen=True)
class Column:
    """One table column: its header, the record key it shows and how to format the value."""

    header: str
    key: str
    fmt: Callable = None  # value -> str; defaults to :func:`format_value`
    left: bool = False  # text reads left-aligned, numbers right-aligned

    def cell(self, record):
        value = record.get(self.key)
        return (self.fmt or format_value)(value)


@dataclass(frozen=True)
class Plot:
    """A per-record line plot for ``--report``: one line per (label, key), records in order."""

    filename: str
    title: str
    ylabel: str
    series: Sequence  # ((label, record key), ...)
    select: Callable = lambda record: True
    log_scale: bool = True
    threshold: Optional[float] = None  # drawn as a dashed line (a tolerance)
    threshold_label: str = "tolerance"
    band: Optional[tuple] = None  # (low, high): the range that passes, shaded
    band_label: str = "passes"

    def render(self, records, directory):
        """Write ``directory/filename``; False (and no file) when no record has a figure for it."""
        return _draw(self, records, directory)


@dataclass(frozen=True)
class Figure:
    """A plot drawn by its own function ``draw(records, path) -> bool`` (False: nothing to draw, no file)."""

    filename: str
    draw: Callable

    def render(self, records, directory):
        return self.draw(records, os.path.join(directory, self.filename))


# --- formatting ---------------------------------------------------------------------------

def format_value(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0.0:
            return "0"
        if 1e-3 <= abs(value) < 1e4:
            return f"{value:.4g}"
        return f"{value:.2e}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "none"
    if isinstance(value, tuple):  # a shape
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value)


def flag_mark(value):
    return "<<" if value else ""


def format_table(records, columns):
    """A fixed-width text table of ``records`` under ``columns`` (str, no trailing newline)."""
    rows = [[c.header for c in columns]] + [[c.cell(r) for c in columns] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]

    def line(row):
        cells = [cell.ljust(width) if column.left else cell.rjust(width)
                 for cell, width, column in zip(row, widths, columns)]
        return "  ".join(cells).rstrip()

    out = [line(rows[0]), "  ".join("-" * w for w in widths).rstrip()]
    out.extend(line(row) for row in rows[1:])
    return "\n".join(out)


def select_rows(records, *, only_flagged=False, top=None, sort_key=None):
    """The records a table shows: optionally only flagged ones, optionally the ``top`` N by ``sort_key``."""
    rows = [r for r in records if r.get("flagged")] if only_flagged else list(records)
    if top is not None:
        if sort_key is not None:
            rows.sort(key=lambda r: _sortable(r.get(sort_key)), reverse=True)
        rows = rows[:top]
    return rows


def _sortable(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("inf")  # rows with no figure (missing key, shape mismatch) sort first
    return value


# --- JSON -----------------------------------------------------------------------------------

def json_ready(value):
    """Plain JSON: tuples become lists, NaN becomes null and +-inf the strings "inf"/"-inf"."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return json_ready(value.item())
    return value


def write_json(result, path):
    _ensure_parent(path)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(json_ready(result.to_dict()), f, indent=1, allow_nan=False)
        f.write("\n")


def _ensure_parent(path):
    folder = os.path.dirname(os.path.abspath(str(path)))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create folder {folder}: {exc.strerror}") from exc


# --- Markdown report with plots -------------------------------------------------------------

def write_report(result, directory, columns, plots=(), title=None):
    """Write ``report.md`` (summary, flagged records, full table, plots) and the PNGs into ``directory``.

    Returns the path of ``report.md``.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create report folder {directory}: {exc.strerror}") from exc
    images = [plot.filename for plot in plots if plot.render(result.records, directory)]
    lines = [f"# {title or 'msport ' + result.command}", ""]
    lines += ["## Summary", ""] + [f"- **{k}**: {format_value(v)}" for k, v in result.summary.items()]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    flagged = result.flagged
    lines += ["", f"## Flagged ({len(flagged)})", ""]
    lines += [_markdown_table(flagged, columns + [Column("reason", "reason")])] if flagged else ["Nothing flagged."]
    for name in images:
        lines += ["", f"![{name}]({name})"]
    lines += ["", f"## All records ({len(result.records)})", "", _markdown_table(result.records, columns), ""]
    path = os.path.join(directory, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def _markdown_table(records, columns):
    def escape(text):
        return text.replace("|", "\\|")  # mean|x| must not split a Markdown cell

    head = "| " + " | ".join(escape(c.header) for c in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(escape(c.cell(r)) for c in columns) + " |" for r in records]
    return "\n".join([head, rule] + body)


def _draw(plot, records, directory):
    """Draw one plot; False (and no file) when no record has a finite figure for it."""
    rows = [r for r in records if plot.select(r)]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, min(0.12 * len(rows), 24.0)), 4.0))
    drawn = False
    for label, key in plot.series:
        values = [_plottable(r.get(key), plot.log_scale) for r in rows]
        if any(v is not None for v in values):
            ax.plot(range(len(rows)), [float("nan") if v is None else v for v in values],
                    marker=".", label=label)
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    if plot.threshold is not None:
        ax.axhline(plot.threshold, color="red", linestyle="--", linewidth=1, label=plot.threshold_label)
    flagged = [i for i, r in enumerate(rows) if r.get("flagged")]
    if plot.log_scale:
        ax.set_yscale("log")
    if plot.band is not None:
        low, high = plot.band
        ax.axhspan(low, high, color="tab:green", alpha=0.15, label=f"{plot.band_label}: [{low:g}, {high:g}]")
        key = plot.series[0][1]
        values = [v for v in (_plottable(r.get(key), plot.log_scale) for r in rows) if v is not None]
        ax.set_ylim(min(values + [low]) / 1.5, max(values + [high]) * 1.5)  # the band is always in view
        marked = [(i, _plottable(rows[i].get(key), plot.log_scale)) for i in flagged]
        marked = [(i, v) for i, v in marked if v is not None]
        if marked:
            ax.scatter(*zip(*marked), color="red", marker="x", s=18, zorder=3, label="flagged")
    if flagged:
        ax.axvline(flagged[0], color="gray", linestyle=":", linewidth=1,
                   label=f"first flagged: {rows[flagged[0]]['name']}")
    step = max(1, len(rows) // 40)
    ax.set_xticks(range(0, len(rows), step))
    ax.set_xticklabels([rows[i]["name"] for i in range(0, len(rows), step)], rotation=90, fontsize=6)
    for label, i in zip(ax.get_xticklabels(), range(0, len(rows), step)):
        if rows[i].get("flagged"):
            label.set_color("red")
    ax.set_xlabel("red names: flagged" if flagged else "")
    ax.set_title(plot.title)
    ax.set_ylabel(plot.ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, plot.filename), dpi=110)
    plt.close(fig)
    return True


def _plottable(value, log_scale):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    if log_scale and value <= 0:
        return None  # an exact zero (identical tensors) has no place on a log axis
    return float(value)




# --- the commands' shared output options ------------------------------------------------------

def add_output_arguments(parser):
    """``--top``, ``--only-diff``, ``--json`` and ``--report``, the same for every diagnosis command."""
    parser.add_argument("--top", type=positive_int, metavar="N",
                        help="show only the N rows that differ most (all records still go to --json)")
    parser.add_argument("--only-diff", "--only-flagged", dest="only_flagged", action="store_true",
                        help="show only flagged rows")
    parser.add_argument("--json", metavar="FILE", help="write every record and the summary as JSON")
    parser.add_argument("--report", metavar="DIR", help="write DIR/report.md with PNG plots")


def check_output_arguments(args, inputs=()):
    """Refuse ``--json``/``--report`` paths before any work: an input file, each other, a folder where a file
    goes (or the reverse), or an existing file msport did not write (a JSON report of msport's may be replaced)."""
    real_inputs = {os.path.realpath(str(p)): str(p) for p in inputs if p and os.path.exists(str(p))}
    outputs = [(flag, str(path)) for flag, path in (("--json", getattr(args, "json", None)),
                                                    ("--report", getattr(args, "report", None))) if path]
    for flag, path in outputs:
        real = os.path.realpath(path)
        if real in real_inputs:
            raise UserError(f"{flag} {path} is also an input; write the {flag[2:]} to another path")
    if len(outputs) == 2 and os.path.realpath(outputs[0][1]) == os.path.realpath(outputs[1][1]):
        raise UserError(f"--json and --report both name {outputs[0][1]}; give them different paths")
    for flag, path in outputs:
        if flag == "--json":
            if os.path.isdir(path):
                raise UserError(f"--json {path} is a folder; give the file to write")
            if os.path.lexists(path) and not _is_msport_report(path):
                raise UserError(f"--json {path} exists and is not a JSON report msport wrote; choose another path")
        elif os.path.lexists(path) and not os.path.isdir(path):
            raise UserError(f"--report {path} exists and is not a folder (--report names a folder for report.md "
                            f"and its plots); choose another path")


def _is_msport_report(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and {"command", "summary", "records"} <= set(data)


def emit(result, args, columns, plots=(), sort_key=None, out=None):
    """Print the table, the flagged reasons and a verdict; write --json/--report; return the exit code."""
    import sys

    out = out or sys.stdout
    for note in result.notes:
        print(f"note: {note}", file=out)
    rows = select_rows(result.records, only_flagged=args.only_flagged, top=args.top, sort_key=sort_key)
    if rows:
        print(format_table(rows, columns), file=out)
    shown = f"{len(rows)} of {len(result.records)} rows shown"
    print(f"\n{shown}; summary:", file=out)
    for key, value in result.summary.items():
        if isinstance(value, (list, tuple)) and len(value) > 8:
            value = ", ".join(map(str, value[:8])) + f", ... ({len(value)} in all)"
        print(f"  {key}: {format_value(value)}", file=out)
    flagged = result.flagged
    for line in findings_lines(flagged):
        print(line, file=out)
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}", file=out)
    if args.report:
        path = write_report(result, args.report, columns, plots)
        print(f"wrote {path}", file=out)
    print(f"RESULT: {result.verdict()}", file=out)
    return result.exit_code


#: Distinct reasons the console shows per kind of finding; every kind is shown, with its counts.
REASONS_PER_KIND = 4


def findings_lines(flagged):
    """The flagged records as console lines: grouped by kind of check (init, weight decay, loss...), each
    kind with its counts, then one line per distinct reason (40 BatchNorm parameters share one cause).
    Every kind gets a heading, so no kind of finding hides behind another's many."""
    kinds = OrderedDict()
    for record in flagged:
        kind = record.get("check") or record.get("kind") or "other"
        kinds.setdefault(kind, OrderedDict()).setdefault(record.get("reason"), []).append(record["name"])
    lines = []
    if len(kinds) > 1:
        lines.append(f"  {len(flagged)} flagged, {len(kinds)} kinds: " +
                     ", ".join(f"{kind} {sum(map(len, reasons.values()))}" for kind, reasons in kinds.items()))
    for kind, reasons in kinds.items():
        count = sum(map(len, reasons.values()))
        lines.append(f"  {kind}: {count} flagged, {len(reasons)} distinct finding{'s' if len(reasons) > 1 else ''}")
        for shown, (reason, names) in enumerate(reasons.items()):
            if shown == REASONS_PER_KIND:
                lines.append(f"    ... {len(reasons) - shown} more distinct {kind} findings (see --json)")
                break
            also = f" (and {len(names) - 1} more: {', '.join(names[1:4])}{', ...' if len(names) > 4 else ''})" \
                if len(names) > 1 else ""
            lines.append(f"    FLAGGED {names[0]}{also}: {reason}")
    return lines


__all__ = ["DiagnosisResult", "Column", "Plot", "Figure", "format_value", "format_table", "select_rows",
           "json_ready", "write_json", "write_report", "flag_mark", "add_output_arguments", "check_output_arguments",
           "emit", "findings_lines"]
