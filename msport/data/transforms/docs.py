"""docs/data.md's two tables, generated: the correspondence (from ENTRIES) and the proof (measured).

The proof runs each supported transform on scikit-learn's two sample photos (china.jpg,
flower.jpg: shipped, no download). Column "MindSpore op" is the op a port would write, given the
same arguments, on a configuration with no randomness left (a fixed jitter factor, p=1, a crop
the size of the padded image), because MindSpore's own draws cannot be replayed. Column "twin"
is msport's twin on the random configuration itself, with ``DRAWS`` draws per photo replayed
on the torch side, through both torchvision APIs (v1 and v2). ``python -m msport.data.transforms``
rewrites the page; tests/test_transforms.py checks that it is up to date.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .base import bound_for, error_line, rng_for
from .pipeline import as_array, run_twins, twin_of
from .table import ENTRIES, entry

DOCS_PAGE = "docs/data.md"
MARKERS = {"correspondence": ("<!-- transforms table: begin -->", "<!-- transforms table: end -->"),
           "proof": ("<!-- transforms proof: begin -->", "<!-- transforms proof: end -->")}
DRAWS = 4
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
_RATIO = 640 / 427  # both sample photos are 427x640: this ratio and scale 1 crop the whole photo


@dataclass(frozen=True)
class Proof:
    name: str  # the torchvision class
    label: str  # the configuration, as a user writes it
    random: Callable  # T (torchvision.transforms or .v2) -> the transform the twin is measured on
    fixed: Callable  # T -> a configuration without randomness, for MindSpore's op
    ms: Callable | None  # (vision, transforms, ms) -> MindSpore's op on the fixed configuration
    no_ms: str = ""  # why there is no fixed configuration for MindSpore's op (when ms is None)


def _cases():
    return (
        Proof("Resize", "Resize(224)", lambda T: T.Resize(224), lambda T: T.Resize(224), lambda v, t, m: v.Resize(224)),
        Proof("Resize", "Resize(224, BICUBIC, max_size=300)",
              lambda T: T.Resize(224, T.InterpolationMode.BICUBIC, max_size=300),
              lambda T: T.Resize(224, T.InterpolationMode.BICUBIC, max_size=300),
              lambda v, t, m: v.Resize(224, v.Inter.BICUBIC)),
        Proof("CenterCrop", "CenterCrop(224)", lambda T: T.CenterCrop(224), lambda T: T.CenterCrop(224),
              lambda v, t, m: v.CenterCrop(224)),
        Proof("Pad", "Pad(4, padding_mode='reflect')", lambda T: T.Pad(4, padding_mode="reflect"),
              lambda T: T.Pad(4, padding_mode="reflect"), lambda v, t, m: v.Pad(4, padding_mode=v.Border.REFLECT)),
        Proof("RandomCrop", "RandomCrop(400, padding=4) [MindSpore: (435, 648), padding=4]",
              lambda T: T.RandomCrop(400, padding=4), lambda T: T.RandomCrop((435, 648), padding=4),
              lambda v, t, m: v.RandomCrop((435, 648), padding=4)),
        Proof("RandomResizedCrop", "RandomResizedCrop(224) [MindSpore: scale=(1, 1), ratio=640/427]",
              lambda T: T.RandomResizedCrop(224),
              lambda T: T.RandomResizedCrop(224, scale=(1, 1), ratio=(_RATIO, _RATIO)),
              lambda v, t, m: v.RandomResizedCrop(224, scale=(1, 1), ratio=(_RATIO, _RATIO))),
        Proof("RandomHorizontalFlip", "RandomHorizontalFlip() [MindSpore: p=1]", lambda T: T.RandomHorizontalFlip(),
              lambda T: T.RandomHorizontalFlip(1.0), lambda v, t, m: v.RandomHorizontalFlip(1.0)),
        Proof("RandomVerticalFlip", "RandomVerticalFlip() [MindSpore: p=1]", lambda T: T.RandomVerticalFlip(),
              lambda T: T.RandomVerticalFlip(1.0), lambda v, t, m: v.RandomVerticalFlip(1.0)),
        Proof("RandomRotation", "RandomRotation(30) [MindSpore: (30, 30)]", lambda T: T.RandomRotation(30),
              lambda T: T.RandomRotation((30, 30)), lambda v, t, m: v.RandomRotation((30, 30))),
        Proof("ColorJitter", "ColorJitter(0.4, 0.4, 0.4, 0.1) [MindSpore: brightness=(1.3, 1.3)]",
              lambda T: T.ColorJitter(0.4, 0.4, 0.4, 0.1), lambda T: T.ColorJitter(brightness=(1.3, 1.3)),
              lambda v, t, m: v.RandomColorAdjust(brightness=(1.3, 1.3))),
        Proof("ColorJitter", "[MindSpore: contrast=(1.3, 1.3)]", lambda T: T.ColorJitter(contrast=0.4),
              lambda T: T.ColorJitter(contrast=(1.3, 1.3)), lambda v, t, m: v.RandomColorAdjust(contrast=(1.3, 1.3))),
        Proof("ColorJitter", "[MindSpore: saturation=(1.3, 1.3)]", lambda T: T.ColorJitter(saturation=0.4),
              lambda T: T.ColorJitter(saturation=(1.3, 1.3)),
              lambda v, t, m: v.RandomColorAdjust(saturation=(1.3, 1.3))),
        Proof("ColorJitter", "[MindSpore: hue=(0.1, 0.1)]", lambda T: T.ColorJitter(hue=0.1),
              lambda T: T.ColorJitter(hue=(0.1, 0.1)), lambda v, t, m: v.RandomColorAdjust(hue=(0.1, 0.1))),
        Proof("GaussianBlur", "GaussianBlur(9, (0.1, 3.0)) [MindSpore: sigma 1.5]",
              lambda T: T.GaussianBlur(9, (0.1, 3.0)), lambda T: T.GaussianBlur(9, 1.5),
              lambda v, t, m: v.GaussianBlur(9, 1.5)),
        Proof("ToTensor", "ToTensor()", lambda T: T.ToTensor(), lambda T: T.ToTensor(), lambda v, t, m: v.ToTensor()),
        Proof("PILToTensor", "PILToTensor()", lambda T: T.PILToTensor(), lambda T: T.PILToTensor(),
              lambda v, t, m: v.HWC2CHW()),
        Proof("ToImage", "v2.ToImage()", lambda T: T.ToImage(), lambda T: T.ToImage(), lambda v, t, m: v.HWC2CHW()),
        Proof("ConvertImageDtype", "ConvertImageDtype(torch.float32)", lambda T: T.ConvertImageDtype(_float32()),
              lambda T: T.ConvertImageDtype(_float32()), lambda v, t, m: t.TypeCast(m.float32)),
        Proof("ToDtype", "v2.ToDtype(torch.float32, scale=True)", lambda T: T.ToDtype(_float32(), scale=True),
              lambda T: T.ToDtype(_float32(), scale=True), lambda v, t, m: t.TypeCast(m.float32)),
        Proof("Normalize", "Normalize(ImageNet mean, std)", lambda T: T.Normalize(MEAN, STD),
              lambda T: T.Normalize(MEAN, STD), lambda v, t, m: v.Normalize(MEAN, STD)),
        Proof("RandomErasing", "RandomErasing(p=0.9, value='random')",
              lambda T: T.RandomErasing(p=0.9, value="random"), lambda T: None, None,
              "no fixed configuration: the position is random"),
        Proof("RandAugment", "RandAugment()", lambda T: T.RandAugment(), lambda T: None, None,
              "no fixed configuration: the operations are random"),
        Proof("TrivialAugmentWide", "TrivialAugmentWide()", lambda T: T.TrivialAugmentWide(), lambda T: None, None,
              "no fixed configuration: the operation is random"),
    )


def _float32():
    import torch

    return torch.float32


def sample_photos():
    """scikit-learn's two sample photos (427x640 RGB uint8): ``[(name, array), ...]``."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    return [(fn.rsplit("/", 1)[-1], image) for fn, image in zip(photos.filenames, photos.images)]


