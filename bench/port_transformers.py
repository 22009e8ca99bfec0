"""Port a tiny random config of every architecture in transformers' causal-LM, masked-LM,
sequence-classification and image-classification mappings with ``msport port``.

Each architecture: ``AutoConfig.for_model(model_type)`` shrunk to hidden 32, 2 layers, 2 heads
(1 key/value head where the config has the field), vocab 128, intermediate 64 (4 experts of 64
for a mixture of experts), wherever the config has those fields (nested text/vision configs too), built with random weights (no download). Text
models take ``input_ids`` and ``attention_mask`` (2, 8) (the second sequence padded by 2), image
models ``pixel_values`` (2, C, H, W) at the config's own image size, at most 224. ``msport port`` exports
it once; where that export fails, ``torch.export`` alone is tried: an architecture it cannot export
either is a row ("export fails") outside the goal's denominator. A row passes when every output is
within ``msport.tolerances.PORT_OUTPUT_NORM_REL``.
Each architecture runs in its own process (``--timeout``).

    nice python bench/port_transformers.py                          # all four mappings (hours on 2 cores)
    nice python bench/port_transformers.py --every 10 --json runs/port_hf.json   # a tenth of them
    nice python bench/port_transformers.py --models gpt2 llama bert
"""

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _sweep  # noqa: E402 - the flags, loop and table both port benches share

TASKS = {"causal-lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "masked-lm": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
         "sequence-classification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
         "image-classification": "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES"}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "vocab_size": 128, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "d_model": 32,
        "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "ffn_dim": 64, "d_ff": 64, "d_kv": 16, "head_dim": 16,
        "max_position_embeddings": 64, "embedding_size": 32, "projection_dim": 32, "num_experts": 4,
        "num_local_experts": 4, "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
        "n_shared_experts": 1, "shared_expert_intermediate_size": 64, "n_group": 1, "topk_group": 1,
        "qk_rope_head_dim": 16, "qk_nope_head_dim": 8, "v_head_dim": 16, "kv_lora_rank": 16, "q_lora_rank": 16,
        "rotary_dim": 8, "expand": 1, "n_groups": 1,
        "mamba_n_heads": 2, "mamba_d_head": 16, "mamba_n_groups": 1, "mamba_expand": 1, "d_latents": 32,
        "num_latents": 16}
IMAGE_SIZE = 224  # an image model whose config asks for more (efficientnet's 600) takes this


def architectures(tasks):
    """``[(task, model_type, class name)]`` of the mappings."""
    from transformers.models.auto import modeling_auto

    out = []
    for task in tasks:
        for model_type, cls in getattr(modeling_auto, TASKS[task]).items():
            out.append((task, model_type, cls if isinstance(cls, str) else cls[0]))
    return out


LAYER_COUNTS = ("num_hidden_layers", "num_layers", "encoder_layers", "decoder_layers")
WIDTHS = ("hidden_size", "d_model", "intermediate_size")  # a size field equal to one of these follows it


