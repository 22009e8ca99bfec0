"""msport.optim against MindSpore's own optimizers in the same GRAPH_MODE train step, side by side.

    python bench/optim_speed.py [--model resnet18] [--batch-size 32] [--rounds 4] [--steps 3] [--update-only]

Pairs: msport.optim.AdamW (torch's AdamW: bias correction, decoupled decay) against nn.Adam, and
msport.optim.SGD (torch's SGD, what the trainers use) against nn.Momentum. Each optimizer gets its own
copy of the zoo model in a ``TrainOneStepCell``; after compiling all of them, rounds alternate between
them (A, B, A, B...) so a load change on a shared machine hits both, and the median step time of each
is compared. Goal (issue 18): msport's at least 0.95x as fast as MindSpore's (ratio = theirs / ours).
``--update-only`` times the optimizers alone, each called on the same fixed gradients of the model's
parameters (no forward or backward): the part of the step where the two differ, measurable in seconds
on a loaded machine where the whole step takes minutes.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOAL = 0.95


def build_steps(model, batch_size, update_only=False):
    import numpy as np

    import msport.optim as mo
    from msport._mindspore import ms, nn
    from msport.models import create_model

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    makers = {
        "nn.Adam": lambda params: nn.Adam(params, learning_rate=1e-3),
        "msport.optim.AdamW": lambda params: mo.AdamW(params, lr=1e-3, weight_decay=0.01),
        "nn.Momentum": lambda params: nn.Momentum([{"params": params, "weight_decay": 5e-4}], 0.1, 0.9),
        "msport.optim.SGD": lambda params: mo.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4),
    }
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((batch_size, 3, 32, 32), dtype=np.float32))
    y = ms.Tensor(rng.integers(0, 10, batch_size).astype(np.int32))
    steps = {}
    for name, make in makers.items():
        ms.set_seed(0)
        net = create_model(model)
        if update_only:
            optimizer = make(net.trainable_params())
            grads = tuple(ms.Tensor(rng.standard_normal(p.shape).astype(np.float32) * 1e-3)
                          for p in net.trainable_params())
            optimizer(grads)  # compile
            steps[name] = (lambda o, g: lambda: (o(g), o.parameters[-1].asnumpy()))(optimizer, grads)
            continue
        cell = nn.TrainOneStepCell(nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True,
                                                                                         reduction="mean")),
                                   make(net.trainable_params()))
        cell.set_train()
        cell(x, y).asnumpy()  # compile
        steps[name] = (lambda c: lambda: c(x, y).asnumpy())(cell)
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--update-only", action="store_true", help="time the optimizers alone on fixed gradients")
    args = parser.parse_args(argv)
    steps = build_steps(args.model, args.batch_size, args.update_only)
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps)
    median = {name: statistics.median(t) for name, t in times.items()}
    load = os.getloadavg()[0]
    what = "optimizer update alone" if args.update_only else f"batch {args.batch_size}"
    print(f"{args.model}, {what}, GRAPH_MODE, CPU; median of {args.rounds} rounds x {args.steps} "
          f"steps; load average {load:.1f}")
    for name, t in median.items():
        print(f"  {name:<20} {t * 1000:8.1f} ms/step")
    ratios = {"AdamW vs nn.Adam": median["nn.Adam"] / median["msport.optim.AdamW"],
              "SGD vs nn.Momentum": median["nn.Momentum"] / median["msport.optim.SGD"]}
    for name, r in ratios.items():
        print(f"  msport.optim.{name}: {r:.3f}x as fast (goal >= {GOAL})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"median_s": median, "ratios": ratios, "load": load, **vars(args)}, fh, indent=2)
    return 0 if min(ratios.values()) >= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
