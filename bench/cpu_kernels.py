"""Per-layer CPU times of a zoo model, MindSpore beside torch, with the oneDNN kernel each one ran.

    python bench/cpu_kernels.py [--model resnet18 --model resnet50] [--batch-size 16] [--rounds 2]
    python bench/cpu_kernels.py --threads 1 --clock cpu        # on a busy machine
    python bench/cpu_kernels.py --model resnet18 --only conv --ms-config "ONEDNN_MAX_CPU_ISA=AVX512_CORE"

The layers come from the zoo model's torch twin, traced with torch.fx: every
convolution, BatchNorm, ReLU, add, pooling and Dense of one forward pass, with
its input shape, grouped by (kind, settings, shape) and counted. Each distinct
layer is rebuilt alone in both frameworks and timed forward, and forward plus
backward (gradients of the sum of outputs, for the input and the weights, as a
training step needs): MindSpore in GRAPH_MODE with msport's CPU setup (or a
``--ms-config``, same syntax as bench/train_step.py), torch eager. Each figure
is the fastest of at least ``--repeats`` calls in each of ``--rounds``
alternating processes (on a shared machine, the least disturbed call), less the
cost of a call that does nothing (a ReLU of one value, the first row), so that
the rows add up to kernel time. ``--clock cpu`` times with the process's CPU
time: with ``--threads 1`` that is the work done, however busy the machine.

The table's columns: count in one forward pass; MindSpore and torch ms per
call; their ratio (torch time / MindSpore time: above 1 MindSpore is faster,
as bench/train_step.py's ratio); ``lost`` = count x (MindSpore - torch) of a
training step, which ranks what keeps MindSpore below torch; and the kernels
oneDNN ran for it in each framework (a second pass with ONEDNN_VERBOSE=1;
``-`` where the framework used a kernel of its own, not oneDNN).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# one --ms-config syntax for both benches
from train_step import apply_ms_settings, load, parse_config

KINDS = ("conv", "bn", "relu", "add", "pool", "dense")
#: A ReLU of one value: the cost of one call, not of a kernel. It is subtracted from every row.
OVERHEAD = {"kind": "relu", "shape": [1], "overhead": True}


def model_layers(model, batch_size):
    """Distinct layers of one forward pass: a list of (key dict, count), in first-use order."""
    import torch
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    import reference_torch

    net = reference_torch.create_model(model).train()
    traced = torch.fx.symbolic_trace(net)
    ShapeProp(traced).propagate(torch.randn(batch_size, 3, 32, 32))
    modules = dict(traced.named_modules())
    found = Counter()
    order = []
    for node in traced.graph.nodes:
        key = _layer_key(node, modules)
        if key is None:
            continue
        frozen = json.dumps(key, sort_keys=True)
        if frozen not in found:
            order.append(frozen)
        found[frozen] += 1
    return [(json.loads(k), found[k]) for k in order]


def _layer_key(node, modules):
    import operator

    import torch
    import torch.nn.functional as F

    def shape(arg):
        return list(arg.meta["tensor_meta"].shape)

    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, torch.nn.Conv2d):
            return {"kind": "conv", "shape": shape(node.args[0]), "out": mod.out_channels,
                    "k": mod.kernel_size[0], "stride": mod.stride[0], "pad": mod.padding[0]}
        if isinstance(mod, torch.nn.BatchNorm2d):
            return {"kind": "bn", "shape": shape(node.args[0])}
        if isinstance(mod, torch.nn.Linear):
            return {"kind": "dense", "shape": shape(node.args[0]), "out": mod.out_features}
        if isinstance(mod, torch.nn.ReLU):
            return {"kind": "relu", "shape": shape(node.args[0])}
        if isinstance(mod, torch.nn.AvgPool2d):
            return {"kind": "pool", "shape": shape(node.args[0]), "k": mod.kernel_size}
    if node.op == "call_function":
        if node.target in (F.relu, torch.relu):
            return {"kind": "relu", "shape": shape(node.args[0])}
        if node.target in (operator.add, torch.add):
            return {"kind": "add", "shape": shape(node.args[0])}
        if node.target is F.avg_pool2d:
            return {"kind": "pool", "shape": shape(node.args[0]), "k": node.args[1]}
    return None


def label(key):
    c, *hw = key["shape"][1:]
    where = f"{c}x{'x'.join(map(str, hw))}" if hw else f"{c}"
    if key["kind"] == "conv":
        return f"conv{key['k']}x{key['k']} {c}->{key['out']} s{key['stride']} @{where}"
    if key["kind"] == "dense":
        return f"dense {c}->{key['out']}"
    if key["kind"] == "pool":
        return f"avgpool{key['k']} @{where}"
    return f"{key['kind']} @{where}"


def _ms_layer(nn, key):
    if key["kind"] == "conv":
        pad = {"pad_mode": "pad", "padding": key["pad"]} if key["pad"] else {"pad_mode": "valid"}
        return nn.Conv2d(key["shape"][1], key["out"], key["k"], stride=key["stride"], has_bias=False, **pad), 1
    if key["kind"] == "bn":
        return nn.BatchNorm2d(key["shape"][1]), 1
    if key["kind"] == "relu":
        return nn.ReLU(), 1
    if key["kind"] == "pool":
        return nn.AvgPool2d(key["k"], key["k"]), 1
    if key["kind"] == "dense":
        return nn.Dense(key["shape"][1], key["out"]), 1
    return _ms_add, 2


def _ms_add(a, b):
    """A plain function, not a Cell defined in a function: MindSpore's parser refuses nested classes."""
    return a + b