def shrink(config):
    """Set every size field the config has to the tiny value, nested configs too; returns what it set.

    A field that holds one value per stage (swin's ``num_heads``) keeps its length; a list with one
    entry per layer (``layer_types``) is cut to the new layer count; token ids are moved inside the
    tiny vocabulary, and a missing pad token is 0 (a sequence classifier needs one for a batch > 1). A
    ``*_size`` or ``*_dim`` field that held the default hidden or intermediate width (deberta's
    ``pooler_hidden_size``, a cross-attention width) takes the tiny one too, and a list of sizes summing
    to it (reformer's axial embedding widths) is scaled to sum to the tiny one."""
    fields = config.to_dict()
    layers = {}  # original layer count -> tiny one; read through attribute_map (convnext's num_stages)
    for key in LAYER_COUNTS:
        try:
            count = getattr(config, key, None)
        except Exception:  # noqa: BLE001 - a field that refuses a global read
            count = None
        if isinstance(count, int) and not isinstance(count, bool):
            layers[count] = TINY[key]
    widths = {fields[k]: TINY[k] for k in WIDTHS if isinstance(fields.get(k), int) and fields[k] > TINY[k]}
    changed = []
    for key, value in TINY.items():
        if key in fields or key in getattr(config, "attribute_map", {}):
            try:
                current = getattr(config, key, None)
            except Exception:  # noqa: BLE001 - a per-layer field that refuses a global read (gemma4): set it anyway
                current = None
            if isinstance(current, (list, tuple)):
                value = type(current)(value for _ in current)
            if _set(config, key, value):
                changed.append(key)
    for key, value in fields.items():  # a width derived from one the config was built with (deberta's pooler)
        if key not in TINY and isinstance(value, int) and value in widths and re.search(r"(size|dim)$", key):
            _set(config, key, widths[value])
        elif (key not in TINY and isinstance(value, (list, tuple)) and len(value) > 1
              and all(isinstance(v, int) for v in value) and sum(value) in widths):  # parts of a width (reformer's axial embedding dims)
            tiny = widths[sum(value)]
            parts = [max(1, v * tiny // sum(value)) for v in value[:-1]]
            _set(config, key, type(value)(parts + [tiny - sum(parts)]))
    for key, value in fields.items():
        if isinstance(value, (list, tuple)) and len(value) in layers and key not in TINY and len(value) > 1:
            _set(config, key, type(value)(value[:layers[len(value)]]))
    if "kv_lora_rank" in fields and "num_key_value_heads" in changed:  # latent attention: one key/value per head
        _set(config, "num_key_value_heads", TINY["num_attention_heads"])
    vocab = getattr(config, "vocab_size", None)
    if isinstance(vocab, int):
        for key, value in fields.items():
            if key.endswith("token_id") and isinstance(value, int) and value >= vocab:
                _set(config, key, value % vocab)
            elif key.endswith("token_id") and isinstance(value, list):
                _set(config, key, [v % vocab for v in value])
        if getattr(config, "pad_token_id", None) is None:
            _set(config, "pad_token_id", 0)
    subs = list(getattr(config, "sub_configs", None) or {}) + ["text_config", "vision_config", "encoder", "decoder"]
    for sub in dict.fromkeys(subs):
        nested = getattr(config, sub, None)
        if nested is not None and hasattr(nested, "to_dict"):
            shrink(nested)
    if getattr(config, "num_labels", None) is not None:
        config.num_labels = 3
    return changed


def _set(config, key, value):
    try:
        setattr(config, key, value)
    except (AttributeError, ValueError, TypeError):
        return False
    return True


def config_for(model_type, cls):
    """The model type's default config, or its sub-config the class is built from (a causal-LM class of a
    multimodal type takes the text config)."""
    import transformers

    config = transformers.AutoConfig.for_model(model_type)
    expected = getattr(cls, "config_class", None)
    if expected is None or isinstance(config, expected):
        return config
    for sub in getattr(config, "sub_configs", None) or {}:
        nested = getattr(config, sub, None)
        if isinstance(nested, expected):
            return nested
    return expected()


def build(task, model_type, cls_name):
    import torch
    import transformers

    cls = getattr(transformers, cls_name)
    config = config_for(model_type, cls)
    shrink(config)
    if task == "causal-lm" and getattr(config, "is_decoder", None) is False:
        config.is_decoder = True  # an encoder's LM head as a causal LM (BertLMHeadModel, Reformer) is a decoder
    if task == "image-classification":
        vision = getattr(config, "vision_config", config)
        size = getattr(vision, "image_size", IMAGE_SIZE)
        size = size if isinstance(size, int) else size[0]
        if size > IMAGE_SIZE:  # set before the model is built, so its sizes follow
            vision.image_size, size = IMAGE_SIZE, IMAGE_SIZE
    torch.manual_seed(0)
    model = cls(config).eval()
    if task == "image-classification":
        channels = getattr(vision, "num_channels", 3)
        x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(1))
        return model, {"pixel_values": x}
    ids = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 8, dtype=torch.int64)
    mask[1, 6:] = 0
    eos = getattr(getattr(config, "text_config", config), "eos_token_id", None)
    if isinstance(eos, int) and 0 <= eos < 128:  # one end token per sequence, at its end (BART-style pooling)
        ids[ids == eos] = (eos + 1) % 128
        ids[0, 7] = ids[1, 5] = eos
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
        result = port(model, ((), inputs), name="model")
    except TraceFailed as exc:
        if isinstance(exc.__cause__, TimeoutError):  # the row's time ran out inside export: no second try
            raise exc.__cause__ from None
        try:  # is it torch.export itself that fails (outside the goal), or msport's way of calling it?
            with exportable(model):
                torch.export.export(model, (), inputs, strict=False)
        except Exception as plain:  # noqa: BLE001 - outside the goal's denominator, said why
            row.update(ported=False, exportable=False,
                       note=f"export fails: {type(plain).__name__}: {str(plain).strip().splitlines()[0][:160]}")
        else:
            row.update(ported=False, exportable=True, note="export: " + str(exc).split("; torch.export")[0])
    except UnsupportedModel as exc:
        ops = sorted({u.target for u in exc.unsupported})
        row.update(ported=False, note=f"{', '.join(ops)}: {exc.unsupported[0].where}")
    except Exception as exc:  # noqa: BLE001
        row.update(ported=False, note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]} at "
                                      f"{failure_location(exc)}")
    else:
        worst = result.report["worst_output"]
        row.update(ported=True, ok=result.report["within_tolerance"], norm_rel=worst["norm_rel"],
                   max_abs=worst["max_abs"], changes=result.changes)
        if not row["ok"]:
            with exportable(model):
                row["floor"] = _sweep.float32_floor(model, (), inputs)
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def summary(rows):
    # a process that died or timed out counts against the goal: export may well have worked
    exportable = [r for r in rows if not (r.get("note") or "").startswith(("export fails", "build:"))]
    good = [r for r in exportable if r.get("ok")]
    return (f"{len(good)} of {len(exportable)} architectures torch.export can export are within 1e-4 "
            f"({100.0 * len(good) / max(len(exportable), 1):.0f}%); {len(rows) - len(exportable)} of {len(rows)} "
            f"do not export (or build) at all{_sweep.timeouts(exportable)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--models", nargs="+", help="model types to run (default: every one in the mappings)")
    _sweep.add_arguments(parser, "architectures", timeout=600)
    args = parser.parse_args()
    specs = [] if args.one or args.table else [
        f"{task}/{model_type}/{cls_name}" for task, model_type, cls_name in architectures(args.tasks)
        if not args.models or model_type in args.models]
    _sweep.main(args, os.path.abspath(__file__), specs, port_one, "mapping", summary=summary,
                defaults=lambda spec: {"family": spec.split("/")[0],
                                       "model": "{1} ({2})".format(*spec.split("/"))})


if __name__ == "__main__":
    main()
