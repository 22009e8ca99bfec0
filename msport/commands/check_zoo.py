"""msport check-zoo: build each zoo model on both sides, copy torch's weights over, compare outputs."""

import sys
import time

import numpy as np

from msport.errors import positive_int, tolerance
from msport.tolerances import MODEL_FORWARD_TRAIN_MAX_REL, max_rel

NAME = "check-zoo"
HELP = "check forward parity of every zoo model (torch weights converted to MindSpore)"


def add_arguments(parser):
    parser.add_argument("--models", nargs="+", help="models to check (default: all)")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rtol", type=tolerance, default=MODEL_FORWARD_TRAIN_MAX_REL,
                        help="largest allowed max|torch - ms| / max|torch| per stage, eval and train mode "
                             "(default %(default)g, msport.tolerances.MODEL_FORWARD_TRAIN_MAX_REL)")


def run(args):
    import torch
    from tqdm import tqdm

    import reference_torch
    from msport.convert import load_torch_weights_into_ms
    from msport.errors import UserError
    from msport.models import create_model, list_models

    names = args.models or list_models()
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        raise UserError(f"unknown model {', '.join(unknown)}: choose from {', '.join(list_models())}")
    x = np.random.default_rng(args.seed).standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    print(f"{'model':<13} {'parameters':>12} {'eval max rel':>13} {'train max rel':>14} {'worst stage':>12} "
          f"{'seconds':>8}  verdict", flush=True)
    failures = 0
    # a row per model as it finishes; on a terminal, a bar on stderr says which model is being checked
    bar = tqdm(names, desc=NAME, unit="model", file=sys.stderr, leave=False, dynamic_ncols=True, disable=None)
    for name in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        torch.manual_seed(args.seed)
        torch_model = reference_torch.create_model(name)
        ms_model = create_model(name)
        load_torch_weights_into_ms(ms_model, torch_model.state_dict())
        errors = stage_errors(torch_model, ms_model, x)
        worst_mode = max(errors, key=lambda m: max(errors[m].values()))
        worst_stage = max(errors[worst_mode], key=errors[worst_mode].get)
        ok = all(e <= args.rtol for per_stage in errors.values() for e in per_stage.values())
        failures += not ok
        params = sum(p.numel() for p in torch_model.parameters())
        tqdm.write(f"{name:<13} {params:>12,} {max(errors['eval'].values()):>13.1e} "
                   f"{max(errors['train'].values()):>14.1e} {worst_stage:>12} {time.perf_counter() - start:>8.1f}  "
                   f"{'ok' if ok else 'MISMATCH'}", file=sys.stdout)  # above the bar, not through it
        sys.stdout.flush()
    return 1 if failures else 0


def stage_errors(torch_model, ms_model, x):
    """``{mode: {stage: max_rel}}``: each zoo stage's output, torch against MindSpore, in eval and train mode."""
    import torch

    from msport._mindspore import ms

    errors = {}
    for mode in ("eval", "train"):
        torch_model.train(mode == "train")
        ms_model.set_train(mode == "train")
        with torch.no_grad():
            want = torch_model.stage_outputs(torch.from_numpy(x))
        got = ms_model.stage_outputs(ms.Tensor(x))
        errors[mode] = {s: max_rel(want[s].numpy(), got[s].asnumpy()) for s in want}
    return errors
