"""How fast ``msport port`` is, and how fast the model it writes trains, side by side in one run.

    python bench/port_speed.py [--batch-size 32] [--rounds 3] [--steps 3]

1. Porting time, in-process (export, generate, import, convert, parity check of every output and
   layer): a 125M-parameter GPT-2-shaped model (transformers' GPT2LMHeadModel, hidden 768, 12 layers,
   12 heads, vocab 50257, random weights; input ids (2, 16)), goal under 60 s; and torchvision's
   ResNet50 (two 224x224 images).
2. Training-step speed in GRAPH_MODE of the ported CIFAR ResNet50 against the hand-written
   ``msport.models`` ResNet50: the same weights, batch, optimizer and train step (the one
   ``train_ms.py`` uses). The two alternate in rounds, so load from other processes falls on both;
   the ratio of their median step times is printed. Goal: ported >= 0.95x hand-written.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _gpt2_125m():
    import transformers

    return transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12))


def time_ports(only=None):
    import torch
    import torchvision

    from msport.port import port

    rows = []
    for label, build, example in [row for row in (
            ("GPT-2 125M (hidden 768, 12 layers)", _gpt2_125m,
             ((), {"input_ids": torch.randint(0, 50257, (2, 16), generator=torch.Generator().manual_seed(0))})),
            ("torchvision resnet50", lambda: torchvision.models.resnet50(), torch.randn(2, 3, 224, 224)))
            if not only or only in row[0]]:
        torch.manual_seed(0)
        model = build().eval()
        params = sum(p.numel() for p in model.parameters())
        start, cpu = time.perf_counter(), time.process_time()
        result = port(model, example, name="model")
        seconds = time.perf_counter() - start
        parts = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in result.timings.items())
        parts += f"; {time.process_time() - cpu:.0f} s of CPU"  # what a loaded machine cannot inflate
        rows.append((f"{label}, {params / 1e6:.0f}M", seconds, parts, result.report["worst_output"]["norm_rel"]))
    return rows


def time_training(batch_size, rounds, steps):
    import numpy as np
    import torch

    import reference_torch
    from msport._mindspore import ms
    from msport.convert import load_torch_weights_into_ms
    from msport.models import create_model
    from msport.port import port
    from msport.training import ms_side

    ms.set_context(mode=ms.GRAPH_MODE)
    torch.manual_seed(0)
    torch_model = reference_torch.create_model("resnet50")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch_size).astype(np.int32)
    ported = port(torch_model, torch.from_numpy(x[:1]), name="resnet50", check=False,
                  workdir=tempfile.mkdtemp(prefix="msport_port_speed_")).cell
    hand = create_model("resnet50")
    load_torch_weights_into_ms(hand, torch_model.state_dict())
    cfg = types.SimpleNamespace(optimizer="sgd", lr=0.1, weight_decay=5e-4, momentum=0.9, nesterov=False,
                                betas=(0.9, 0.999), eps=None, label_smoothing=0.0, clip_grad_norm=None)
    steppers = {}
    for label, net in (("hand-written", hand), ("ported", ported)):
        net.set_train(True)
        steppers[label] = ms_side.Stepper(net, ms_side.build_optimizer(cfg, net), cfg)
        steppers[label](x, y, 0.1)  # compiles the graph
    times = {label: [] for label in steppers}
    for _ in range(rounds):
        for label, step in steppers.items():
            for _ in range(steps):
                start = time.perf_counter()
                step(x, y, 0.1)
                times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per model per round")
    parser.add_argument("--port-only", action="store_true", help="time porting only, not training")
    parser.add_argument("--only", help="the porting rows whose label holds this text (e.g. GPT-2)")
    args = parser.parse_args()
    print("porting (in-process; goal for the 125M GPT-2: < 60 s):")
    for label, seconds, parts, diff in time_ports(args.only):
        print(f"  {label:42s} {seconds:5.1f} s  ({parts}; outputs norm-rel diff {diff:.1e})")
    if args.port_only:
        return
    medians = time_training(args.batch_size, args.rounds, args.steps)
    print(f"training step, CIFAR ResNet50, batch {args.batch_size}, GRAPH_MODE, median of "
          f"{args.rounds * args.steps} steps each, alternating:")
    for label, seconds in medians.items():
        print(f"  {label:14s} {seconds:6.3f} s/step  {args.batch_size / seconds:6.1f} img/s")
    print(f"ported / hand-written speed: {medians['hand-written'] / medians['ported']:.3f}x (goal >= 0.95x)")


if __name__ == "__main__":
    main()
