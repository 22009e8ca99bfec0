"""Sweep layer-diff over mindcv's ports of torchvision's models: is each verdict right on a real zoo?

    nice python bench/diagnose_mindcv.py [--models resnet18 mobilenet_v2 ...] [--size 224] [--batch 1]
                                         [--markdown FILE] [--json FILE]

For every torchvision model that mindcv 0.3.0 ports (same name, or the aliases in ``ALIASES``): torch
weights drawn at random (``torch.manual_seed(0)``) with every BatchNorm's running statistics and
every constant-initialised tensor randomised too (fresh ones would hide a mix-up), copied into
mindcv's model through msport's pairing; one random batch; ``layer_diff`` in values mode. Prints per
pair: weights copied (all, or how many left unpaired per side), the logits' relative difference, the
verdict, the culprits in isolation and their reasons, the suspects, and the seconds it took. Then
it checks the sweep's goals:

* the verdict agrees with the outputs: ``incomplete`` where parameters are left that a name map would
  have to pair (a bias the twin layer lacks is a setting, not one of them), else
  ``clean`` exactly where the logits agree within ``LAYER_DIFF_EVAL_NORM_REL`` and no paired layer
  differs on torch's input (random weights can shrink a real difference below the logits' tolerance);
* every culprit differs in isolation, and no paired call that differs alone goes unnamed (each is
  a culprit or holds one);
* every culprit of a type the registry knows gets the audit's reason: its reading of the two layers
  (settings, a probe on the same input) finds the difference (``cause_known``).

Needs ``pip install --no-deps mindcv==0.3.0``. 224x224 on a shared 2-core machine is slow: batch 1,
and ``--models`` to pick. Exit status 1 when a goal fails.
"""

import argparse
import json
import sys
import time

import numpy as np

ALIASES = {"mobilenet_v2": "mobilenet_v2_100", "mobilenet_v3_large": "mobilenet_v3_large_100",
           "mobilenet_v3_small": "mobilenet_v3_small_100", "mnasnet0_5": "mnasnet_050", "mnasnet0_75": "mnasnet_075",
           "mnasnet1_0": "mnasnet_100", "mnasnet1_3": "mnasnet_130", "swin_t": "swin_tiny",
           "vit_b_16": "vit_b_16_224", "vit_b_32": "vit_b_32_224", "vit_l_16": "vit_l_16_224",
           "vit_l_32": "vit_l_32_224"}


def pairs():
    """``[(torchvision name, mindcv name)]``: every torchvision classifier mindcv has under a name or alias."""
    import mindcv
    import torchvision

    ours = set(mindcv.list_models())
    theirs = torchvision.models.list_models(module=torchvision.models)
    return [(name, ALIASES.get(name, name)) for name in sorted(theirs) if ALIASES.get(name, name) in ours]


def randomise_constants(module, generator):
    """Every BatchNorm's running statistics, and every tensor that starts constant (BN's 1s and 0s, zero
    biases, ConvNeXt's layer_scale of 1e-6, which makes each block add almost nothing): randomised, so
    no difference hides behind a constant."""
    import torch

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) and layer.running_mean is not None:
                layer.running_mean.normal_(0.0, 0.2, generator=generator)
                layer.running_var.uniform_(0.5, 2.0, generator=generator)
        for tensor in module.parameters():
            if tensor.numel() > 1 and bool(torch.all(tensor == tensor.flatten()[0])):
                if float(tensor.flatten()[0]) == 0.0:
                    tensor.normal_(0.0, 0.2, generator=generator)
                else:
                    tensor.uniform_(0.5, 1.5, generator=generator)


