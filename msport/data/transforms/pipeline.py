"""Whole pipelines: the twin of a torchvision Compose, and running both sides with the same draws.

:func:`from_torchvision` turns a ``Compose`` (v1 or v2) into a list of twins for
``dataset.map(operations=...)``. :func:`run_twins` and :func:`torch_replay` run the two sides
stage by stage on one image, the torch side with the parameters the twins drew, which is how
``msport compare-data`` and the tests compare random pipelines image by image.
"""

import numpy as np

from msport.data.errors import DataError

from .base import from_pil, pil_image, rng_for
from .table import ENTRIES, entry_for, twin_kwargs


def torch_transforms(compose):
    """The transforms inside a torchvision ``Compose`` (v1 or v2), a list, or one transform, nested ones flattened."""
    if isinstance(compose, (list, tuple)):
        return [t for inner in compose for t in torch_transforms(inner)]
    inner = getattr(compose, "transforms", None)
    if type(compose).__name__ == "Compose" and isinstance(inner, (list, tuple)):
        return torch_transforms(inner)
    return [compose]


def twin_of(transform, seed=None):
    """msport's twin of one torchvision transform; a one-line DataError where there is none."""
    found = entry_for(transform)
    if found is None or found.twin is None:
        supported = ", ".join(e.torch_name for e in ENTRIES if e.twin)
        why = f" ({found.why_no_twin})" if found is not None else ""
        raise DataError(f"no MindSpore twin of {type(transform).__module__}.{type(transform).__name__}{why}; "
                        f"twins exist for: {supported}")
    kwargs = twin_kwargs(found, transform)
    return found.twin(**kwargs, seed=seed) if found.random else found.twin(**kwargs)


def from_torchvision(compose, seed=None, fuse=False):
    """The twin of a torchvision pipeline: a list of ops taking HWC uint8 numpy images.

    With ``seed``, random twin k draws from ``default_rng([seed, k])`` (reproducible); without,
    from fresh entropy, as torchvision's draws from torch's global generator are. ``fuse=True``
    gives one op running them all: mindspore.dataset converts every Python op's input and output
    between its tensors and numpy, so one op instead of five is faster (bench/data_transforms.py);
    the separate ops are what ``msport compare-data`` compares stage by stage.
    """
    twins = [twin_of(t, None if seed is None else (seed, k)) for k, t in enumerate(torch_transforms(compose))]
    return [Fused(twins)] if fuse else twins


class Fused:
    """Several twins as one op for ``dataset.map``, in order; PIL twins in a row share one PIL image."""

    def __init__(self, ops):
        self.ops = list(ops)

    def __call__(self, image):
        pil, like = None, image
        for op in self.ops:
            if getattr(op, "apply_pil", None) is not None:
                if pil is None:
                    pil, like = pil_image(image, op.torch_name), image
                pil = op.apply_pil(pil, op.params((pil.height, pil.width, len(pil.getbands()))))
                continue
            if pil is not None:
                image, pil = from_pil(pil, like), None
            image = op(image)
        return image if pil is None else from_pil(pil, like)

    def __repr__(self):
        return f"Fused({self.ops!r})"


def run_twins(twins, image, rng):
    """Each stage's output and drawn parameters: ``(outputs, params)``, one of each per twin."""
    outputs, params = [], []
    for twin in twins:
        drawn = twin.draw(rng, np.shape(image)) if twin.random else None
        image = twin.apply(image, drawn)
        outputs.append(image)
        params.append(drawn)
    return outputs, params


def torch_replay(transforms, image, params):
    """torchvision's outputs per stage, each random transform given the twin's drawn ``params``.

    ``image`` is an HWC uint8 array; the torch side starts from its PIL image, as a torchvision
    pipeline after ``Image.open`` does. A transform with no parameters (deterministic, or one
    whose twin is not a twin: ``params`` None) runs as itself.
    """
    from PIL import Image

    current = Image.fromarray(np.asarray(image))
    outputs = []
    for transform, drawn in zip(transforms, params):
        found = entry_for(transform)
        if drawn is not None and found is not None and found.replay is not None:
            current = found.replay(functional_for(transform), transform, current, drawn)
        else:
            current = transform(current)
        outputs.append(current)
    return outputs


def functional_for(transform):
    """torchvision's functional module of the transform's API (v1 or v2)."""
    if type(transform).__module__.startswith("torchvision.transforms.v2"):
        import torchvision.transforms.v2.functional as F
    else:
        import torchvision.transforms.functional as F
    return F


def as_array(output):
    """A stage's output as numpy: a PIL image as HWC (or HW) uint8, a tensor as its array."""
    if hasattr(output, "numpy") and hasattr(output, "detach"):
        return output.detach().cpu().numpy()
    return np.asarray(output)


__all__ = ["Fused", "as_array", "from_torchvision", "functional_for", "rng_for", "run_twins", "torch_replay",
           "torch_transforms", "twin_of"]
