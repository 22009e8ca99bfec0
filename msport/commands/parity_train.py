"""msport parity-train: the two trainers' steps side by side, from the same weights and batches."""

import dataclasses
import json

from msport.errors import UserError
from msport.files import atomic_write_text

NAME = "parity-train"
HELP = "train torch and MindSpore in lockstep and compare losses and parameters per step"

#: Goal from the issue: the first 20 losses agree to 1e-3 relative in float32.
LOSS_RTOL = 1e-3
#: A step is flagged only past this multiple of the torch-vs-perturbed-torch noise floor (running max).
CONTROL_FACTOR = 10.0


def add_arguments(parser):
    from msport.training.config import PARITY, add_arguments as add_train_arguments

    add_train_arguments(parser, PARITY)
    parser.add_argument("--steps", type=int, default=20, help="steps to compare (default 20)")
    parser.add_argument("--loss-rtol", type=float, default=LOSS_RTOL,
                        help=f"flag a step whose losses differ by more than this, relative (default {LOSS_RTOL})")
    parser.add_argument("--json", dest="json_file", metavar="FILE", help="also write the table as JSON")


def run(args):
    from msport.training.config import resolve
    from msport.training.data import load_splits
    from msport.training.parity import iter_parity

    if args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    cfg = resolve(args)
    if cfg.init != "torch" or cfg.init_from:
        raise UserError("parity-train starts MindSpore from torch's weights; drop --init / --init-from")
    cfg = dataclasses.replace(cfg, deterministic=True, progress=False)
    train_set, _ = load_splits(cfg)
    print(f"{cfg.model} on {train_set.name}, batch {cfg.batch_size}, SGD momentum {cfg.momentum}, "
          f"weight decay {cfg.weight_decay}, MindSpore {cfg.mode.upper()}_MODE, float32; {args.steps} steps, "
          f"each row printed as its step finishes (the first waits for both models to build and compile)",
          flush=True)
    print(f"{'step':>4} {'lr':>8} {'torch loss':>11} {'ms loss':>11} {'rel diff':>9} {'noise floor':>11} "
          f"{'max param diff':>15} {'(relative)':>10}  worst parameter", flush=True)
    records, flagged, floor, beyond_rtol = [], [], 0.0, 0
    for r in iter_parity(cfg, train_set, args.steps):
        records.append(r)
        floor = max(floor, r.control_loss_rel_diff)
        over_rtol = r.loss_rel_diff > args.loss_rtol
        beyond_rtol += over_rtol
        bad = over_rtol and r.loss_rel_diff > CONTROL_FACTOR * floor
        if bad:
            flagged.append(r.step)
        print(f"{r.step:>4} {r.lr:>8.4g} {r.torch_loss:>11.6f} {r.ms_loss:>11.6f} {r.loss_rel_diff:>9.1e} "
              f"{floor:>11.1e} {r.max_param_diff:>15.2e} {r.max_param_rel_diff:>10.1e}  {r.worst_param}"
              f"{'  <-- beyond rounding noise' if bad else ''}", flush=True)
    worst = max(records, key=lambda r: r.loss_rel_diff)
    print(f"largest loss difference {worst.loss_rel_diff:.1e} relative at step {worst.step}; "
          f"{beyond_rtol} of {len(records)} steps over {args.loss_rtol:g}; torch against itself (weights "
          f"perturbed 1e-7) drifts up to {floor:.1e}; parameters after step 1 differ by at most "
          f"{records[0].max_param_diff:.2e}")
    print("verdict: " + (f"MindSpore departs from torch beyond rounding noise at step(s) {flagged}" if flagged else
                         "MindSpore follows torch within float32 rounding noise"))
    if args.json_file:
        report = {"config": dataclasses.asdict(cfg), "loss_rtol": args.loss_rtol,
                  "steps": [dataclasses.asdict(r) for r in records], "control_factor": CONTROL_FACTOR,
                  "summary": {"flagged_steps": flagged, "steps_over_rtol": beyond_rtol, "noise_floor": floor,
                              "max_loss_rel_diff": worst.loss_rel_diff,
                              "max_param_diff_after_step_1": records[0].max_param_diff}}
        atomic_write_text(args.json_file, json.dumps(report, indent=2))
    return 1 if flagged else 0
