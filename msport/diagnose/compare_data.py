"""Compare a torchvision pipeline with a MindSpore one on the same images, transform by transform.

Where both sides are sequences of operations (a torchvision ``Compose`` or list, and a list of
MindSpore ops or msport twins) of the same length, stage k of one is paired with stage k of the
other and each stage is judged twice:

* ``max_diff``/``mean_diff``: each side runs its own chain from the same decoded image, so a
  stage shows everything that went wrong up to it;
* ``stage_max_diff``: the MindSpore op alone, fed torchvision's input to that stage (in
  MindSpore's layout), so an early divergence does not make every later stage look guilty.

A stage is judged on the second figure where it exists. The first stage over its bound
(:data:`~msport.tolerances.TRANSFORM_UINT8_MAX_ABS` for uint8 outputs,
:data:`~msport.tolerances.TRANSFORM_FLOAT_MAX_ABS` for float ones) is ``first_divergence``, with
the twin to use instead. Random stages: an msport twin's draws are replayed on the torch side
(``replayed``); a random stage that cannot be replayed (MindSpore's own random ops) is judged by
per-channel mean and std over ``draws`` draws on each side (``statistics``). A torch Dataset
against a ``mindspore.dataset`` pipeline is compared item by item on its outputs only.
"""

import numpy as np

from msport.data.transforms import Twin, as_array, entry_for, torch_transforms, twin_of
from msport.data.transforms.base import bound_for, error_line
from msport.data.transforms.pipeline import functional_for
from msport.diagnose.data_images import draw_grid, load_images
from msport.diagnose.report import Column, DiagnosisResult, Figure, flag_mark
from msport.errors import UserError, first_line
from msport.tolerances import TRANSFORM_STATS_MAX_Z, TRANSFORM_STATS_MIN_LEVELS

RANDOM_AUGMENTS = ("ColorJitter", "GaussianBlur", "RandAugment", "TrivialAugmentWide", "AutoAugment", "AugMix")
DEFAULT_DRAWS = 64


class DataComparison(DiagnosisResult):
    """A :class:`DiagnosisResult` that also keeps one image of each side at the first divergent stage."""

    def __init__(self, records, summary, notes, grid=None):
        super().__init__("compare-data", records, summary, notes)
        self.grid = grid  # (stage name, torch array, MindSpore array) or None


# --- what each side is ------------------------------------------------------------------------------

def is_torch_dataset(obj):
    import torch

    return isinstance(obj, torch.utils.data.Dataset)


def is_ms_dataset(obj):
    import mindspore.dataset as ds

    return isinstance(obj, ds.Dataset)


def _is_random(op):
    if isinstance(op, Twin):
        return op.random
    name = type(op).__name__
    return name.startswith("Random") or name in RANDOM_AUGMENTS


def _is_decode(op):
    return type(op).__name__ == "Decode" and type(op).__module__.startswith("mindspore")


def _image_array(value, side, stage):
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    try:
        array = as_array(value)
    except Exception as exc:
        raise UserError(f"{side} stage {stage} returned a {type(value).__name__}, not an image array") from exc
    if array.dtype == object or array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.number):
        raise UserError(f"{side} stage {stage} returned a {type(value).__name__} of shape {array.shape} and "
                        f"dtype {array.dtype}, not an image (HW, HWC or CHW numbers)")
    return array


def aligned(ms, reference):
    """``ms`` in ``reference``'s layout (HWC <-> CHW), or None when no transpose makes the shapes agree."""
    if ms.shape == reference.shape:
        return ms
    if ms.ndim == 3:
        for axes in ((2, 0, 1), (1, 2, 0)):
            if ms.transpose(axes).shape == reference.shape:
                return ms.transpose(axes)
    return None


def _fed(torch_array, ms_previous):
    """torchvision's stage input in the layout the MindSpore chain holds; None where kinds differ."""
    if np.issubdtype(torch_array.dtype, np.floating) != np.issubdtype(ms_previous.dtype, np.floating):
        return None
    fed = aligned(torch_array, ms_previous)
    return None if fed is None else np.ascontiguousarray(fed).astype(ms_previous.dtype, copy=False)