def _torch_layer(torch, key):
    nn = torch.nn
    if key["kind"] == "conv":
        return nn.Conv2d(key["shape"][1], key["out"], key["k"], key["stride"], key["pad"], bias=False), 1
    if key["kind"] == "bn":
        return nn.BatchNorm2d(key["shape"][1]), 1
    if key["kind"] == "relu":
        return nn.ReLU(), 1
    if key["kind"] == "pool":
        return nn.AvgPool2d(key["k"]), 1
    if key["kind"] == "dense":
        return nn.Linear(key["shape"][1], key["out"]), 1
    return (lambda a, b: a + b), 2


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _fastest(call, request):
    """Fastest of at least ``repeats`` calls, more for cheap layers (up to ``budget`` seconds or 50 calls).

    ``--clock cpu`` times with the process's CPU time (all its threads): with ``--threads 1`` that is the
    work a call does, whatever else the machine runs; the wall clock also counts waiting for a core."""
    clock = CLOCKS[request["clock"]]
    call()  # first call: compile / JIT / allocate
    best, calls, until = float("inf"), 0, time.perf_counter() + request["budget"]
    while calls < request["repeats"] or (time.perf_counter() < until and calls < 50):
        start = clock()
        call()
        best, calls = min(best, clock() - start), calls + 1
    return best


def time_mindspore(keys, request, settings, marker):
    import numpy as np

    from msport import _mindspore
    from msport._mindspore import ms, nn

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    apply_ms_settings(ms, dict(settings, **({"threads": request["threads"]} if request["threads"] else {})))
    rng = np.random.default_rng(0)
    results = []
    for i, key in enumerate(keys):
        marker(i)
        results.append(_time_ms_layer(ms, _ms_layer(nn, key), key, rng, request))
    return {"times": results, "cpu_setup": _mindspore.CPU_SETUP}


def _time_ms_layer(ms, layer, key, rng, request):
    import numpy as np

    cell, n_inputs = layer
    params = None
    if isinstance(cell, ms.nn.Cell):
        cell.set_train(True)
        params = cell.trainable_params() or None
    else:
        cell = ms.jit(cell)
    inputs = [ms.Tensor(rng.standard_normal(key["shape"], dtype=np.float32)) for _ in range(n_inputs)]
    # value_and_grad: the forward stays in the graph (ms.grad alone may drop it, as for an add)
    step = ms.jit(ms.value_and_grad(cell, grad_position=tuple(range(n_inputs)), weights=params))

    def forward():
        cell(*inputs).asnumpy()

    def train():
        _sync(step(*inputs))

    return {"forward": _fastest(forward, request), "train": _fastest(train, request)}