def prepared_input(kind, image):
    """``(numpy input, torch input)`` of a transform that takes ``kind`` (see TransformEntry.input)."""
    import torch
    from PIL import Image

    if kind == "pil":
        return image, Image.fromarray(image)
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    if kind == "tensor":
        chw = chw.astype(np.float32) / np.float32(255)
    return chw, torch.from_numpy(chw.copy())


def difference(a, b):
    """(max, mean) of |a - b| over two stage outputs; None when their shapes differ."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return None
    d = np.abs(a - b)
    return float(d.max()), float(d.mean())


def measure_twin(case, photos):
    """The twin's worst (max, mean) difference over v1 and v2, ``DRAWS`` replayed draws per photo, and the bound."""
    import torchvision.transforms as T1
    import torchvision.transforms.v2 as T2

    worst, mean, bound = 0.0, 0.0, None
    for T in (T1, T2):
        if not hasattr(T, case.name):
            continue
        transform = case.random(T)
        twin = twin_of(transform)
        for index, (_, image) in enumerate(photos):
            x, tx = prepared_input(entry(case.name).input, image)
            for draw in range(DRAWS if twin.random else 1):
                outputs, params = run_twins([twin], x, rng_for(0, draw, index))
                theirs = as_array(_replay_one(transform, tx, params[0]))
                diff = difference(theirs, outputs[0])
                if diff is None:
                    raise AssertionError(f"{case.label}: shapes {theirs.shape} and {outputs[0].shape}")
                worst, mean = max(worst, diff[0]), max(mean, diff[1])
                bound = bound_for(theirs)
    return worst, mean, bound


