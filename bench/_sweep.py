"""The sweep both port benches share (``bench/port_timm.py``, ``bench/port_transformers.py``): their
flags, the loop over items (each in its own process, or all in this one), the JSON written after every
row, and the table.

Items run in a spread order (every 8th first, then the ones after those...), so a sweep stopped
early (a deadline, a loaded machine) has covered an even sample of the list, not its first letters;
the table lists rows in the list's own order. ``--table FILE`` prints the table of a JSON file a
sweep wrote so far; ``--resume`` continues one. A row is in the file before it starts, so one that
ends the process (in ``--in-process``, a timeout raised inside a C++ callback terminates it) stays a
failure and is not rerun.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

SPREAD = 8


def add_arguments(parser, what, timeout):
    parser.add_argument("--limit", type=int, help=f"the first N {what} only")
    parser.add_argument("--every", type=int, default=1, help=f"every Nth {what}, in list order: a sample (default 1)")
    parser.add_argument("--timeout", type=int, default=timeout, help=f"seconds per row (default {timeout})")
    parser.add_argument("--in-process", action="store_true", help="every row in this process (no interpreter "
                                                                    "start per row; a crash ends the sweep)")
    parser.add_argument("--json", help="write the rows as JSON (after every row)")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --json and run the rest "
                                                                "(a row the sweep process died in stays a failure)")
    parser.add_argument("--shard", metavar="I/N", type=_shard, default=(0, 1),
                        help="the I-th of N even shares of the rows (0-based), for N sweeps side by side, each with "
                             "its own --json; --table reads their files together")
    parser.add_argument("--table", metavar="JSON", nargs="+",
                        help="print the table of rows a sweep (or its shards) wrote to JSON, and stop")
    parser.add_argument("--one", help=argparse.SUPPRESS)


def _shard(text):
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index = count = -1
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N with 0 <= I < N (0/2 and 1/2: two shards)")
    return index, count


def spread(items, stride=SPREAD):
    """``items`` reordered 0, s, 2s, ..., 1, s+1, ...: any prefix is an even sample."""
    return [items[i] for start in range(stride) for i in range(start, len(items), stride)]


def run_in_process(port_one, spec, timeout):
    """``port_one(spec)`` here, stopped by SIGALRM after ``timeout`` s: no interpreter start per row (torch,
    MindSpore and transformers take ~15 s of CPU to import), for sweeps on a loaded machine."""
    def stop(_signum, _frame):
        raise TimeoutError(f"timeout after {timeout} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(timeout)
    start = time.perf_counter()
    try:
        return port_one(spec)
    except Exception as exc:  # noqa: BLE001 - a bench row, not a crash
        return {"ported": False, "note": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                "seconds": round(time.perf_counter() - start, 1)}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_isolated(script, spec, timeout, child_args=()):
    """``port_one(spec)`` of ``script`` in a fresh process (given ``child_args``, the bench's own flags);
    a crash or a timeout is a row too."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, script, "--one", spec, *child_args], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ported": False, "note": f"timeout after {timeout} s", "seconds": timeout}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"ported": False, "note": f"process died (exit {done.returncode}): {tail[:200]}",
            "seconds": round(time.perf_counter() - start, 1)}


def float32_floor(model, args, kwargs):
    """torch's own float32 rounding on the copy the port's check runs (the same BatchNorm statistics and
    drawn parameters): the worst norm-relative difference of its float32 outputs from float64 ones. A
    port whose difference is below it is as close to torch as torch's own float32 is to exact."""
    import copy

    import torch
    from torch.utils._pytree import tree_leaves, tree_map

    from msport.port.parity import prepare_copy
    from msport.tolerances import norm_rel

    checked, _notes = prepare_copy(model, args, kwargs)

    def floating(v):
        return isinstance(v, torch.Tensor) and v.is_floating_point()

    wide = tree_map(lambda v: v.double() if floating(v) else v, (args, kwargs))
    with torch.no_grad():
        single = [v for v in tree_leaves(checked(*args, **kwargs)) if floating(v)]
        double = [v for v in tree_leaves(copy.deepcopy(checked).double()(*wide[0], **wide[1])) if floating(v)]
    rel = [norm_rel(b.numpy(), a.double().numpy()) for a, b in zip(single, double)
           if a.shape == b.shape and torch.linalg.norm(b) > 0]
    return max(rel) if rel else None


def _below_floor(r):
    """Whether a row outside 1e-4 is within torch's own float32 rounding on the copy checked."""
    return (bool(r.get("ported")) and not r.get("ok") and r.get("floor") is not None
            and r.get("norm_rel") is not None and r["norm_rel"] <= r["floor"])


