"""Whole-epoch time of train_torch.py on a GPU beside a plain fp32 eager DataLoader loop, one run.

    python bench/gpu_epoch.py                       # CIFAR-sized random data, ResNet50, on cuda
    python bench/gpu_epoch.py --data-dir ~/cifar10  # the real CIFAR-10 files
    python bench/gpu_epoch.py --device cpu --limit 512 --model resnet10_w16 --epochs 1   # smoke test

On a lent GPU machine, which has torch but not MindSpore (this script never imports MindSpore):
    PYTHONPATH=. python3 -m pytest tests/test_device_loader.py -q && PYTHONPATH=. python3 bench/gpu_epoch.py

Every setting trains through the real ``train_torch.py`` (data, training, evaluation; checkpoints
too, though they are written after the timed part) and reports the second epoch's
``metrics.csv`` seconds, so compilation and cuDNN autotuning stay out of the figure. The
baseline is what pytorch-cifar does: batches built on the CPU by DataLoader workers, copied
to the GPU, fp32 with TF32 off, NCHW, a host sync per step for the running loss.
Goals on one H100 (issue 5): default fp32 within 10% of the bare fp32 step time x steps;
``--precision tf32`` at batch 128 under 8 s; ``--precision bf16`` at batch 512 under 4 s.
"""

import argparse
import contextlib
import csv
import io
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import reference_torch  # noqa: E402
import train_torch  # noqa: E402
from msport.data import ArrayDataset, CIFAR10_CLASSES, load_cifar10, make_torch_loader  # noqa: E402

SETTINGS = [  # (label, batch size, extra train_torch.py flags)
    ("ours fp32 (default)", 128, []),
    ("ours tf32", 128, ["--precision", "tf32"]),
    ("ours bf16", 512, ["--precision", "bf16"]),
    ("ours bf16 + compile", 512, ["--precision", "bf16", "--compile", "default"]),
]


def synthetic_cifar(limit):
    rng = np.random.default_rng(0)
    n_train, n_test = limit or 50_000, (limit or 50_000) // 5
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.int64)
        yield ArrayDataset(images, labels, CIFAR10_CLASSES, f"synthetic/{split}")


def write_dataset(root, data_dir, limit):
    """Real CIFAR-10 if given (truncated to --limit), else random images, in the python format."""
    from msport.data import write_cifar10_python

    if data_dir:
        train, test = load_cifar10(data_dir, "train"), load_cifar10(data_dir, "test")
        if limit:
            train = ArrayDataset(train.images[:limit], train.labels[:limit], train.classes, train.name)
            test = ArrayDataset(test.images[:limit // 5], test.labels[:limit // 5], test.classes, test.name)
    else:
        train, test = synthetic_cifar(limit)
    write_cifar10_python(root, train, test)
    return train, test


def ours(label, batch, flags, args, data_root):
    out = tempfile.mkdtemp(prefix="bench-")
    argv = ["--data", "cifar10", "--data-dir", data_root, "--model", args.model, "--batch-size", str(batch),
            "--epochs", str(args.epochs), "--device", args.device, "--output-dir", out, "--no-progress",
            "--num-workers", str(args.workers), *flags]
    if args.device == "cpu":
        argv = [a for a in argv if a not in ("--precision", "tf32", "bf16", "--compile", "default")]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        code = train_torch.main(argv)
    if code != 0:
        raise SystemExit(f"{label}: train_torch.py failed:\n{log.getvalue()}")
    with open(os.path.join(out, "metrics.csv")) as fh:
        rows = list(csv.DictReader(fh))
    return float(rows[-1]["seconds"])


def plain_loop(args, train, test):
    """pytorch-cifar's loop: CPU-built batches through DataLoader workers, fp32, NCHW, .item() per step."""
    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    model = reference_torch.create_model(args.model).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    train_loader = make_torch_loader(train, 128, train=True, augment=True, seed=0, num_workers=args.workers,
                                     pin_memory=device.type == "cuda")
    test_loader = make_torch_loader(test, 128, train=False, augment=False, seed=0, num_workers=args.workers)
    seconds, bare = [], []
    for epoch in range(args.epochs):
        train_loader.set_epoch(epoch)
        _sync(device)
        start = time.perf_counter()
        model.train()
        loss_sum = 0.0
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
        model.eval()
        with torch.no_grad():
            for x, y in test_loader:
                model(x.to(device)).argmax(1).eq(y.to(device)).sum().item()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    # bare step time: the same model and batch size on one GPU-resident batch, no data, no eval
    x, y = next(iter(train_loader))
    x, y = x.to(device), y.to(device)
    model.train()
    for i in range(args.bare_steps + 3):
        if i == 3:
            _sync(device)
            start = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    _sync(device)
    bare = (time.perf_counter() - start) / args.bare_steps
    return seconds[-1], bare


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data-dir", help="real CIFAR-10 (default: random CIFAR-sized images)")
    parser.add_argument("--limit", type=int, default=0, help="use only this many training images")
    parser.add_argument("--epochs", type=int, default=2, help="the last epoch is reported (default 2)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--bare-steps", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[], help="labels to skip, e.g. 'ours bf16 + compile'")
    args = parser.parse_args()
    data_root = tempfile.mkdtemp(prefix="bench-data-")
    train, test = write_dataset(data_root, args.data_dir, args.limit)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"{args.model} on {name}, {len(train)} train / {len(test)} test images, epoch {args.epochs} of {args.epochs}")
    baseline, bare = plain_loop(args, train, test)
    steps = -(-len(train) // 128)
    print(f"  {'plain fp32 eager DataLoader loop':<34} batch 128  {baseline:7.2f} s/epoch")
    print(f"  {'bare fp32 step x steps (no data)':<34} batch 128  {bare * steps:7.2f} s/epoch "
          f"({bare * 1000:.1f} ms/step)")
    for label, batch, flags in SETTINGS:
        if label in args.skip:
            continue
        seconds = ours(label, batch, flags, args, data_root)
        ratio = f"{seconds / (bare * steps):.2f}x bare" if label.endswith("(default)") else ""
        print(f"  {label:<34} batch {batch:<4} {seconds:7.2f} s/epoch  {baseline / seconds:5.2f}x faster "
              f"than plain  {ratio}")


if __name__ == "__main__":
    main()