def channel_features(array):
    """One image's per-channel means and stds, in pixel levels (floats are scaled by 255)."""
    array = np.asarray(array, np.float64) * (1.0 if np.asarray(array).dtype == np.uint8 else 255.0)
    if array.ndim == 2:
        array = array[None]
    elif array.shape[-1] in (1, 3, 4) and array.shape[0] not in (1, 3, 4):
        array = np.moveaxis(array, -1, 0)
    flat = array.reshape(array.shape[0], -1)
    return np.concatenate([flat.mean(axis=1), flat.std(axis=1)])


def compare_features(ours, theirs, raw=False):
    """(max |difference| of the average features, in levels; its z-score) over draws of the two sides.

    ``ours``/``theirs`` are images, or with ``raw`` their features already (one row per image).
    """
    if raw:
        a, b = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    else:
        a, b = np.stack([channel_features(x) for x in ours]), np.stack([channel_features(x) for x in theirs])
    if a.shape[1] != b.shape[1]:
        return float("inf"), float("inf")
    delta = np.abs(a.mean(axis=0) - b.mean(axis=0))
    error = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    z = np.where(delta < TRANSFORM_STATS_MIN_LEVELS, 0.0, delta / np.maximum(error, 1e-12))
    return float(delta.max()), float(z.max())


# --- the comparison ---------------------------------------------------------------------------------

def compare_data(torch_side, ms_side, images, *, seed=0, draws=DEFAULT_DRAWS):
    """Compare the two sides on ``images`` (from :func:`load_images`); a :class:`DataComparison`."""
    if is_torch_dataset(torch_side) or is_ms_dataset(ms_side):
        if not (is_torch_dataset(torch_side) and is_ms_dataset(ms_side)):
            raise UserError("--torch and --ms must both be transforms (or op lists) or both data sets "
                            "(a torch Dataset and a mindspore.dataset pipeline), not one of each")
        return _compare_datasets(torch_side, ms_side, len(images) if images else 8)
    torch_ops = torch_transforms(torch_side)
    ms_ops = list(ms_side) if isinstance(ms_side, (list, tuple)) else [ms_side]
    for op in torch_ops + ms_ops:
        if not callable(op):
            raise UserError(f"a {type(op).__name__} is no transform: each stage must be callable")
    decode = bool(ms_ops) and _is_decode(ms_ops[0])
    if decode:
        ms_ops = ms_ops[1:]
    notes = []
    if len(torch_ops) != len(ms_ops):
        notes.append(f"torchvision has {len(torch_ops)} transforms and MindSpore {len(ms_ops)} ops: only the "
                     f"outputs are compared (give both sides stage for stage to find the transform)")
        stages = [(_Chain(torch_ops), _Chain(ms_ops), "output", "output")]
    else:
        stages = [(t, m, type(t).__name__, type(m).__name__) for t, m in zip(torch_ops, ms_ops)]
    return _compare_stages(stages, images, decode, seed, draws, notes)


class _Chain:
    """Several ops as one stage, for sides of unequal length."""

    def __init__(self, ops):
        self.ops = ops

    def __call__(self, image):
        for op in self.ops:
            image = op(image)
        return image