def _replay_one(transform, torch_input, params):
    found = entry(type(transform).__name__)
    if params is None:
        return transform(torch_input)
    from .pipeline import functional_for

    return found.replay(functional_for(transform), transform, torch_input, params)


def measure_ms(case, photos):
    """MindSpore's op on the fixed configuration: (max, mean) over both photos, or a short text why not."""
    if case.ms is None:
        return case.no_ms
    import mindspore.dataset.transforms as mtransforms
    import torchvision.transforms as T1
    from mindspore.dataset import vision

    from msport._mindspore import ms

    torch_transform = case.fixed(T1) if hasattr(T1, case.name) else case.fixed(__import__(
        "torchvision.transforms.v2", fromlist=["v2"]))
    op = case.ms(vision, mtransforms, ms)
    worst, mean = 0.0, 0.0
    for _, image in photos:
        x, tx = prepared_input(entry(case.name).input, image)
        theirs = as_array(torch_transform(tx))
        try:
            ours = np.asarray(op(x))
        except Exception as exc:  # noqa: BLE001 - MindSpore refuses the input: that is the finding
            return "refuses it: " + _first_words(exc)
        diff = difference(theirs, ours)
        if diff is None:
            return f"shape {ours.shape}, torchvision {theirs.shape}"
        worst, mean = max(worst, diff[0]), max(mean, diff[1])
    return worst, mean


def _first_words(exc):
    text = error_line(exc)
    return text if len(text) <= 90 else text[:87] + "..."


def _fmt(value):
    return f"{value:.3g}" if value else "0"


def proof_table(photos=None):
    photos = photos if photos is not None else sample_photos()
    rows = [("| torchvision | configuration | MindSpore's op: max / mean diff | msport twin: max / mean diff | "
            "bound | twin within |"), "| --- | --- | --- | --- | --- | --- |"]
    for case in _cases():
        ms_result = measure_ms(case, photos)
        ms_text = ms_result if isinstance(ms_result, str) else f"{_fmt(ms_result[0])} / {_fmt(ms_result[1])}"
        worst, mean, bound = measure_twin(case, photos)
        verdict = "yes" if worst <= bound else f"no: {entry(case.name).exactness}"
        rows.append(f"| {case.name} | {case.label} | {ms_text} | {_fmt(worst)} / {_fmt(mean)} | {bound:g} | "
                    f"{verdict} |")
    return "\n".join(rows) + "\n"


def correspondence_table():
    rows = ["| torchvision (v1 and v2) | MindSpore op | how it differs at its defaults | msport twin | twin's exactness |",
            "| --- | --- | --- | --- | --- |"]
    for e in ENTRIES:
        twin = f"msport.data.transforms.{e.twin.__name__}" if e.twin else e.why_no_twin
        rows.append(f"| {e.torch_name} | {e.ms_op} | {e.ms_differs} | {twin} | {e.exactness} |")
    return "\n".join(rows) + "\n"


def section(text, which):
    begin, end = MARKERS[which]
    return text[text.index(begin) + len(begin):text.index(end)].strip("\n") + "\n"


def rewrite(text, tables):
    for which, table in tables.items():
        begin, end = MARKERS[which]
        text = f"{text[:text.index(begin) + len(begin)]}\n{table}{text[text.index(end):]}"
    return text
