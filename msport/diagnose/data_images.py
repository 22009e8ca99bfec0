"""The images compare-data runs on, and the picture of where two pipelines part.

Images come from a folder or, by default, scikit-learn's two sample photos (china.jpg and
flower.jpg ship with scikit-learn: no download). Each is kept encoded too, for a MindSpore pipeline
that starts with ``vision.Decode()``. matplotlib is imported only to draw, with the Agg backend.
"""

import glob
import os

import numpy as np

from msport.errors import UserError, first_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def load_images(folder=None, limit=None):
    """``[(name, encoded bytes, HWC uint8 array)]`` from ``folder``, or scikit-learn's two sample photos."""
    from PIL import Image

    if folder is None:
        import sklearn.datasets

        folder = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
        paths = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    else:
        if os.path.isfile(folder):
            raise UserError(f"--images {folder}: a file, not a folder; give the folder that holds the images")
        if not os.path.isdir(folder):
            raise UserError(f"--images {folder}: no such folder")
        paths = sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(IMAGE_EXTENSIONS))
        if not paths:
            raise UserError(f"--images {folder}: no images there (looked for {', '.join(IMAGE_EXTENSIONS)}); "
                            f"point it at a folder of photos")
    images = []
    for path in paths[:limit]:
        with open(path, "rb") as f:
            data = f.read()
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
        except Exception as exc:
            raise UserError(f"{path}: not an image PIL can read ({first_line(exc)})") from exc
        images.append((os.path.basename(path), data, array))
    return images


def draw_grid(name, ours, theirs, path):
    """torchvision's image, MindSpore's and their |difference| (max over channels) side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = [_displayable(ours), _displayable(theirs)]
    diff = np.abs(show[0].astype(np.float64) - show[1].astype(np.float64))
    diff = diff.max(axis=-1) if diff.ndim == 3 else diff
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, image, title in zip(axes, show + [diff], ("torchvision", "MindSpore", f"|difference| (max {diff.max():.3g})")):
        ax.imshow(image, cmap="magma" if image is diff else None)
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(f"first divergent stage: {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _displayable(array):
    """An HWC (or HW) image for imshow: CHW moved, floats stretched to [0, 1]."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint8:
        return array
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array, dtype=np.float64)