def _compare_stages(stages, images, decode, seed, draws, notes):
    """Run every stage on every image, both chains and each MindSpore op alone; one record per stage.

    Figures are the worst over the images. ``torch_current``/``ms_current`` are the two chains'
    images entering a stage; ``fed`` is torchvision's entering image in MindSpore's layout, the
    input of the op-alone comparison. After a statistics stage the chains hold different draws, so
    later stages are compared alone only (``comparable`` False).
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    records = [{"stage": k, "name": tname, "ms_op": mname, "mode": _mode(t, m), "max_diff": None, "mean_diff": None,
                    "stage_max_diff": None, "stats_diff": None, "stats_z": None, "comparable": True, "_transform": t}
               for k, (t, m, tname, mname) in enumerate(stages)]
    grid = None
    for image_name, data, array in images:
        torch_current = Image.fromarray(array)
        ms_current = array
        if decode:
            ms_current = _image_array(_decode(data), "--ms", "0 (Decode)")
            if ms_current.shape != array.shape or np.abs(ms_current.astype(int) - array).max() > 1:
                notes.append(f"{image_name}: MindSpore's Decode differs from PIL's by "
                             f"{np.abs(ms_current.astype(int) - array).max()} levels")
        chains_apart = False
        for record, (t, m, _, _) in zip(records, stages):
            torch_in = _image_array(torch_current, "--torch", record["stage"]) if record["stage"] else array
            fed = _fed(torch_in, ms_current)
            if record["mode"] == "replayed":
                params = m.draw(rng, (fed if fed is not None else ms_current).shape)
                torch_next = entry_for(t).replay(functional_for(t), t, torch_current, params)
                ms_alone = m.apply(fed, params) if fed is not None else None
                same = fed is not None and fed.shape == ms_current.shape
                ms_next = m.apply(ms_current, params if same else m.draw(rng, ms_current.shape))
            else:
                torch_next = _call(t, torch_current, "--torch", record)
                ms_alone = _call(m, fed, "--ms", record) if fed is not None else None
                ms_next = _call(m, ms_current, "--ms", record)
            torch_out = _image_array(torch_next, "--torch", f"{record['stage']} ({record['name']})")
            ms_out = _image_array(ms_next, "--ms", f"{record['stage']} ({record['ms_op']})")
            view = aligned(ms_out, torch_out)
            if view is None:
                raise UserError(f"the two pipelines' outputs part in shape at stage {record['stage']} "
                                f"({record['name']} / {record['ms_op']}) on {image_name}: torchvision "
                                f"{torch_out.shape}, MindSpore {ms_out.shape}; fix that op's size arguments")
            record.update(torch_shape=tuple(torch_out.shape), ms_shape=tuple(ms_out.shape),
                          dtype=str(torch_out.dtype), bound=bound_for(torch_out))
            if record["mode"] == "statistics":
                delta, z, repeated = _stats_diff(t, m, torch_current, fed if fed is not None else ms_current, draws)
                if repeated:
                    notes.append(f"stage {record['stage']} ({record['name']}): {repeated}'s op gave the same output "
                                 f"in all {draws} draws on {image_name} (a fixed seed? mindspore.dataset.config."
                                 f"set_seed makes eager random ops repeat), so its statistics were not compared")
                else:
                    record["stats_diff"] = max(record["stats_diff"] or 0.0, delta)
                    record["stats_z"] = max(record.get("stats_z") or 0.0, z)
                chains_apart = True
            elif not chains_apart:
                diff = np.abs(torch_out.astype(np.float64) - view.astype(np.float64))
                record["max_diff"] = max(record["max_diff"] or 0.0, float(diff.max()))
                record["mean_diff"] = max(record["mean_diff"] or 0.0, float(diff.mean()))
            if chains_apart and record["mode"] != "statistics":
                record["comparable"] = False
            if ms_alone is not None and record["mode"] != "statistics":
                alone = aligned(_image_array(ms_alone, "--ms", record["stage"]), torch_out)
                if alone is not None:
                    d = float(np.abs(torch_out.astype(np.float64) - alone.astype(np.float64)).max())
                    record["stage_max_diff"] = max(record["stage_max_diff"] or 0.0, d)
            if grid is None and _judge(record)[0]:
                grid = (record["name"], torch_out, view)
            torch_current, ms_current = torch_next, ms_out
    return _result(records, notes, images, grid)


def _decode(data):
    from mindspore.dataset import vision

    return vision.Decode()(np.frombuffer(data, np.uint8))


def _mode(t, m):
    if not (_is_random(t) or _is_random(m)):
        return "image"
    found = entry_for(t)
    if isinstance(m, Twin) and m.random and found is not None and found.twin is type(m) and found.replay:
        return "replayed"
    return "statistics"


def _call(op, image, side, record):
    try:
        return op(image)
    except UserError:
        raise
    except Exception as exc:
        name = record["name"] if side == "--torch" else record["ms_op"]
        raise UserError(f"{side} stage {record['stage']} ({name}) failed on a {getattr(image, 'shape', '')} "
                        f"image: {type(exc).__name__}: {error_line(exc)}") from exc


def _stats_diff(t, m, torch_in, ms_in, draws):
    """:func:`compare_features` over ``draws`` draws of the stage on each side, from the same input.

    Returns ``(levels, z, side that repeated itself or None)``. With ``mindspore.dataset.config.set_seed``
    set (by anything earlier in the process), a MindSpore random op called eagerly draws the same output on
    every call (measured: 2.10); its draws are then taken again under a seed per draw, and the process's
    seed is put back. A side whose draws still repeat is named instead of judged.
    """
    record = {"stage": "?", "name": type(t).__name__, "ms_op": type(m).__name__}
    ours = [as_array(_call(t, torch_in, "--torch", record)) for _ in range(draws)]

    def ms_draw():
        return _image_array(_call(m, ms_in, "--ms", record), "--ms", record["ms_op"])

    theirs = [ms_draw() for _ in range(draws)]
    if all(np.array_equal(theirs[0], o) for o in theirs[1:]):
        theirs = _reseeded(ms_draw, draws)
    for side, outputs in (("torchvision", ours), ("MindSpore", theirs)):
        if all(np.array_equal(outputs[0], o) for o in outputs[1:]):
            return None, None, side
    return (*compare_features(ours, theirs), None)


def _reseeded(draw, draws):
    """``draws`` calls of ``draw()``, each under its own ``mindspore.dataset`` seed; the process's seed restored."""
    import mindspore.dataset as msds

    base = msds.config.get_seed()
    outputs = []
    try:
        for i in range(draws):
            msds.config.set_seed((base + 1 + i) % 2**32)
            outputs.append(draw())
    finally:
        msds.config.set_seed(base)
    return outputs