def _sync(out):
    """Wait for every tensor of a (nested) MindSpore result."""
    if isinstance(out, (tuple, list)):
        for part in out:
            _sync(part)
    else:
        out.asnumpy()


def time_torch(keys, request, settings, marker):
    del settings
    import torch

    if request["threads"]:
        torch.set_num_threads(request["threads"])
    torch.manual_seed(0)
    results = []
    for i, key in enumerate(keys):
        marker(i)
        results.append(_time_torch_layer(torch, _torch_layer(torch, key), key, request))
    return {"times": results}


def _time_torch_layer(torch, layer, key, request):
    layer, n_inputs = layer
    if isinstance(layer, torch.nn.Module):
        layer.train()
    inputs = [torch.randn(key["shape"], requires_grad=True) for _ in range(n_inputs)]

    def forward():
        layer(*inputs)

    def train():
        out = layer(*inputs)
        out.backward(torch.ones_like(out))

    return {"forward": _fastest(forward, request), "train": _fastest(train, request)}


def _marker_writer():
    """Writes ``@@layer N`` to fd 1 in order with oneDNN's verbose lines (C stdio, flushed first)."""
    import ctypes

    libc = ctypes.CDLL(None)

    def marker(i):
        libc.fflush(None)
        sys.stdout.flush()
        os.write(1, f"@@layer {i}\n".encode())

    return marker


SHORT_KINDS = {"batch_normalization": "bn", "pooling": "pool", "eltwise": "eltwise", "matmul": "matmul"}


def kernels_from_verbose(stdout):
    """{layer index: {"fwd"|"bwd_d"|"bwd_w": implementation}} from ONEDNN_VERBOSE=1 output."""
    found, layer = {}, None
    for line in stdout.splitlines():
        if line.startswith("@@layer "):
            layer = int(line.split()[1])
            found[layer] = {}
            continue
        parts = line.split(",")
        if layer is None or len(parts) < 8 or parts[2:4] != ["primitive", "exec"]:
            continue
        kind, impl, prop = parts[5], parts[6], parts[7]
        if kind == "reorder":  # layout conversions around a kernel: its cost is in the layer's time
            continue
        role = {"forward_training": "fwd", "forward_inference": "fwd", "backward_data": "bwd_d",
                "backward_weights": "bwd_w", "backward": "bwd"}.get(prop, "")
        name = SHORT_KINDS.get(kind, kind)
        found[layer].setdefault(role if kind == "convolution" else f"{name}.{role}".rstrip("."), impl)
    return found


