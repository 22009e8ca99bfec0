"""The ``data`` check: the per-channel mean and std of a batch from each input pipeline.

A model ported with exact weights still loses accuracy when its input differs: a missing
``/ 255``, Normalize given pixel-scale means or skipped, channels in another order. Each side's
pipeline runs ``draws`` times over the same images (a data set gives its first items), and the
batch's per-channel mean and std (over every pixel of every output) are compared: the means may
differ by :data:`~msport.tolerances.AUDIT_DATA_MEAN_STD_FRACTION` of torch's std, the stds by the
ratio range :data:`~msport.tolerances.AUDIT_DATA_STD_RATIO_RANGE`. Those bounds are loose on
purpose: the check is for the order-of-magnitude mistakes above; a resize without antialiasing is
``msport compare-data``'s to find. Random pipelines drawing independently move a small batch's
statistics too, so a difference counts only when it is also significant: the outputs are paired
(same image, same draw number), and the per-output differences must be
:data:`~msport.tolerances.TRANSFORM_STATS_MAX_Z` standard errors from zero. A deterministic pair
has no spread, so any difference over the bounds is significant.
"""

import numpy as np

from msport.diagnose.audit.records import record as _record
from msport.diagnose.compare_data import (
    aligned,
    batch_outputs,
    channel_features,
    is_torch_dataset,
)
from msport.errors import UserError
from msport.tolerances import (
    AUDIT_DATA_MEAN_STD_FRACTION,
    AUDIT_DATA_STD_RATIO_RANGE,
    TRANSFORM_STATS_MAX_Z,
)

DRAWS = 8


def batch_statistics(outputs):
    """Per-channel (means, stds) over every pixel of a batch of CHW (or HWC) outputs."""
    stack = np.stack([np.asarray(o, np.float64) for o in outputs])
    if stack.ndim == 3:
        stack = stack[:, None]
    elif stack.shape[-1] in (1, 3, 4) and stack.shape[1] not in (1, 3, 4):
        stack = np.moveaxis(stack, -1, 1)
    flat = np.moveaxis(stack, 1, 0).reshape(stack.shape[1], -1)
    return flat.mean(axis=1), flat.std(axis=1)


def paired_z(ours, theirs):
    """Per feature (channel means, then stds): mean paired difference over its standard error."""
    d = np.stack([channel_features(b) - channel_features(a) for a, b in zip(ours, theirs)])
    mean = np.abs(d.mean(axis=0))
    error = d.std(axis=0, ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.zeros_like(mean)
    return np.where(mean == 0, 0.0, mean / np.maximum(error, 1e-12))


def data_records(torch_side, ms_side, images, draws=DRAWS):
    """One record per channel statistic (``mean of channel c``/``std of channel c``), torch's batch against MindSpore's."""
    ours, theirs = [], []
    for _ in range(1 if is_torch_dataset(torch_side) else draws):
        a, b = batch_outputs(torch_side, ms_side, images)
        ours += a
        theirs += b
    for a, b in zip(ours, theirs):
        if aligned(b, a) is None:
            raise UserError(f"the pipelines' outputs have different shapes: torch {a.shape}, MindSpore {b.shape}; "
                            f"compare them stage by stage with msport compare-data")
    theirs = [aligned(b, a) for a, b in zip(ours, theirs)]
    torch_mean, torch_std = batch_statistics(ours)
    ms_mean, ms_std = batch_statistics(theirs)
    z = paired_z(ours, theirs)
    significant = f"; {{:.3g}} standard errors over {len(ours)} paired outputs"
    low, high = AUDIT_DATA_STD_RATIO_RANGE
    records = []
    for c in range(len(torch_mean)):
        shift = abs(ms_mean[c] - torch_mean[c]) / max(torch_std[c], 1e-12)
        flagged = shift > AUDIT_DATA_MEAN_STD_FRACTION and z[c] > TRANSFORM_STATS_MAX_Z
        reason = (f"batch mean {ms_mean[c]:.4g} vs torch's {torch_mean[c]:.4g}: {shift:.3g} of torch's std "
                  f"> {AUDIT_DATA_MEAN_STD_FRACTION:g}" + significant.format(z[c])) if flagged else None
        records.append(_record("data", f"mean of channel {c}", f"{torch_mean[c]:.4g}", f"{ms_mean[c]:.4g}",
                               [reason], torch_value=float(torch_mean[c]), ms_value=float(ms_mean[c]),
                               std_fraction=float(shift), z=float(z[c])))
    for c in range(len(torch_std)):
        ratio = ms_std[c] / max(torch_std[c], 1e-12)
        k = len(torch_mean) + c
        flagged = not low <= ratio <= high and z[k] > TRANSFORM_STATS_MAX_Z
        reason = (f"batch std {ms_std[c]:.4g} vs torch's {torch_std[c]:.4g}: ratio {ratio:.3g} outside "
                  f"[{low:g}, {high:g}]" + significant.format(z[k])) if flagged else None
        records.append(_record("data", f"std of channel {c}", f"{torch_std[c]:.4g}", f"{ms_std[c]:.4g}", [reason],
                               torch_value=float(torch_std[c]), ms_value=float(ms_std[c]), std_ratio=float(ratio),
                               z=float(z[k])))
    return records