def _judge(record):
    """(flagged, reason) of one stage record."""
    if record["mode"] == "statistics":
        z = record.get("stats_z") or 0.0
        if z > TRANSFORM_STATS_MAX_Z:
            return True, (f"random, not replayable: per-channel mean/std over the draws differ by "
                          f"{record['stats_diff']:.3g} levels, {z:.3g} standard errors > {TRANSFORM_STATS_MAX_Z:g}")
        return False, None
    alone = record["stage_max_diff"] is not None
    diff = record["stage_max_diff"] if alone else record["max_diff"]
    bound = record.get("bound", 0)
    if (alone or record["comparable"]) and diff is not None and diff > bound:
        unit = "levels of 255" if record.get("dtype") == "uint8" else "float"
        return True, f"max |diff| {diff:.3g} > {bound:g} ({unit})"
    return False, None


def _suggestion(name, t):
    found = entry_for(t) if t is not None else None
    if found is None:
        return None
    if found.twin is None:
        return f"{name}: {found.why_no_twin}"
    try:
        twin_of(t)
    except UserError:
        return None
    return (f"use msport.data.transforms.{found.twin.__name__} (from_torchvision builds it from your "
            f"torchvision {name}); MindSpore's {found.ms_op}: {found.ms_differs}")


def _result(records, notes, images, grid):
    first = None
    for record in records:
        record["flagged"], reason = _judge(record)
        if reason:
            record["reason"] = reason
        if record["flagged"] and first is None:
            first = record
    summary = {"images": [name for name, _, _ in images], "stages": len(records),
               "first_divergence": first["name"] if first else None,
               "first_divergence_stage": first["stage"] if first else None,
               "max_diff": records[-1]["max_diff"] if records else None,
               "replayed": sum(r["mode"] == "replayed" for r in records),
               "statistics": sum(r["mode"] == "statistics" for r in records)}
    if first is not None and first.get("_transform") is not None:
        summary["suggestion"] = _suggestion(first["name"], first["_transform"])
    for record in records:
        record.pop("_transform", None)
    return DataComparison(records, summary, notes, grid)


