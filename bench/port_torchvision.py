"""Port 21 torchvision classification models with ``msport port`` and compare their logits with torch's.

Each model: random weights (``weights=None``, torch seed 0, no download), eval mode, a batch of 2
inputs of the model's own size (224x224, inception_v3 299x299), ported in this process; the logits'
||ms - torch|| / ||torch|| is judged against ``msport.tolerances.PORT_OUTPUT_NORM_REL`` (max-abs
beside it). A model that cannot be ported is listed with its first unsupported node (and how many
there are).

Random weights alone make a weak test (mobilenet_v2's logits come out ~1e-15 with fresh BatchNorm
statistics, ViT's head starts at zero): msport's parity check itself sets BatchNorm statistics from a
train-mode pass over the example batch and draws all-zero parameters, on a copy, and says so in the
report. The table shows the logits' scale beside the difference, and torch's own float32 logits
against float64 (the rounding floor: where it exceeds 1e-4 relative, so may any float32 port).

    nice python bench/port_torchvision.py                 # all 21 (slow on 2 cores: ~15-25 minutes)
    nice python bench/port_torchvision.py --models resnet18 mobilenet_v2 --size 64
    nice python bench/port_torchvision.py --json runs/port_torchvision.json
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = ("resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "vgg11", "alexnet", "squeezenet1_0",
          "densenet121", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5",
          "efficientnet_b0", "efficientnet_v2_s", "regnet_y_400mf", "googlenet", "inception_v3",
          "convnext_tiny", "vit_b_16", "swin_t", "maxvit_t")
OWN_SIZE = {"inception_v3": 299}
FIXED_SIZE = ("vit_b_16", "maxvit_t", "swin_t")  # their graphs fix the input size


def port_one(name, size):
    import torch

    from msport import resolve
    from msport.port import TraceFailed, UnsupportedModel, port
    from msport.port.parity import prepare_copy

    torch.manual_seed(0)
    model = resolve.torch_model(f"torchvision:{name}").eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    row = {"model": name, "input": f"2x3x{size}x{size}"}
    try:
        result = port(model, x, name=name)
    except UnsupportedModel as exc:
        first = exc.unsupported[0]
        more = f" (+{len(exc.unsupported) - 1} more)" if len(exc.unsupported) > 1 else ""
        row.update(ported=False, note=f"{first.target} at {first.where}{more}")
    except TraceFailed as exc:
        row.update(ported=False, note=str(exc).split(";")[0])
    except Exception as exc:  # noqa: BLE001 - a bench row, not a crash: the table shows what broke
        row.update(ported=False, note=f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    else:
        worst = result.report["worst_output"]
        checked, _notes = prepare_copy(model, (x,), {})  # the copy the report compared
        with torch.no_grad():  # torch against itself in float64: the rounding floor of float32 logits
            logits32 = checked(x).double()
            logits64 = checked.double()(x.double())
            floor = float((logits32 - logits64).norm() / logits64.norm())
        row.update(ported=True, max_abs=worst["max_abs"], ok=result.report["within_tolerance"],
                   rel=worst["norm_rel"], scale=worst["scale"], floor=floor,
                   first_divergence=result.report["first_divergence"])
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def table(rows):
    out = ["| model | input | ported | max abs logits | logits max-abs diff | norm-rel diff | <= 1e-4 | "
           "torch fp32 vs fp64 (norm-rel) | port s | unsupported node |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ported = r.get("ported")
        diff, rel, scale, floor = ((f"{r['max_abs']:.1e}", f"{r['rel']:.1e}", f"{r['scale']:.2g}", f"{r['floor']:.1e}")
                                   if ported else ("-", "-", "-", "-"))
        ok = ("yes" if r["ok"] else "NO") if ported else "-"
        out.append(f"| {r['model']} | {r['input']} | {'yes' if ported else 'no'} | {scale} | {diff} | {rel} | {ok} | "
                   f"{floor} | {r['seconds']} | {r.get('note', '')} |")
    good = sum(1 for r in rows if r.get("ok"))
    out.append("")
    out.append(f"{good} of {len(rows)} ported with logits ||ms - torch|| / ||torch|| <= 1e-4")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="NAME")
    parser.add_argument("--size", type=int, help="input size for every model whose graph allows it "
                                                 "(default: the model's own, 224 or 299)")
    parser.add_argument("--json", help="write the rows as JSON")
    args = parser.parse_args()
    from tqdm import tqdm

    rows = []
    for name in tqdm(args.models, desc="porting", unit="model", file=sys.stderr):
        size = OWN_SIZE.get(name, 224) if args.size is None or name in FIXED_SIZE else args.size
        rows.append(port_one(name, size))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
