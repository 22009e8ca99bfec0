"""Measure, over many seeds, the float32 disagreement every tolerance in msport/tolerances.py bounds.

    python bench/tolerances.py [--seeds 8] [--grad-seeds 4] [--models resnet10_w16 resnet18 ...]
    python bench/tolerances.py --probes [--seeds 3]

For each zoo model and seed: torch weights (torch.manual_seed(seed)) converted into the MindSpore
twin, one random batch of 4 (numpy seed), every stage output compared in eval and train mode
(max|torch - ms| / max|torch|). For resnet18 and resnet50 at batch 8, train mode, every parameter
gradient of the mean cross-entropy: ||torch - ms|| / ||torch|| and cosine. Prints the worst value
of each metric over all seeds, and per model, which is what the constants' comments cite.
``--probes``: the largest ``probe_max_rel`` audit finds on correct ports (LAYER_PROBE_MAX_REL).
"""

import argparse
import time

import numpy as np

from msport.tolerances import cosine, norm_rel


def main():
    import torch

    import reference_torch
    from msport._mindspore import ms, nn
    from msport.commands.check_zoo import stage_errors
    from msport.convert import layer_map, load_torch_weights_into_ms, map_names
    from msport.models import create_model, list_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--grad-seeds", type=int, default=4)
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--grad-models", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--probes", action="store_true", help="measure audit's layer probes instead")
    args = parser.parse_args()
    if args.probes:
        return probes(args.seeds)

    worst = {}
    for name in args.models:
        start = time.perf_counter()
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            torch_model = reference_torch.create_model(name)
            ms_model = create_model(name)
            load_torch_weights_into_ms(ms_model, torch_model.state_dict())
            x = np.random.default_rng(seed).standard_normal((4, 3, 32, 32)).astype(np.float32)
            for mode, per_stage in stage_errors(torch_model, ms_model, x).items():
                key = (f"forward {mode} max-rel", name)
                worst[key] = max(worst.get(key, 0.0), max(per_stage.values()))
        print(f"{name}: {args.seeds} seeds in {time.perf_counter() - start:.0f} s: "
              f"eval {worst[('forward eval max-rel', name)]:.2e}, train {worst[('forward train max-rel', name)]:.2e}",
              flush=True)

    for name in args.grad_models:
        start = time.perf_counter()
        for seed in range(args.grad_seeds):
            torch.manual_seed(seed)
            torch_model = reference_torch.create_model(name)
            ms_model = create_model(name)
            load_torch_weights_into_ms(ms_model, torch_model.state_dict())
            torch_model.train()
            ms_model.set_train(True)
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
            y = rng.integers(0, 10, 8)
            loss = torch.nn.functional.cross_entropy(torch_model(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            torch_grads = {k: p.grad.numpy() for k, p in torch_model.named_parameters()}
            loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
            params = ms_model.trainable_params()
            grad_fn = ms.value_and_grad(lambda a, b: loss_fn(ms_model(a), b), None, params)
            _, ms_grads = grad_fn(ms.Tensor(x), ms.Tensor(y.astype(np.int32)))
            torch_names = map_names([p.name for p in params], "mindspore", layer_map(ms_model))
            for p, grad in zip(params, ms_grads):
                want = torch_grads[torch_names[p.name]]
                for metric, value in (("grad norm-rel", norm_rel(want, grad.asnumpy())),
                                      ("grad 1-cosine", 1.0 - cosine(want, grad.asnumpy()))):
                    key = (metric, name)
                    worst[key] = max(worst.get(key, 0.0), value)
        print(f"{name} grads: {args.grad_seeds} seeds in {time.perf_counter() - start:.0f} s: "
              f"norm-rel {worst[('grad norm-rel', name)]:.2e}, 1-cosine {worst[('grad 1-cosine', name)]:.2e}",
              flush=True)

    print("\nworst over all seeds:")
    for metric in sorted({m for m, _ in worst}):
        per_model = {n: v for (m, n), v in worst.items() if m == metric}
        top = max(per_model, key=per_model.get)
        print(f"  {metric:<22} {per_model[top]:.3e} ({top}); " +
              ", ".join(f"{n} {v:.2e}" for n, v in per_model.items()))


def probes(seeds):
    """Worst audit probe (max-rel, one layer on its real input, MindSpore's weights on both sides) per layer type."""
    import torch

    import reference_torch
    from examples import lstm_classifier, resnet18_torchvision, transformer_classifier
    from msport.diagnose import audit
    from msport.models import create_model

    pairs = [("zoo resnet18", lambda s: (torch.manual_seed(s) and None) or reference_torch.create_model("resnet18"),
              lambda s: create_model("resnet18"), None)]
    examples = (("resnet18 (torchvision)", resnet18_torchvision), ("transformer", transformer_classifier),
                ("lstm", lstm_classifier))
    for name, example in examples:
        inputs = example.example_input()
        pairs.append((name, example.build_torch, example.build_ms, inputs))
    worst = {}
    for name, build_torch, build_ms, inputs in pairs:
        for seed in range(seeds):
            for record in audit(build_torch(seed), build_ms(seed), inputs=inputs).records:
                if record.get("probe_max_rel") is not None:
                    key = (name, record["check"])
                    worst[key] = max(worst.get(key, 0.0), record["probe_max_rel"])
    for (name, kind), value in sorted(worst.items(), key=lambda item: -item[1]):
        print(f"  {name:<24} {kind:<18} {value:.2e}")


if __name__ == "__main__":
    main()
