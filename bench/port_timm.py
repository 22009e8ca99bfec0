"""Port one model per timm family with ``msport port`` and judge every output against torch's.

A family is the timm module that defines a model (``resnet``, ``vision_transformer``, ``efficientnet``...:
``timm.list_modules()``). Its representative is its smallest model of at most 30M parameters: the
family's models are sorted by the size words in their names (atto, pico, nano, tiny, small...), and up
to ``--candidates`` of the first are built on the meta device to count their parameters exactly. Each
runs at its default input size (``pretrained_cfg['input_size']``), batch 2, random weights (no
download); msport's parity check randomises BatchNorm statistics and all-zero parameters on a copy
first. A row passes when every output is within ``msport.tolerances.PORT_OUTPUT_NORM_REL``
(||ms - torch|| / ||torch||); a failure names the op and the source line. Each model ports in its own
process (``--timeout`` seconds), so one that hangs or runs out of memory is a row, not the end; the
representative is chosen inside the row, so the first row starts at once.

    nice python bench/port_timm.py                         # every family (hours on 2 cores)
    nice python bench/port_timm.py --families resnet vision_transformer efficientnet
    nice python bench/port_timm.py --every 3 --json runs/port_timm.json   # a third of them
    python bench/port_timm.py --table runs/port_timm.json                 # the table of a sweep so far
"""

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _sweep  # noqa: E402 - the flags, loop and table both port benches share

SIZE_WORDS = ("atto", "femto", "pico", "nano", "xxs", "xs", "tiny", "mini", "small", "lite", "s", "b0", "050",
              "075", "100", "18", "base", "medium")
MAX_PARAMS = 30_000_000
CANDIDATES = 6  # --candidates: models sized per family


def _size_rank(name):
    parts = re.split(r"[_.]", name)
    for rank, word in enumerate(SIZE_WORDS):
        if word in parts or any(p.endswith(word) for p in parts if len(word) > 2):
            return rank, len(name)
    return len(SIZE_WORDS), len(name)


def representative(family, candidates=6):
    """``(model name, parameters)``: the family's smallest model of at most 30M parameters, or ``None``."""
    import timm
    import torch

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
    return (small[0][1], small[0][0]) if small else None


def port_family(spec):
    """One row: the family's representative (``family`` or ``family:model``) ported, every output compared."""
    family, _, name = spec.partition(":")
    if not name:
        chosen = representative(family, CANDIDATES)
        if chosen is None:
            return {"family": family, "model": "-", "ported": False, "skip": True,
                    "note": "no model of at most 30M parameters"}
        name = chosen[0]
    row = port_one(name)
    row["family"] = family
    return row


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
        if not row["ok"]:
            row["floor"] = _sweep.float32_floor(model, (x,), {})
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def main():
    global CANDIDATES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", help="timm modules to run (default: every one); "
                                                      "family:model fixes the model")
    parser.add_argument("--candidates", type=int, default=CANDIDATES, help=f"models sized per family "
                                                                          f"(default {CANDIDATES})")
    _sweep.add_arguments(parser, "families", timeout=900)
    args = parser.parse_args()
    CANDIDATES = args.candidates
    families = args.families
    if not (families or args.one or args.table):
        import timm

        families = sorted(timm.list_modules())
    _sweep.main(args, os.path.abspath(__file__), families or [], port_family, "timm family",
                defaults=lambda spec: {"family": spec.partition(":")[0], "model": spec.partition(":")[2] or "-"},
                child_args=("--candidates", str(CANDIDATES)))


if __name__ == "__main__":
    main()
