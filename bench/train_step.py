"""Training-step throughput of CIFAR ResNet50: MindSpore (GRAPH_MODE) beside torch, one run.

    python bench/train_step.py [--model resnet50] [--batch-size 32] [--steps 5]

Each framework runs in its own process, one after the other on the same
machine, so the MindSpore process gets msport's oneDNN setting and the torch
process its own defaults (as ``train_ms.py`` and ``train_torch.py`` would).
``--no-isa-cap`` shows MindSpore out of the box (slow: ~1 min per step).
Prints images/s of each and the ratio MindSpore / torch.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def measure_mindspore(model, batch_size, steps, warmup, mode):
    import numpy as np
    from msport._mindspore import ms, nn
    from msport.models import create_model

    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE, device_target="CPU")
    net = create_model(model)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9, weight_decay=5e-4)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
    step.set_train()
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((batch_size, 3, 32, 32), dtype=np.float32))
    y = ms.Tensor(rng.integers(0, 10, batch_size).astype(np.int32))
    return _time_steps(lambda: step(x, y).asnumpy(), steps, warmup, batch_size)


def measure_torch(model, batch_size, steps, warmup, mode):
    del mode
    import torch
    import reference_torch

    torch.manual_seed(0)
    net = reference_torch.create_model(model).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (batch_size,))

    def one_step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return _time_steps(one_step, steps, warmup, batch_size)


def _time_steps(step, steps, warmup, batch_size):
    for _ in range(warmup):  # the first MindSpore GRAPH_MODE call compiles the graph
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {"seconds_per_step": seconds, "images_per_second": batch_size / seconds}


def _child(framework, args):
    env = dict(os.environ)
    if framework == "mindspore" and args.no_isa_cap:
        env["ONEDNN_MAX_CPU_ISA"] = "ALL"
    cmd = [sys.executable, __file__, "--child", framework, "--model", args.model,
           "--batch-size", str(args.batch_size), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--mode", args.mode]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", choices=("graph", "pynative"), default="graph", help="MindSpore mode")
    parser.add_argument("--no-isa-cap", action="store_true", help="MindSpore without msport's oneDNN cap")
    parser.add_argument("--child", choices=("mindspore", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure = measure_mindspore if args.child == "mindspore" else measure_torch
        print(json.dumps(measure(args.model, args.batch_size, args.steps, args.warmup, args.mode)))
        return
    results = {fw: _child(fw, args) for fw in ("mindspore", "torch")}
    print(f"{args.model}, batch {args.batch_size}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"MindSpore {args.mode.upper()}_MODE{' without ISA cap' if args.no_isa_cap else ''}")
    for fw, r in results.items():
        print(f"  {fw:<10} {r['images_per_second']:8.1f} img/s  {r['seconds_per_step'] * 1000:8.0f} ms/step")
    ratio = results["mindspore"]["images_per_second"] / results["torch"]["images_per_second"]
    print(f"  ratio MindSpore / torch: {ratio:.2f}x")


if __name__ == "__main__":
    main()
