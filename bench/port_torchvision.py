"""Port 21 torchvision classification models with ``msport port`` and compare their logits with torch's.

Each model: random weights (``weights=None``, torch seed 0, no download), eval mode, one input
of the model's own size (224x224, inception_v3 299x299), ported in this process; the logits'
max |torch - MindSpore| is judged against ``msport.tolerances.PORT_LOGITS_MAX_ABS``. A model that
cannot be ported is listed with its first unsupported node (and how many there are).

Random weights alone make a weak test: with fresh BatchNorm statistics (mean 0, variance 1) the
activations of several models vanish through the depth (mobilenet_v2's logits come out ~1e-15, where
any two implementations agree to 1e-4), and torchvision starts ViT's head at zero (logits exactly 0).
So before porting, BatchNorm running statistics are calibrated on 4 other random images (one torch
forward in train mode with a cumulative average), and Linear layers left all-zero get torch's
default draw. The table shows the logits' scale beside the difference, the relative difference, and
torch's own float32 logits against float64 (the rounding floor: where it exceeds 1e-4, so may ours).

    python bench/port_torchvision.py                      # all 21 (slow on 2 cores: ~15-25 minutes)
    python bench/port_torchvision.py --models resnet18 mobilenet_v2 --size 64
    python bench/port_torchvision.py --json runs/port_torchvision.json
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


def calibrate(model, size):
    """BatchNorm running statistics from one batch of random images; all-zero Linear weights redrawn."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.detach().any():
            module.reset_parameters()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, exactly its statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(2)))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def port_one(name, size):
    import torch

    from msport.port import TraceFailed, UnsupportedModel, port
    from msport import resolve
    from msport.tolerances import PORT_LOGITS_MAX_ABS

    torch.manual_seed(0)
    model = resolve.torch_model(f"torchvision:{name}")
    calibrate(model, size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    row = {"model": name, "input": f"1x3x{size}x{size}"}
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
        logits = result.report["logits"]
        import copy

        with torch.no_grad():  # torch against itself in float64: the rounding floor of float32 logits
            logits32 = model(x).double()
            floor = float((logits32 - copy.deepcopy(model).double()(x.double())).abs().max())
            scale = float(logits32.abs().max())
        row.update(ported=True, max_abs=logits["max_abs_diff"], ok=logits["max_abs_diff"] <= PORT_LOGITS_MAX_ABS,
                   rel=logits["rel_diff"], scale=scale, floor=floor, first_divergence=result.report["first_divergence"])
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def table(rows):
    out = ["| model | input | ported | max abs logits | logits max-abs diff | rel diff | <= 1e-4 | "
           "torch fp32 vs fp64 | port s | unsupported node |",
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
    out.append(f"{good} of {len(rows)} ported with logits max-abs diff <= 1e-4")
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