def run_child(framework, spec, keys, args, verbose=False):
    env = dict(os.environ)
    if framework == "mindspore":
        env.update(parse_config(spec)[0])
    if verbose:
        env["ONEDNN_VERBOSE"] = "1"
    payload = json.dumps({"keys": keys, "repeats": 1 if verbose else args.repeats, "budget": 0 if verbose else 0.5,
                          "threads": args.threads, "clock": args.clock, "config": spec})
    done = subprocess.run([sys.executable, __file__, "--child", framework], input=payload, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{framework} {spec!r} failed:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    if verbose:
        result["kernels"] = kernels_from_verbose(done.stdout)
    return result


def _kernel_text(kernels):
    if not kernels:
        return "-"
    return " ".join(f"{role}={impl}" for role, impl in kernels.items())


def report(model, layers, ms_best, torch_best, ms_kernels, torch_kernels):
    print(f"\n{model}: per call, ms (fastest); ratio = torch/MindSpore; lost = count x (MS - torch), fwd+bwd")
    print(f"{'layer':<34}{'n':>3} {'MS fwd':>8}{'torch':>8}{'ratio':>6} {'MS f+b':>8}{'torch':>8}{'ratio':>6}"
          f"{'lost':>8}  kernels (MindSpore | torch)")
    total_ms = total_torch = 0.0
    rows = []
    ms_call, torch_call = ms_best[0], torch_best[0]
    print(f"{'call overhead (subtracted below)':<34}{'':>3} {ms_call['forward'] * 1e3:8.2f}"
          f"{torch_call['forward'] * 1e3:8.2f}{'':>6} {ms_call['train'] * 1e3:8.2f}{torch_call['train'] * 1e3:8.2f}")
    for i, (key, count) in list(enumerate(layers))[1:]:
        m, t = _net(ms_best[i], ms_call), _net(torch_best[i], torch_call)
        total_ms += count * m["train"]
        total_torch += count * t["train"]
        lost = count * (m["train"] - t["train"])
        rows.append(lost)
        print(f"{label(key):<34}{count:>3} {m['forward'] * 1e3:8.2f}{t['forward'] * 1e3:8.2f}"
              f"{t['forward'] / m['forward']:6.2f} {m['train'] * 1e3:8.2f}{t['train'] * 1e3:8.2f}"
              f"{t['train'] / m['train']:6.2f}{lost * 1e3:8.1f}  {_kernel_text(ms_kernels.get(i))} | "
              f"{_kernel_text(torch_kernels.get(i))}")
    print(f"sum over one training step's layers: MindSpore {total_ms * 1e3:.0f} ms, torch {total_torch * 1e3:.0f} ms,"
          f" ratio {total_torch / total_ms:.2f}x")
    by_kind = Counter()
    for (key, _), lost in zip(layers[1:], rows):
        by_kind[key["kind"] if key["kind"] != "conv" else f"conv{key['k']}x{key['k']}"] += lost
    print("lost per kind (ms): " + ", ".join(f"{k} {v * 1e3:+.0f}" for k, v in by_kind.most_common()))


def child(framework):
    request = json.loads(sys.stdin.read())
    marker = _marker_writer()
    timer = time_mindspore if framework == "mindspore" else time_torch
    result = timer(request["keys"], request, parse_config(request["config"])[1], marker)
    marker(-1)
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="zoo model (repeatable; default resnet18 and resnet50)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per layer and process")
    parser.add_argument("--rounds", type=int, default=2, help="alternating processes per framework")
    parser.add_argument("--only", choices=KINDS, action="append", help="layer kinds to measure (repeatable)")
    parser.add_argument("--threads", type=int, default=0, help="threads of both frameworks (0: their defaults)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="cpu: process CPU time (use with --threads 1 on a busy machine)")
    parser.add_argument("--ms-config", default="", help="MindSpore settings, as bench/train_step.py's")
    parser.add_argument("--no-kernels", action="store_true", help="skip the ONEDNN_VERBOSE pass")
    parser.add_argument("--child", choices=("mindspore", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    parse_config(args.ms_config)
    print(f"batch {args.batch_size}, threads {args.threads or 'default'}, {args.clock} clock, fastest of "
          f">={args.repeats} calls x {args.rounds} rounds; MindSpore GRAPH_MODE "
          f"{args.ms_config or '(msport default)'}; load before: {load()}")
    for model in args.model or ["resnet18", "resnet50"]:
        layers = [(k, n) for k, n in model_layers(model, args.batch_size) if not args.only or k["kind"] in args.only]
        layers.insert(0, (OVERHEAD, 0))
        keys = [k for k, _ in layers]
        ms_best = torch_best = None
        for _ in range(args.rounds):
            ms_run = run_child("mindspore", args.ms_config, keys, args)
            torch_run = run_child("torch", "", keys, args)
            ms_best = _faster(ms_best, ms_run["times"])
            torch_best = _faster(torch_best, torch_run["times"])
        ms_kernels = torch_kernels = {}
        if not args.no_kernels:
            ms_kernels = run_child("mindspore", args.ms_config, keys, args, verbose=True)["kernels"]
            torch_kernels = run_child("torch", "", keys, args, verbose=True)["kernels"]
        print(f"MindSpore CPU setup: {json.dumps(ms_run['cpu_setup'])}")
        report(model, layers, ms_best, torch_best, ms_kernels, torch_kernels)
    print(f"load after: {load()}")


def _net(times, call):
    return {k: max(times[k] - call[k], 1e-6) for k in times}


def _faster(best, times):
    if best is None:
        return times
    return [{k: min(a[k], b[k]) for k in a} for a, b in zip(best, times)]


if __name__ == "__main__":
    main()