def diagnose(tv_name, mc_name, size, batch):
    import mindcv
    import torch
    import torchvision

    from msport.diagnose.layer_diff import layer_diff
    from msport.diagnose.pairing import copy_torch_weights
    from msport.tolerances import LAYER_DIFF_EVAL_NORM_REL

    torch.manual_seed(0)
    kwargs = {"init_weights": True} if tv_name in ("googlenet", "inception_v3") else {}
    if tv_name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
    torch_model = getattr(torchvision.models, tv_name)(num_classes=10, **kwargs).eval()
    randomise_constants(torch_model, torch.Generator().manual_seed(1))
    ms_model = mindcv.create_model(mc_name, num_classes=10, pretrained=False)
    pairing = copy_torch_weights(torch_model, ms_model)
    side = 299 if tv_name == "inception_v3" else size
    x = np.random.default_rng(0).standard_normal((batch, 3, side, side)).astype(np.float32)
    result = layer_diff(torch_model, ms_model, x, mode="values", pairing=pairing)
    summary = result.summary
    by_name = {r["name"]: r for r in result.records}
    alone = {r["name"]: r.get("alone_rel_diff") for r in result.records if r.get("alone_rel_diff") is not None}
    differing_alone = [n for n, v in alone.items() if v > LAYER_DIFF_EVAL_NORM_REL]
    spans = result.captures["torch"].spans
    culprits = summary["culprits"]

    def explained(name):
        return any(c == name or (spans[name][0] < spans[c][0] and spans[c][1] < spans[name][1]) for c in culprits)

    logits = summary["logits_rel_diff"]
    logits_agree = logits is not None and logits <= LAYER_DIFF_EVAL_NORM_REL
    unpaired = len(pairing.unresolved_torch), len(pairing.unresolved_ms)
    lacking = len(pairing.lacking_torch) + len(pairing.lacking_ms)
    # a port is faithful when its logits agree and no paired layer computes something else on torch's input:
    # at random weights a real difference can shrink below the logits' tolerance on its way down
    faithful = logits_agree and not differing_alone
    expected = "incomplete" if any(unpaired) else ("clean" if faithful else "diverges")
    goals = {
        "verdict agrees": summary["verdict"] == expected,
        "culprits differ alone": all(alone.get(c, 0) > LAYER_DIFF_EVAL_NORM_REL for c in culprits),
        "none unnamed": all(explained(n) for n in differing_alone),
        "reasons given": all(by_name[c].get("cause_known") is not False for c in culprits),
    }
    return {
        "pair": f"{tv_name} / {mc_name}",
        "weights": ("all" if unpaired == (0, 0) else f"{unpaired[0]} torch / {unpaired[1]} MindSpore unpaired")
        + (f" (+{lacking} optional the twin layer lacks)" if lacking else ""),
        "logits": logits,
        "verdict": summary["verdict"],
        "culprits": culprits,
        "reasons": [by_name[c]["reason"] for c in culprits],
        "suspects": summary["suspects"],
        "goals": goals,
    }


def row(found, seconds):
    culprits = "; ".join(found["culprits"][:4]) + (f" (+{len(found['culprits']) - 4})" if len(found["culprits"]) > 4
                                                   else "") or "-"
    reasons = "; ".join(dict.fromkeys(r.split("; differs on")[0] for r in found["reasons"] if r))[:160] or "-"
    logits = "n/a" if found["logits"] is None else f"{found['logits']:.2g}"
    failed = [g for g, ok in found["goals"].items() if not ok]
    return (f"| {found['pair']} | {found['weights']} | {logits} | {found['verdict']} | {culprits} | "
            f"{reasons} | {', '.join(failed) or 'met'} | {seconds:.0f} |")


HEADER = ("| pair (torchvision / mindcv) | weights copied | logits rel. diff | verdict | culprits in isolation | "
          "reason | goals | s |\n| --- | --- | --- | --- | --- | --- | --- | --- |")


def main():
    from msport._mindspore import ms  # noqa: F401 - the oneDNN cap before MindSpore starts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="torchvision names (default: every pair)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--markdown", help="also write the table to this file (row by row, as pairs finish)")
    parser.add_argument("--json", help="also write every pair's findings, reasons in full, to this file")
    args = parser.parse_args()
    known = dict(pairs())
    chosen = args.models or list(known)
    lines, ok, found_all = [HEADER], True, []
    print(HEADER, flush=True)
    for name in chosen:
        if name not in known:
            print(f"| {name} | no mindcv port |", flush=True)
            continue
        start = time.perf_counter()
        try:
            found = diagnose(name, known[name], args.size, args.batch)
        except Exception as exc:  # noqa: BLE001 - report the pair, go on with the sweep
            line = f"| {name} / {known[name]} | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]} |"
            ok = False
        else:
            found["seconds"] = time.perf_counter() - start
            line = row(found, found["seconds"])
            ok &= all(found["goals"].values())
            found_all.append(found)
            for culprit, why in zip(found["culprits"], found["reasons"]):
                print(f"  culprit {culprit}: {why}", file=sys.stderr)
            if found["suspects"]:
                print(f"  suspects: {', '.join(found['suspects'][:8])}", file=sys.stderr)
        lines.append(line)
        print(line, flush=True)
        if args.markdown:  # after every pair: a sweep cut short keeps what it found
            with open(args.markdown, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(found_all, handle, indent=1, default=str)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
