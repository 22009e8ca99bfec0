"""What every twin shares: the image checks, the PIL round trip, and seeded, replayable draws.

A twin takes what a ``mindspore.dataset`` pipeline carries, a numpy array, and computes what
torchvision computes. Before ``ToTensor`` torchvision works on PIL images, so the twins take
HWC (or HW) uint8 arrays, as ``vision.Decode()`` gives them, and compute with PIL where
torchvision's PIL path does: the same library gives the same pixels. After ``ToTensor`` they
take CHW float32 arrays, as torchvision's tensors are.

A random twin separates drawing from applying: ``draw(rng, shape)`` returns its parameters as a
plain dict (the crop box, the flip, the jitter factors), and ``apply(image, params)`` uses them.
The same dict, given to :func:`msport.data.transforms.replay.torch_replay`, makes torchvision's
transform do exactly that, so two pipelines can be compared image by image.
"""

import os

import numpy as np

from msport.data.errors import DataError

#: torchvision's InterpolationMode values -> PIL's resampling filters (PIL.Image.Resampling).
PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}
_FROM_PIL = {code: name for name, code in PIL_FILTERS.items()}


def interpolation_name(mode):
    """``InterpolationMode.BILINEAR``, ``"bilinear"`` or PIL's ``2`` -> ``"bilinear"``."""
    value = getattr(mode, "value", mode)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = _FROM_PIL.get(int(value), value)
    if value not in PIL_FILTERS:
        raise DataError(f"interpolation {mode!r} has no PIL filter; choose one of {', '.join(PIL_FILTERS)} "
                        f"(torchvision's PIL path supports only these)")
    return value


def pil_image(array, name):
    """An HW or HWC uint8 array as the PIL image torchvision would hold."""
    from PIL import Image

    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise DataError(f"{name} takes an HWC or HW uint8 image (as vision.Decode() gives, before ToTensor); "
                        f"got {array.dtype} of shape {array.shape}")
    return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)


def from_pil(image, like):
    """Back to numpy, with the channel axis of ``like`` (a 1-channel HWC input stays HWC)."""
    out = np.asarray(image)
    return out[:, :, None] if np.ndim(like) == 3 and out.ndim == 2 else out


def hw(shape, chw=False):
    """(height, width) of an HWC/HW (or, with ``chw``, CHW) shape."""
    return (shape[-2], shape[-1]) if chw else (shape[0], shape[1])


def chw_float(array, name):
    array = np.asarray(array)
    if array.ndim != 3 or not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{name} takes a CHW float image (after ToTensor); got {array.dtype} of shape {array.shape}")
    return array


class Twin:
    """A torchvision transform's twin: a picklable callable for ``dataset.map(operations=[...])``."""

    #: The torchvision class this twin follows (set by each subclass; the table reads it).
    torch_name = ""
    random = False

    def draw(self, rng, shape):
        """The parameters of one application to an image of ``shape``; None for a deterministic twin."""
        return

    def apply(self, image, params=None):
        """The twin on a numpy image; twins that compute with PIL define :meth:`apply_pil` instead."""
        return from_pil(self.apply_pil(pil_image(image, self.torch_name), params), image)

    #: Twins that compute with PIL define ``apply_pil(pil_image, params) -> pil_image``; a fused
    #: pipeline then hands the PIL image from one to the next without converting it to numpy and back.
    apply_pil = None

    def params(self, shape):
        """Draw from this process's generator (None for a deterministic twin)."""
        return self.draw(self._generator(), shape) if self.random else None

    def __call__(self, image):
        return self.apply(image, self.params(np.shape(image)))

    def _seed(self, seed):
        """Random twins call this from ``__init__``: the process that builds the op is remembered."""
        self.seed = seed
        self._home = os.getpid()
        self._pid = None

    def _generator(self):
        """This process's generator: seeded from ``seed``, and distinct in each worker process.

        mindspore.dataset copies an operation into its worker processes; with one generator state
        copied, every worker would draw the same crops. Mixing the process id into the seed outside
        the process that built the op keeps the draws apart; in that process a seed reproduces.
        """
        pid = os.getpid()
        if self._pid != pid:
            if self.seed is None:
                self._rng = np.random.default_rng()
            else:
                key = list(self.seed) if isinstance(self.seed, (list, tuple)) else [self.seed]
                self._rng = np.random.default_rng(key if pid == self._home else key + [pid])
            self._pid = pid
        return self._rng

    def __repr__(self):
        shown = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def error_line(exc):
    """The line of an op's exception that says what was wrong.

    mindspore.dataset wraps its ops' errors in a banner ("Exception thrown from dataset pipeline...")
    and a C++ call stack; the finding is the ``[ERROR]`` line between them.
    """
    from msport.errors import first_line

    for line in str(exc).splitlines():
        if line.strip().startswith("[ERROR]"):
            return line.strip()[len("[ERROR]"):].strip()
    return first_line(exc)


def bound_for(output):
    """The twin's bound for an output like this one: uint8 pixel levels or float (msport.tolerances)."""
    from msport.tolerances import TRANSFORM_FLOAT_MAX_ABS, TRANSFORM_UINT8_MAX_ABS

    return TRANSFORM_UINT8_MAX_ABS if np.asarray(output).dtype == np.uint8 else TRANSFORM_FLOAT_MAX_ABS


def rng_for(seed, epoch=0, index=0):
    """The generator of image ``index`` in ``epoch``: ``default_rng([seed, epoch, index])``.

    Extends :func:`msport.data.plan.epoch_plan`'s ``(seed, epoch)`` seeding by the image's index,
    so any image of any epoch can be redrawn alone, in any order, on either side.
    """
    return np.random.default_rng([seed, epoch, index])


def uniform(rng, low, high):
    return float(rng.uniform(low, high)) if high > low else float(low)
