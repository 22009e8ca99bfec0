"""How fast msport reads and writes checkpoints, against ``cp``, each step a child process, side by side.

    python bench/convert_speed.py [--rounds 3] [--dtype float32] [--before REV] [--keep DIR]

1. ``msport convert`` of a 125M-parameter GPT-2-shaped Hugging Face ``model.safetensors`` (hidden 768,
   12 layers, vocabulary 50257, random weights, written by ``safetensors.torch.save_model``) to a
   MindSpore ``.ckpt`` and to a MindSpore ``.safetensors``, each against ``cp`` of the same file, in
   alternating rounds. Printed: wall-time ratio to ``cp`` (goal <= 3x) and the child's peak RSS
   (``os.wait4``'s ``ru_maxrss``) over the file size (goal <= 1.5x). The whole process counts,
   Python's start-up included.
2. ``msport compare-ckpt`` of the zoo's ResNet50 pair (a ``.pth`` and its ``.ckpt``) as a whole
   process, today's tree against the tree at ``--before`` (a git revision; default: the commit before
   msport.checkpoints), alternating. Goal: under 3 s.

Run it on an idle machine: every figure is a ratio or a time of processes that alternate, so load
from elsewhere falls on both sides, but it still adds noise.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEFORE = "0f2142e"
WORK = tempfile.gettempdir()  # main before msport.checkpoints: convert read through torch.load and ms.load_checkpoint


def child(argv, env=None):
    """(seconds, peak RSS in bytes) of one child process, which must succeed. It runs in the temporary
    folder: ``python -m``/``-c`` put the working folder first on sys.path, before PYTHONPATH's tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=WORK)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024


# The inputs are made in child processes: a child's peak RSS starts from its parent's at fork (Linux carries
# the parent's high-water mark across exec), so this process stays small.
GPT2 = """
import sys, torch
from safetensors.torch import save_model
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024))
save_model(model.to(getattr(torch, sys.argv[2])), sys.argv[1], metadata={"format": "pt"})
print(sum(p.numel() for p in model.parameters()))
"""
RESNET = """
import sys, torch
import reference_torch
from msport.convert import convert_file
from msport.models import create_model
torch.manual_seed(0)
torch.save(reference_torch.create_model("resnet50").state_dict(), sys.argv[1])
convert_file(sys.argv[1], sys.argv[2], model=create_model("resnet50"))
"""


def make(script, *args, tree=REPO):
    return subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": tree}, cwd=WORK).stdout


def bench_convert(folder, rounds, dtype):
    src = os.path.join(folder, "model.safetensors")
    params = int(make(GPT2, src, dtype))
    size = os.path.getsize(src)
    env = {**os.environ, "PYTHONPATH": REPO}
    msport = [sys.executable, "-m", "msport", "convert", src]
    outputs = {"cp": "copy.safetensors", "convert -> .ckpt": "out.ckpt",
               "convert -> MindSpore .safetensors": "out_ms.safetensors"}
    jobs = {"cp": ["cp", src, os.path.join(folder, outputs["cp"])]}
    jobs.update((label, msport + [os.path.join(folder, out)]) for label, out in outputs.items() if label != "cp")
    child(jobs["cp"])  # the file in the page cache for everyone
    times = {k: [] for k in jobs}
    rss = {k: 0 for k in jobs}
    for _ in range(rounds):
        for label, argv in jobs.items():
            if os.path.exists(os.path.join(folder, outputs[label])):  # each writes a new file, as a first run does
                os.remove(os.path.join(folder, outputs[label]))
            seconds, peak = child(argv, env)
            times[label].append(seconds)
            rss[label] = max(rss[label], peak)
    print(f"GPT-2-shaped model.safetensors: {params / 1e6:.0f}M parameters, {dtype}, {size / 1e6:.0f} MB; "
          f"median of {rounds} alternating rounds, whole processes")
    cp = statistics.median(times["cp"])
    for label in jobs:
        median = statistics.median(times[label])
        print(f"  {label:36s} {median:6.2f} s  {median / cp:5.2f}x cp   peak RSS {rss[label] / 1e6:6.0f} MB "
              f"= {rss[label] / size:4.2f}x the file")
    print("  goals: <= 3x cp, peak RSS <= 1.5x the file")


def bench_compare(folder, rounds, before):
    old = os.path.join(folder, "before")
    os.makedirs(old)
    archive = subprocess.run(["git", "-C", REPO, "archive", before], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
    trees = {f"before ({before})": old, "now": REPO}
    argv = {}
    for label, tree in trees.items():  # each tree compares the pair it wrote itself, as its user would
        pth, ckpt = (os.path.join(old if tree == old else folder, f"resnet50.{ext}") for ext in ("pth", "ckpt"))
        make(RESNET, pth, ckpt, tree=tree)
        argv[label] = [sys.executable, "-m", "msport", "compare-ckpt", pth, ckpt]
    times = {k: [] for k in trees}
    for _ in range(rounds):
        for label, tree in trees.items():
            times[label].append(child(argv[label], {**os.environ, "PYTHONPATH": tree})[0])
    print(f"msport compare-ckpt resnet50.pth resnet50.ckpt ({os.path.getsize(pth) / 1e6:.0f} MB each), whole "
          f"process, median of {rounds} alternating rounds:")
    for label, values in times.items():
        print(f"  {label:20s} {statistics.median(values):6.2f} s")
    print("  goal: under 3 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--before", default=BEFORE, help=f"git revision compare-ckpt is timed against ({BEFORE})")
    parser.add_argument("--skip-convert", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep its files (default: a temporary folder)")
    args = parser.parse_args()
    global WORK
    folder = os.path.abspath(args.keep or tempfile.mkdtemp(prefix="msport_convert_speed_"))
    os.makedirs(folder, exist_ok=True)
    WORK = folder
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        if not args.skip_convert:
            bench_convert(folder, args.rounds, args.dtype)
        if not args.skip_compare:
            bench_compare(folder, args.rounds, args.before)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
