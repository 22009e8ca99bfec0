"""Port one model per timm family with ``msport port`` and judge every output against torch's.

A family is the timm module that defines a model (``resnet``, ``vision_transformer``, ``efficientnet``...:
``timm.list_modules()``). Its representative is its smallest model of at most 30M parameters: the
family's models are sorted by the size words in their names (atto, pico, nano, tiny, small...), and up
to ``--candidates`` of the first are built on the meta device to count their parameters exactly. Each
runs at its default input size (``pretrained_cfg['input_size']``), batch 2, random weights (no
download); msport's parity check randomises BatchNorm statistics and all-zero parameters on a copy
first. A row passes when every output is within ``msport.tolerances.PORT_OUTPUT_NORM_REL``
(||ms - torch|| / ||torch||); a failure names the op and the source line. Each model ports in its own
process (``--timeout`` seconds), so one that hangs or runs out of memory is a row, not the end.

    nice python bench/port_timm.py                         # every family (hours on 2 cores)
    nice python bench/port_timm.py --families resnet vision_transformer efficientnet
    nice python bench/port_timm.py --every 3 --json runs/port_timm.json   # a third of them
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZE_WORDS = ("atto", "femto", "pico", "nano", "xxs", "xs", "tiny", "mini", "small", "lite", "s", "b0", "050",
              "075", "100", "18", "base", "medium")
MAX_PARAMS = 30_000_000


def _size_rank(name):
    parts = re.split(r"[_.]", name)
    for rank, word in enumerate(SIZE_WORDS):
        if word in parts or any(p.endswith(word) for p in parts if len(word) > 2):
            return rank, len(name)
    return len(SIZE_WORDS), len(name)


def representatives(families=None, candidates=6):
    """``{family: (model name, parameters)}``: the smallest model of at most 30M parameters per family."""
    import timm
    import torch

    chosen = {}
    for family in sorted(families or timm.list_modules()):
        names = sorted(timm.list_models(module=family), key=_size_rank)[:candidates]
        sized = []
        for name in names:
            try:
                with torch.device("meta"):
                    model = timm.create_model(name, pretrained=False)
                sized.append((sum(p.numel() for p in model.parameters()), name))
            except Exception:  # noqa: BLE001 - a model timm itself cannot build is not a candidate
                continue
        small = sorted(s for s in sized if s[0] <= MAX_PARAMS)
        if small:
            chosen[family] = (small[0][1], small[0][0])
    return chosen


def port_one(name):
    """One row: export and port ``name`` at its default input size, every output compared."""
    import timm
    import torch

    from msport.port import TraceFailed, UnsupportedModel, port
    from msport.port.capture import failure_location

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    x = torch.randn((2,) + size, generator=torch.Generator().manual_seed(1))
    row = {"model": name, "input": "2x" + "x".join(map(str, size)),
           "params": sum(p.numel() for p in model.parameters())}
    start = time.perf_counter()
    try:
        result = port(model, x, name=re.sub(r"\W", "_", name))
    except UnsupportedModel as exc:
        first = exc.unsupported[0]
        ops = sorted({u.target for u in exc.unsupported})
        row.update(ported=False, note=f"{', '.join(ops)}: {first.where}"
                                       f"{f' (+{len(exc.unsupported) - 1} nodes)' if len(exc.unsupported) > 1 else ''}")
    except TraceFailed as exc:
        row.update(ported=False, note="export: " + str(exc).split("; torch.export")[0])
    except Exception as exc:  # noqa: BLE001 - a bench row, not a crash: the table shows what broke
        row.update(ported=False, note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} at "
                                      f"{failure_location(exc)}")
    else:
        report = result.report
        worst = report["worst_output"]
        row.update(ported=True, ok=report["within_tolerance"], norm_rel=worst["norm_rel"], max_abs=worst["max_abs"],
                   scale=worst.get("scale"), first_divergence=report["first_divergence"])
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def table(rows, what="timm family"):
    out = [f"| {what} | model | params | input | ported | norm-rel diff | max abs diff | within 1e-4 | s | failure |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ported = r.get("ported")
        rel = f"{r['norm_rel']:.1e}" if ported and r.get("norm_rel") is not None else "-"
        diff = f"{r['max_abs']:.1e}" if ported and r.get("max_abs") is not None else "-"
        ok = ("yes" if r.get("ok") else "NO") if ported else "-"
        params = f"{r['params'] / 1e6:.1f}M" if r.get("params") else "-"
        note = (r.get("note") or "").replace("|", "/")
        out.append(f"| {r.get('family', '')} | {r['model']} | {params} | {r.get('input', '-')} | "
                   f"{'yes' if ported else 'no'} | {rel} | {diff} | {ok} | {r.get('seconds', '-')} | {note} |")
    good = sum(1 for r in rows if r.get("ok"))
    out += ["", f"{good} of {len(rows)} within 1e-4 ({100.0 * good / max(len(rows), 1):.0f}%)"]
    return "\n".join(out)


def run_in_process(port_one, name, timeout):
    """``port_one(name)`` here, stopped by SIGALRM after ``timeout`` s: no interpreter start per row (torch,
    MindSpore and transformers take ~15 s of CPU to import), for sweeps on a loaded machine."""
    import signal

    def stop(_signum, _frame):
        raise TimeoutError(f"timeout after {timeout} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(timeout)
    start = time.perf_counter()
    try:
        return port_one(name)
    except Exception as exc:  # noqa: BLE001 - a bench row, not a crash
        return {"model": name, "ported": False, "note": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                "seconds": round(time.perf_counter() - start, 1)}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_isolated(script, name, timeout):
    """``port_one(name)`` of ``script`` in a fresh process; a crash or a timeout is a row too."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, script, "--one", name], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"model": name, "ported": False, "note": f"timeout after {timeout} s", "seconds": timeout}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"model": name, "ported": False, "note": f"process died (exit {done.returncode}): {tail[:200]}",
            "seconds": round(time.perf_counter() - start, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", help="timm modules to run (default: every one)")
    parser.add_argument("--limit", type=int, help="the first N families only")
    parser.add_argument("--every", type=int, default=1, help="every Nth family, alphabetically: a sample (default 1)")
    parser.add_argument("--candidates", type=int, default=6, help="models sized per family (default 6)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per model (default 900)")
    parser.add_argument("--in-process", action="store_true", help="every model in this process (faster; a crash "
                                                                    "ends the sweep)")
    parser.add_argument("--json", help="write the rows as JSON")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(port_one(args.one)))
        return
    import timm

    families = sorted(args.families or timm.list_modules())[::args.every][:args.limit]
    rows = []
    for family, (name, _params) in representatives(families, args.candidates).items():
        row = (run_in_process(port_one, name, args.timeout) if args.in_process
               else run_isolated(os.path.abspath(__file__), name, args.timeout))
        row["family"] = family
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1)
    print(table(rows))


if __name__ == "__main__":
    main()
