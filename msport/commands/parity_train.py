"""msport parity-train: the two trainers' steps side by side, from the same weights and batches.

Any model pair (``--torch/--ms module:callable``, else the zoo's ``--model``), any batches
(``--data module:callable``, the config's ``data`` key, yielding ``(inputs, targets)`` numpy pairs, else the config's data set),
and the config's recipe: optimizer, betas, eps, schedule, label smoothing, gradient clipping.
``--ms-optimizer module:callable`` judges another MindSpore optimizer (called with the MindSpore
model) against the config's torch one: a planted ``nn.AdamWeightDecay`` shows where it parts.
"""

import dataclasses
import json

import numpy as np

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
    parser.add_argument("--torch", dest="torch_spec", metavar="MODULE:CALLABLE",
                        help="your torch model (with --ms) instead of the zoo's --model")
    parser.add_argument("--ms", dest="ms_spec", metavar="MODULE:CALLABLE", help="your MindSpore port of it")
    parser.add_argument("--ms-optimizer", dest="ms_optimizer_spec", metavar="MODULE:CALLABLE",
                        help="judge this MindSpore optimizer (called with the MindSpore model) against the "
                             "config's torch optimizer")


def run(args):
    from msport.training.config import resolve
    from msport.training.data import load_splits
    from msport.training.parity import ParityJudge, iter_parity
    from msport.training.recipe import describe

    if args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    cfg = resolve(args)
    if cfg.init != "torch" or cfg.init_from:
        raise UserError("parity-train starts MindSpore from torch's weights; drop --init / --init-from")
    cfg = dataclasses.replace(cfg, deterministic=True, progress=False)
    options = _user_parts(args, cfg)
    train_set = None if "batches" in options else load_splits(cfg)[0]
    data = train_set.name if train_set is not None else cfg.data
    pair = f"{args.torch_spec} / {args.ms_spec}" if "models" in options else cfg.model
    batch = len(options["batches"][0][1]) if "batches" in options else cfg.batch_size
    print(f"{pair} on {data}, batch {batch}, {describe(cfg)}"
          f"{' (MindSpore: ' + args.ms_optimizer_spec + ')' if args.ms_optimizer_spec else ''}, "
          f"MindSpore {cfg.mode.upper()}_MODE, float32, dropout off; {args.steps} steps, each row printed as its "
          f"step finishes (the first waits for both models to build and compile)", flush=True)
    print(f"{'step':>4} {'lr':>8} {'torch loss':>11} {'ms loss':>11} {'rel diff':>9} {'noise floor':>11} "
          f"{'max param diff':>15} {'(relative)':>10}  worst parameter", flush=True)
    judge = ParityJudge(args.loss_rtol)
    for r in iter_parity(cfg, train_set, args.steps, **options):
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


def _user_parts(args, cfg):
    """The user's model pair, batches and MindSpore optimizer, as :func:`iter_parity` options."""
    from msport import resolve, specs

    options = {}
    if bool(args.torch_spec) != bool(args.ms_spec):
        raise UserError("give --torch and --ms together (or neither, for the zoo's --model)")
    if args.torch_spec:
        options["models"] = (resolve.torch_model(args.torch_spec, option="--torch"),
                             resolve.ms_model(args.ms_spec, init="torch", option="--ms"))
    if ":" in cfg.data:
        batches = []
        for item in specs.call(cfg.data, "--data"):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise UserError(f"--data {cfg.data!r} must yield (inputs, targets) pairs, got a {type(item).__name__}")
            batches.append(tuple(np.asarray(a) for a in item))
            if len(batches) >= args.steps:
                break
        if not batches:
            raise UserError(f"--data {cfg.data!r} yielded no batches")
        options["batches"] = batches
    if args.ms_optimizer_spec:
        build = specs.resolve(args.ms_optimizer_spec, "--ms-optimizer")
        options["ms_optimizer"] = build
    return options
