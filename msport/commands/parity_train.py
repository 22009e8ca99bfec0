"""msport parity-train: the two trainers' steps side by side, from the same weights and batches."""

import dataclasses
import json

from msport.errors import UserError
from msport.files import atomic_write_text

NAME = "parity-train"
HELP = "train torch and MindSpore in lockstep and compare losses and parameters per step"

def add_arguments(parser):
    from msport.errors import positive_int, tolerance
    from msport.tolerances import PARITY_LOSS_REL
    from msport.training.config import PARITY, add_arguments as add_train_arguments

    add_train_arguments(parser, PARITY)
    parser.add_argument("--steps", type=positive_int, default=20, help="steps to compare (default 20)")
    parser.add_argument("--loss-rtol", type=tolerance, default=PARITY_LOSS_REL,
                        help=f"flag a step whose losses differ by more than this, relative (default {PARITY_LOSS_REL}, "
                             f"msport.tolerances.PARITY_LOSS_REL)")
    parser.add_argument("--json", dest="json_file", metavar="FILE", help="also write the table as JSON")


def run(args):
    from msport.training.config import resolve
    from msport.training.data import load_splits
    from msport.training.parity import ParityJudge, iter_parity

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
    judge = ParityJudge(args.loss_rtol)
    for r in iter_parity(cfg, train_set, args.steps):
        judged = judge.add(r)
        print(f"{r.step:>4} {r.lr:>8.4g} {r.torch_loss:>11.6f} {r.ms_loss:>11.6f} {r.loss_rel_diff:>9.1e} "
              f"{judged.noise_floor:>11.1e} {r.max_param_diff:>15.2e} {r.max_param_rel_diff:>10.1e}  {r.worst_param}"
              f"{'  <-- beyond rounding noise' if judged.flagged else ''}", flush=True)
    result = judge.result()
    summary = result.summary()
    print(f"largest loss difference {summary['max_loss_rel_diff']:.1e} relative at step "
          f"{summary['max_loss_rel_diff_step']}; {summary['steps_over_rtol']} of {len(result.steps)} steps over "
          f"{args.loss_rtol:g}; torch against itself (weights perturbed 1e-7) drifts up to "
          f"{summary['noise_floor']:.1e}; parameters after step 1 differ by at most "
          f"{summary['max_param_diff_after_step_1']:.2e}")
    print("verdict: " + result.verdict)
    if args.json_file:
        atomic_write_text(args.json_file, json.dumps(dict(config=dataclasses.asdict(cfg), **result.to_dict()), indent=2)
                          + "\n")
    return 0 if result.passed else 1
