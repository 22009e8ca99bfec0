"""Speed of the diagnosis commands on CIFAR ResNet50 and on a Transformer text classifier, against budgets.

    python bench/diagnose.py [--model resnet50] [--batch-size 8] [--keep DIR] [--only resnet|transformer]

Writes fresh checkpoints into a temporary folder first: a torch ``.pth``
(seed 0), its conversion as a MindSpore *training* checkpoint (``.ckpt`` with
one momentum buffer per parameter, as ``ModelCheckpoint`` saves) and a second,
independent ``.pth`` (seed 1). Then times, each in a fresh process:

* ``msport compare-ckpt`` of .pth vs .ckpt (the conversion check) and of two
  independent .pth files, budget 3 s each;
* ``msport layer-diff --grads --train-mode`` at the given batch (default 8)
  with both checkpoints, budget 60 s.

"in-process" is the command's own work, after Python has started and torch /
MindSpore are imported (what a library call costs); "end-to-end" is the whole
``python -m msport ...`` process. The budgets apply to the in-process time;
end-to-end adds ~1.8 s for each framework the command needs to import (torch
for a .pth, MindSpore for a .ckpt), which no diagnosis can avoid.

Then the user-pair path on ``examples/transformer_classifier.py`` (2 post-norm encoder
layers, d_model 32, 4 heads, vocabulary 100) at sequence length 128, batch
``TRANSFORMER_BATCH``, given as ``--torch``/``--ms``/``--example`` specs:

* ``msport audit`` of fresh models (init of every parameter, every layer's
  attributes and probes on the real token ids), budget 10 s;
* ``msport layer-diff --grads --copy-weights`` (weights copied through the name
  pairing; every layer output, output gradient and parameter gradient), budget 30 s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

BUDGETS = {"compare-ckpt": 3.0, "layer-diff": 60.0, "audit (transformer)": 10.0,
           "layer-diff (transformer)": 30.0}
#: the commands run from the repository root, where examples/ and the spec paths below resolve
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSFORMER_LENGTH = 128
TRANSFORMER_BATCH = 8
EXAMPLE = "examples.transformer_classifier"


def transformer_input():
    """Token ids at the benchmark's sequence length (the ``--example`` spec the commands call)."""
    from examples.transformer_classifier import example_input

    return example_input(batch=TRANSFORMER_BATCH, length=TRANSFORMER_LENGTH)


def write_checkpoints(model, folder):
    """The three checkpoints, written by a child process so this one imports no framework."""
    code = f"""
import numpy as np, torch
import reference_torch
from msport.convert import torch_to_mindspore
from msport.checkpoints import save_ms_checkpoint, save_torch_state
for seed, name in ((0, "a.pth"), (1, "independent.pth")):
    torch.manual_seed(seed)
    state = reference_torch.create_model({model!r}).state_dict()
    save_torch_state({{k: v.numpy() for k, v in state.items()}}, {folder!r} + "/" + name)
    if seed == 0:
        params, _ = torch_to_mindspore(state)
        params.update({{"moments." + k: np.zeros_like(v) for k, v in list(params.items())
                       if not k.endswith(("moving_mean", "moving_variance"))}})
        params["global_step"] = np.array([391], dtype=np.int32)
        save_ms_checkpoint(params, {folder!r} + "/a.ckpt")
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def timed_command(argv):
    """(in-process seconds, end-to-end seconds, exit code, verdict line) of one ``msport`` command.

    Two fresh processes: one imports both frameworks first and times ``main(argv)``
    alone; the other is the plain ``python -m msport ...`` a user runs.
    """
    code = f"""
import json, time
import torch
from msport._mindspore import ms
from msport.cli import main
start = time.perf_counter()
exit_code = main({argv!r})
print(json.dumps({{"seconds": time.perf_counter() - start, "exit_code": exit_code}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"msport {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    measured = json.loads(lines[-1])
    verdict = next((line for line in reversed(lines) if line.startswith("RESULT")), "")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "msport"] + argv, capture_output=True, text=True, cwd=ROOT)
    return measured["seconds"], time.perf_counter() - start, measured["exit_code"], verdict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--keep", metavar="DIR", help="write the checkpoints here and keep them")
    parser.add_argument("--only", choices=("resnet", "transformer"), help="run one half")
    args = parser.parse_args()
    failed = False
    if args.only != "transformer":
        failed |= bench_resnet(args)
    if args.only != "resnet":
        failed |= bench_transformer()
    sys.exit(1 if failed else 0)


def bench_transformer():
    pair = ["--torch", f"{EXAMPLE}:build_torch", "--ms", f"{EXAMPLE}:build_ms",
            "--example", "bench/diagnose.py:transformer_input"]
    runs = [("audit (transformer)", "fresh models", ["audit", *pair]),
            ("layer-diff (transformer)", "--grads --copy-weights", ["layer-diff", *pair, "--grads", "--copy-weights"])]
    print(f"\n{EXAMPLE}, sequence length {TRANSFORMER_LENGTH}, batch {TRANSFORMER_BATCH}")
    return _table(runs)


def _table(runs):
    print(f"{'command':<26}{'case':<26}{'in-process':>11}{'budget':>8}{'':>6}{'end-to-end':>12}  exit  verdict")
    failed = False
    for command, case, argv in runs:
        seconds, end_to_end, exit_code, verdict = timed_command(argv)
        budget = BUDGETS[command]
        ok = seconds <= budget
        failed |= not ok
        print(f"{command:<26}{case:<26}{seconds:>10.2f}s{budget:>7.0f}s{'ok' if ok else 'OVER':>6}"
              f"{end_to_end:>11.2f}s  {exit_code:>4}  {verdict}", flush=True)
    return failed


def bench_resnet(args):
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or temporary
        os.makedirs(folder, exist_ok=True)
        write_checkpoints(args.model, folder)
        sizes = {name: os.path.getsize(os.path.join(folder, name)) / 2**20
                 for name in ("a.pth", "a.ckpt", "independent.pth")}
        print(f"{args.model} checkpoints: " + ", ".join(f"{n} {s:.0f} MiB" for n, s in sizes.items()))
        runs = [
            ("compare-ckpt", "a.pth vs a.ckpt", ["compare-ckpt", f"{folder}/a.pth", f"{folder}/a.ckpt"]),
            ("compare-ckpt", "a.pth vs independent.pth",
             ["compare-ckpt", f"{folder}/a.pth", f"{folder}/independent.pth", "--top", "3"]),
            ("layer-diff", f"batch {args.batch_size}, --grads --train-mode",
             ["layer-diff", "--model", args.model, "--torch-weights", f"{folder}/a.pth",
              "--ms-weights", f"{folder}/a.ckpt", "--grads", "--train-mode", "--batch-size", str(args.batch_size)]),
        ]
        return _table(runs)


if __name__ == "__main__":
    main()
