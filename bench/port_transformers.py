"""Port a tiny random config of every architecture in transformers' causal-LM, masked-LM,
sequence-classification and image-classification mappings with ``msport port``.

Each architecture: ``AutoConfig.for_model(model_type)`` shrunk to hidden 32, 2 layers, 2 heads
(1 key/value head where the config has the field), vocab 128, intermediate 64 (4 experts of 64
for a mixture of experts), wherever the config has those fields (nested text/vision configs too), built with random weights (no download). Text
models take ``input_ids`` and ``attention_mask`` (2, 8) (the second sequence padded by 2), image
models ``pixel_values`` (2, C, H, W) at the config's own image size. First ``torch.export`` alone is
tried: an architecture it cannot export is a row ("export fails") outside the goal's denominator.
Then ``msport port``: a row passes when every output is within ``msport.tolerances.PORT_OUTPUT_NORM_REL``.
Each architecture runs in its own process (``--timeout``).

    nice python bench/port_transformers.py                          # all four mappings (hours on 2 cores)
    nice python bench/port_transformers.py --every 10 --json runs/port_hf.json   # a tenth of them
    nice python bench/port_transformers.py --models gpt2 llama bert
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.port_timm import run_in_process, run_isolated, table  # noqa: E402 - one runner and one table for both benches

TASKS = {"causal-lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "masked-lm": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
         "sequence-classification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
         "image-classification": "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES"}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "vocab_size": 128, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "d_model": 32,
        "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "ffn_dim": 64, "d_ff": 64, "d_kv": 16, "head_dim": 16,
        "max_position_embeddings": 64, "embedding_size": 32, "projection_dim": 32, "num_experts": 4,
        "num_local_experts": 4, "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
        "n_shared_experts": 1, "shared_expert_intermediate_size": 64}


def architectures(tasks):
    """``[(task, model_type, class name)]`` of the mappings."""
    from transformers.models.auto import modeling_auto

    out = []
    for task in tasks:
        for model_type, cls in getattr(modeling_auto, TASKS[task]).items():
            out.append((task, model_type, cls if isinstance(cls, str) else cls[0]))
    return out


def shrink(config):
    """Set every size field the config has to the tiny value, nested configs too; returns what it set."""
    changed = []
    for key, value in TINY.items():
        if key in config.to_dict() or key in getattr(config, "attribute_map", {}):
            try:
                setattr(config, key, value)
                changed.append(key)
            except (AttributeError, ValueError, TypeError):
                continue
    for sub in ("text_config", "vision_config", "encoder", "decoder"):
        nested = getattr(config, sub, None)
        if nested is not None and hasattr(nested, "to_dict"):
            shrink(nested)
    if getattr(config, "num_labels", None) is not None:
        config.num_labels = 3
    return changed


def build(task, model_type, cls_name):
    import torch
    import transformers

    config = transformers.AutoConfig.for_model(model_type)
    shrink(config)
    torch.manual_seed(0)
    model = getattr(transformers, cls_name)(config).eval()
    if task == "image-classification":
        vision = getattr(config, "vision_config", config)
        size = getattr(vision, "image_size", 224)
        size = size if isinstance(size, int) else size[0]
        channels = getattr(vision, "num_channels", 3)
        x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(1))
        return model, {"pixel_values": x}
    ids = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 8, dtype=torch.int64)
    mask[1, 6:] = 0
    return model, {"input_ids": ids, "attention_mask": mask}


def port_one(spec):
    import torch

    from msport.port import TraceFailed, UnsupportedModel, port
    from msport.port.capture import exportable, failure_location

    task, model_type, cls_name = spec.split("/")
    row = {"family": task, "model": f"{model_type} ({cls_name})"}
    start = time.perf_counter()
    try:
        model, inputs = build(task, model_type, cls_name)
    except Exception as exc:  # noqa: BLE001
        row.update(ported=False, exportable=None, note=f"build: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        return row
    row["params"] = sum(p.numel() for p in model.parameters())
    row["input"] = ", ".join(f"{k} {tuple(v.shape)}" for k, v in inputs.items())
    try:
        with exportable(model):
            torch.export.export(model, (), inputs, strict=False)
        row["exportable"] = True
    except Exception as exc:  # noqa: BLE001 - outside the goal's denominator, said why
        row.update(ported=False, exportable=False,
                   note=f"export fails: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}")
        row["seconds"] = round(time.perf_counter() - start, 1)
        return row
    try:
        result = port(model, ((), inputs), name="model")
    except UnsupportedModel as exc:
        ops = sorted({u.target for u in exc.unsupported})
        row.update(ported=False, note=f"{', '.join(ops)}: {exc.unsupported[0].where}")
    except TraceFailed as exc:
        row.update(ported=False, note="export: " + str(exc).split("; torch.export")[0])
    except Exception as exc:  # noqa: BLE001
        row.update(ported=False, note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} at "
                                      f"{failure_location(exc)}")
    else:
        worst = result.report["worst_output"]
        row.update(ported=True, ok=result.report["within_tolerance"], norm_rel=worst["norm_rel"],
                   max_abs=worst["max_abs"], changes=result.changes)
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def summary(rows):
    # a process that died or timed out counts against the goal: export may well have worked
    exportable = [r for r in rows if not (r.get("note") or "").startswith(("export fails", "build:"))]
    good = [r for r in exportable if r.get("ok")]
    return (f"{len(good)} of {len(exportable)} architectures torch.export can export are within 1e-4 "
            f"({100.0 * len(good) / max(len(exportable), 1):.0f}%); {len(rows) - len(exportable)} of {len(rows)} "
            f"do not export (or build) at all")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--models", nargs="+", help="model types to run (default: every one in the mappings)")
    parser.add_argument("--limit", type=int, help="the first N architectures only")
    parser.add_argument("--every", type=int, default=1, help="every Nth architecture of the mappings: a sample")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per architecture (default 600)")
    parser.add_argument("--in-process", action="store_true", help="every architecture in this process (faster; a "
                                                                    "crash ends the sweep)")
    parser.add_argument("--json", help="write the rows as JSON")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(port_one(args.one)))
        return
    specs = [s for s in architectures(args.tasks) if not args.models or s[1] in args.models]
    rows = []
    for task, model_type, cls_name in specs[::args.every][:args.limit]:
        spec = f"{task}/{model_type}/{cls_name}"
        rows.append(run_in_process(port_one, spec, args.timeout) if args.in_process
                    else run_isolated(os.path.abspath(__file__), spec, args.timeout))
        rows[-1].setdefault("family", task)
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1)
    print(table(rows, what="mapping"))
    print(summary(rows))


if __name__ == "__main__":
    main()