def batch_outputs(torch_side, ms_side, images):
    """Each side's final outputs, in order: ``(torch arrays, MindSpore arrays)``.

    Op sequences run on ``images`` (MindSpore's from the encoded bytes when it starts with
    Decode); data sets give their first ``len(images)`` items (a row's first column).
    """
    if is_torch_dataset(torch_side) or is_ms_dataset(ms_side):
        if not (is_torch_dataset(torch_side) and is_ms_dataset(ms_side)):
            raise UserError("--torch and --ms must both be transforms (or op lists) or both data sets "
                            "(a torch Dataset and a mindspore.dataset pipeline), not one of each")
        return _dataset_outputs(torch_side, ms_side, len(images))
    from PIL import Image

    torch_chain = _Chain(torch_transforms(torch_side))
    ms_ops = list(ms_side) if isinstance(ms_side, (list, tuple)) else [ms_side]
    decode = bool(ms_ops) and _is_decode(ms_ops[0])
    ms_chain = _Chain(ms_ops[1:] if decode else ms_ops)
    record = {"stage": "output", "name": "the pipeline", "ms_op": "the pipeline"}
    ours = [_image_array(_call(torch_chain, Image.fromarray(array), "--torch", record), "--torch", "output")
            for _, _, array in images]
    theirs = [_image_array(_call(ms_chain, _decode(data) if decode else array, "--ms", record), "--ms", "output")
              for _, data, array in images]
    return ours, theirs


def _dataset_outputs(torch_dataset, ms_dataset, limit):
    iterator = ms_dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)
    ours, theirs = [], []
    try:
        for k, row in zip(range(min(limit, len(torch_dataset))), iterator):
            item = torch_dataset[k]
            ours.append(_image_array(item[0] if isinstance(item, (tuple, list)) else item, "--torch", "output"))
            theirs.append(_image_array(row[0], "--ms", "output"))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"reading the data sets failed: {type(exc).__name__}: {first_line(exc)}") from exc
    if not ours:
        raise UserError("the data sets gave no items to compare")
    return ours, theirs


def _compare_datasets(torch_dataset, ms_dataset, limit):
    """Item k of the torch Dataset against row k of the MindSpore pipeline (first column), outputs only."""
    ours, theirs = _dataset_outputs(torch_dataset, ms_dataset, limit)
    record = {"stage": 0, "name": "output", "ms_op": "output", "mode": "image", "max_diff": 0.0, "mean_diff": 0.0,
                  "stage_max_diff": None, "comparable": True, "stats_diff": None}
    for k, (a, b) in enumerate(zip(ours, theirs)):
        view = aligned(b, a)
        if view is None:
            raise UserError(f"item {k}: the outputs' shapes differ: torch {a.shape}, MindSpore {b.shape}")
        diff = np.abs(a.astype(np.float64) - view.astype(np.float64))
        record["max_diff"] = max(record["max_diff"], float(diff.max()))
        record["mean_diff"] = max(record["mean_diff"], float(diff.mean()))
    record.update(torch_shape=tuple(ours[0].shape), ms_shape=tuple(theirs[0].shape), dtype=str(ours[0].dtype),
                  bound=bound_for(ours[0]))
    record["stats_diff"], record["stats_z"] = compare_features(ours, [aligned(b, a) for a, b in zip(ours, theirs)])
    notes = [(f"data sets compared item by item ({len(ours)} items, outputs only); if either is random, "
             f"judge by stats_diff and stats_z (per-channel mean/std, levels)")]
    names = [f"item {k}" for k in range(len(ours))]
    return _result([record], notes, [(n, None, None) for n in names], None)


# --- presentation -----------------------------------------------------------------------------------

TABLE_COLUMNS = [
    Column("stage", "stage"),
    Column("torchvision", "name", left=True),
    Column("MindSpore", "ms_op", left=True),
    Column("mode", "mode", left=True),
    Column("shape", "torch_shape"),
    Column("max|d|", "max_diff"),
    Column("mean|d|", "mean_diff"),
    Column("stage alone max|d|", "stage_max_diff"),
    Column("stats|d|", "stats_diff"),
    Column("stats z", "stats_z"),
    Column("bound", "bound"),
    Column("flag", "flagged", fmt=flag_mark),
]


def plots_for(result):
    """The report's image grid: torch, MindSpore and their difference at the first divergent stage."""
    if result.grid is None:
        return []
    return [Figure("first_divergence.png", lambda records, path: draw_grid(*result.grid, path))]


SORT_KEY = "max_diff"

__all__ = ["SORT_KEY", "TABLE_COLUMNS", "DataComparison", "aligned", "compare_data", "load_images", "plots_for"]
