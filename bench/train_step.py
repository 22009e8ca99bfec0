"""Training-step throughput of a zoo model: MindSpore beside torch, alternating processes, best window.

    python bench/train_step.py [--model resnet18] [--batch-size 16] [--steps 6] [--window 4] [--rounds 3]
    python bench/train_step.py --ms-config "" --ms-config "jit_level=O1" --ms-config "ONEDNN_MAX_CPU_ISA=AVX2_VNNI"

Each arm (torch, and one MindSpore arm per ``--ms-config``) runs in its own
process, as ``train_ms.py`` and ``train_torch.py`` would: the MindSpore
process gets msport's CPU setup (msport/_mindspore.py), the torch process its
own defaults. The arms take turns for ``--rounds`` rounds, so a burst of load
from other processes on a shared machine hits them alike, and each arm's figure
is its best window of ``--window`` consecutive steps over all rounds (the
least disturbed stretch). ``uptime``'s load is printed before and after: on a
busy machine compare ratios from one run, never figures from different runs.

A ``--ms-config`` is space-separated KEY=VALUE items: UPPERCASE keys are
environment variables of that process (``ONEDNN_MAX_CPU_ISA=AVX512_CORE``,
``ONEDNN_MAX_CPU_ISA=ALL`` for MindSpore without msport's cap; the user's
variable wins over msport's choice), lowercase keys are MindSpore settings made
before the model is built: ``jit_level=O0|O1|O2``, ``graph_kernel=1``
(``enable_graph_kernel``), ``threads=N`` (CPU kernel threads),
``affinity=1`` (``mindspore.runtime.set_cpu_affinity(True)``),
``dispatch=N`` (``mindspore.runtime.dispatch_threads_num``). ``""`` is
msport's own choice.
"""

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = ("jit_level", "graph_kernel", "threads", "affinity", "dispatch")
#: --clock: wall time, or the process's CPU time (all threads), which with --threads 1 is the work a
#: step does however busy the machine is (the wall clock also counts waiting for a core).
CLOCKS = {"wall": "step_seconds", "cpu": "step_cpu_seconds"}


def parse_config(spec):
    """``"A=1 b=2"`` -> (environment dict, settings dict); lowercase keys must be known settings."""
    env, settings = {}, {}
    for item in spec.split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--ms-config item {item!r}: write KEY=VALUE")
        if key.isupper():
            env[key] = value
        elif key in SETTINGS:
            settings[key] = value
        else:
            raise SystemExit(f"--ms-config: unknown setting {key!r}; choose from {', '.join(SETTINGS)}")
    return env, settings


def apply_ms_settings(ms, settings):
    """MindSpore settings of one arm, applied before the model is built."""
    if "jit_level" in settings:
        ms.set_context(jit_config={"jit_level": settings["jit_level"]})
    if settings.get("graph_kernel") == "1":
        ms.set_context(enable_graph_kernel=True)
    if "threads" in settings:
        ms.device_context.cpu.op_tuning.threads_num(int(settings["threads"]))
    if settings.get("affinity") == "1":
        ms.runtime.set_cpu_affinity(True)
    if "dispatch" in settings:
        ms.runtime.dispatch_threads_num(int(settings["dispatch"]))


def measure_mindspore(args, settings):
    import numpy as np

    from msport import _mindspore
    from msport._mindspore import ms, nn
    from msport.models import create_model

    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE, device_target="CPU")
    apply_ms_settings(ms, dict({"threads": args.threads} if args.threads else {}, **settings))
    net = create_model(args.model)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.1, momentum=0.9, weight_decay=5e-4)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
    step.set_train()
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((args.batch_size, 3, 32, 32), dtype=np.float32))
    y = ms.Tensor(rng.integers(0, 10, args.batch_size).astype(np.int32))
    return dict(_time_steps(lambda: step(x, y).asnumpy(), args), cpu_setup=_mindspore.CPU_SETUP)


def measure_torch(args, settings):
    del settings
    import torch

    import reference_torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = reference_torch.create_model(args.model).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch_size, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))

    def one_step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return _time_steps(one_step, args)


def _time_steps(step, args):
    for _ in range(args.warmup):  # the first MindSpore GRAPH_MODE call compiles the graph
        step()
    wall, cpu = [], []
    for _ in range(args.steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"step_seconds": wall, "step_cpu_seconds": cpu}


def best_window(times, window):
    """The lowest mean over ``window`` consecutive steps (all of them if fewer)."""
    window = min(window, len(times))
    return min(sum(times[i:i + window]) / window for i in range(len(times) - window + 1))


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _child(arm, spec, args):
    env = dict(os.environ)
    env.update(parse_config(spec)[0])
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    cmd = [sys.executable, __file__, "--child", arm, "--config", spec, "--model", args.model,
           "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--mode", args.mode, "--threads", str(args.threads or 0)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:  # an option this MindSpore or this CPU refuses: say so, measure the others
        errors = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
        print(f"  {arm} {spec!r} failed: {(errors or done.stderr.splitlines() or ['?'])[-1][:300]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per process")
    parser.add_argument("--window", type=int, default=4, help="steps in the best window")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="times each arm runs, in turn")
    parser.add_argument("--mode", choices=("graph", "pynative"), default="graph", help="MindSpore mode")
    parser.add_argument("--threads", type=int, default=0, help="threads of both frameworks (0: their defaults)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="cpu: process CPU time (use with --threads 1 on a busy machine)")
    parser.add_argument("--ms-config", action="append", help="a MindSpore arm (repeatable); see the docstring")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--child", choices=("mindspore", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--config", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure = measure_mindspore if args.child == "mindspore" else measure_torch
        print(json.dumps(measure(args, parse_config(args.config)[1])))
        return
    arms = [("mindspore", spec) for spec in (args.ms_config or [""])]
    for _, spec in arms:
        parse_config(spec)  # refuse a bad spec before the first minute of work
    if not args.no_torch:
        arms.append(("torch", ""))
    print(f"{args.model}, batch {args.batch_size}, MindSpore {args.mode.upper()}_MODE, threads "
          f"{args.threads or 'default'}, {args.clock} clock; best {args.window}-step window of {args.steps} steps x {args.rounds} "
          f"rounds; load before: {load()}")
    times = {arm: [] for arm in arms}
    setups, failed = {}, set()
    for _ in range(args.rounds):
        for arm in [a for a in arms if a not in failed]:
            result = _child(arm[0], arm[1], args)
            if result is None:
                failed.add(arm)
                continue
            times[arm].append(best_window(result[CLOCKS[args.clock]], args.window))
            setups[arm] = result.get("cpu_setup")
    arms = [a for a in arms if a not in failed]
    best = {arm: args.batch_size / min(times[arm]) for arm in arms}
    torch_speed = best.get(("torch", ""))
    for arm in arms:
        label = "torch" if arm[0] == "torch" else f"mindspore {arm[1] or '(msport default)'}"
        spread = " ".join(f"{args.batch_size / t:.1f}" for t in times[arm])
        ratio = f"  {best[arm] / torch_speed:.2f}x torch" if torch_speed and arm[0] != "torch" else ""
        print(f"  {label:<48} {best[arm]:7.1f} img/s{ratio}   (rounds: {spread})")
        if setups.get(arm):
            print(f"  {'':<48} cpu setup: {json.dumps(setups[arm])}")
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