def _failure(r):
    """The failure column: the bench's note, and for a port outside 1e-4 torch's own float32 floor beside it."""
    note = (r.get("note") or "").replace("|", "/").replace("\n", " ")
    if r.get("ported") and not r.get("ok") and r.get("floor") is not None:
        below = " (the port is below it)" if _below_floor(r) else ""
        note = (note + "; " if note else "") + f"torch's own float32 vs float64: {r['floor']:.1e}{below}"
    return note


def table(rows, what):
    out = [f"| {what} | model | params | input | ported | norm-rel diff | max abs diff | within 1e-4 | s | failure |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ported = r.get("ported")
        rel = f"{r['norm_rel']:.1e}" if ported and r.get("norm_rel") is not None else "-"
        diff = f"{r['max_abs']:.1e}" if ported and r.get("max_abs") is not None else "-"
        ok = ("yes" if r.get("ok") else "NO") if ported else "-"
        params = f"{r['params'] / 1e6:.1f}M" if r.get("params") else "-"
        note = _failure(r)
        out.append(f"| {r.get('family', '')} | {r['model']} | {params} | {r.get('input', '-')} | "
                   f"{'yes' if ported else 'no'} | {rel} | {diff} | {ok} | {r.get('seconds', '-')} | {note} |")
    counted = [r for r in rows if not r.get("skip")]
    good = sum(1 for r in counted if r.get("ok"))
    skipped = f"; {len(rows) - len(counted)} rows outside the sweep's scope not counted" if len(counted) < len(rows) else ""
    floor = sum(1 for r in counted if _below_floor(r))
    floor = f"; {floor} of the failures are below torch's own float32 rounding there" if floor else ""
    out += ["", f"{good} of {len(counted)} within 1e-4 ({100.0 * good / max(len(counted), 1):.0f}%){skipped}"
                f"{timeouts(counted)}{floor}"]
    return "\n".join(out)


def _row(spec, row, defaults):
    row["spec"] = spec
    for key, value in (defaults(spec) if defaults else {"model": spec}).items():
        row.setdefault(key, value)
    return row


def _write(path, rows):
    if path:
        with open(path, "w") as fh:
            json.dump(rows, fh, indent=1)


def timeouts(rows):
    """``; N of the M counted timed out`` (a row stopped by the clock shows no op failure: on a loaded machine it
    says more about the load than about the port), or nothing."""
    n = sum(1 for r in rows if "timeout after" in (r.get("note") or ""))
    return f"; {n} of the {len(rows)} counted timed out" if n else ""


def main(args, script, specs, port_one, what, summary=None, defaults=None, child_args=()):
    """Run ``port_one`` over ``specs`` (strings) as the flags say; print the table (and ``summary(rows)``).
    ``defaults(spec)``: fields a row that timed out or crashed still shows (its family, its model);
    ``child_args``: the bench's own flags a row in its own process needs."""
    if args.one:
        print(json.dumps(port_one(args.one)))
        return
    missing = [path for path in args.table or () if not os.path.isfile(path)]
    problem = (f"--table {missing[0]}: no such file; give the --json file a sweep wrote"
               if missing else
               "--resume continues the rows of --json FILE: give it" if args.resume and not args.json else None)
    if problem:
        print(f"{os.path.basename(script)}: error: {problem}", file=sys.stderr)
        sys.exit(2)
    if args.table:
        rows = []
        for path in args.table:
            with open(path) as fh:
                rows += json.load(fh)
        order = {spec: k for k, spec in enumerate(specs)}
        rows.sort(key=lambda r: order.get(r.get("spec"), len(order)))
    else:
        chosen = specs[::args.every][:args.limit]
        rows = []
        if args.resume and args.json and os.path.exists(args.json):
            with open(args.json) as fh:
                rows = [r for r in json.load(fh) if r.get("spec") in chosen]
        done = {r["spec"] for r in rows}
        index, count = args.shard
        for spec in spread(chosen)[index::count]:
            if spec in done:
                continue
            # written first: a crash that ends the process (a timeout raised inside a C++ callback) leaves a row
            _write(args.json, rows + [_row(spec, {"ported": False, "note": "the sweep process died in this row"},
                                           defaults)])
            row = _row(spec, run_in_process(port_one, spec, args.timeout) if args.in_process
                       else run_isolated(script, spec, args.timeout, child_args), defaults)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            _write(args.json, rows)
        rows.sort(key=lambda r: chosen.index(r["spec"]))
    print(table(rows, what))
    if summary is not None:
        print(summary(rows))


__all__ = ["add_arguments", "main", "run_in_process", "run_isolated", "spread", "table", "timeouts"]
