"""The ``data`` check: the per-channel mean and std of a batch from each pipeline.

A model ported with exact weights still loses accuracy when its input differs: a missing
``/ 255``, Normalize given pixel-scale means, channels in another order, a resize without
antialiasing. Each side's pipeline runs on the same images (or, for data sets, gives its first
items); every channel's mean and std over the batch are compared with
:func:`msport.diagnose.compare_data.compare_features` (standard errors over the images, so
random augmentation does not cry wolf).
"""

import numpy as np

from msport.diagnose.audit.records import record as _record
from msport.diagnose.compare_data import (
    aligned,
    batch_outputs,
    channel_features,
    compare_features,
)
from msport.errors import UserError
from msport.tolerances import TRANSFORM_STATS_MAX_Z


def data_records(torch_side, ms_side, images):
    """One record per channel statistic (``mean c``/``std c``), torch's batch against MindSpore's."""
    ours, theirs = batch_outputs(torch_side, ms_side, images)
    if len(ours) < 2:
        raise UserError("the data check needs a batch of at least 2 images")
    for a, b in zip(ours, theirs):
        if aligned(b, a) is None:
            raise UserError(f"the pipelines' outputs have different shapes: torch {a.shape}, MindSpore {b.shape}; "
                            f"compare them stage by stage with msport compare-data")
    theirs = [aligned(b, a) for a, b in zip(ours, theirs)]
    torch_features = np.stack([channel_features(a) for a in ours])
    ms_features = np.stack([channel_features(b) for b in theirs])
    channels = torch_features.shape[1] // 2
    scale = 1.0 if ours[0].dtype == np.uint8 else 255.0  # features are in pixel levels; records in output units
    records = []
    for index in range(torch_features.shape[1]):
        kind, channel = ("mean", index) if index < channels else ("std", index - channels)
        delta, z = compare_features(torch_features[:, index:index + 1], ms_features[:, index:index + 1], raw=True)
        want, got = torch_features[:, index].mean() / scale, ms_features[:, index].mean() / scale
        reasons = [f"batch {kind} {got:.4g} vs torch's {want:.4g} ({z:.3g} standard errors over "
                   f"{len(ours)} images)" if z > TRANSFORM_STATS_MAX_Z else None]
        records.append(_record("data", f"{kind} of channel {channel}", f"{want:.4g}", f"{got:.4g}", reasons,
                               torch_value=float(want), ms_value=float(got), z=z, levels=delta))
    return records
