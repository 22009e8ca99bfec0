"""CIFAR-10 in both of its official on-disk formats, read and written with numpy alone.

torchvision reads the python release (``cifar-10-batches-py``, pickled
batches); MindSpore's ``Cifar10Dataset`` reads the binary release
(``cifar-10-batches-bin``) and assumes 10,000 records in every file. Reading
either one here, into one in-memory layout, lets both frameworks train on the
very same arrays, and lets tests use small files of either format.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple, Union

import numpy as np

from .errors import DataError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

PYTHON_DIR = "cifar-10-batches-py"
BINARY_DIR = "cifar-10-batches-bin"
SPLITS = ("train", "test")

_TRAIN_STEMS = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_STEM = "test_batch"
_PYTHON_META = "batches.meta"
_BINARY_META = "batches.meta.txt"
_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE
_RECORD = 1 + _PIXELS
_NOT_FOUND_HINT = "pass --data-dir to where it is, or --download"
_REFETCH_HINT = "re-download it with --download"


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """Images and labels in memory, in the one layout both pipelines slice from.

    uint8 HWC RGB is what both CIFAR-10 formats decode to and what torchvision's
    image transforms take, and it keeps the 50,000 training images at 150 MB.
    ``images`` may instead hold token sequences, int64 of shape (N, L) (the digits read as 64
    pixel tokens): batches serve them as they are, since crops, flips and normalisation are
    image operations. Construction validates, so a malformed array fails here rather than as a
    shape error deep inside a worker process.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: Tuple[str, ...]
    name: str

    def __post_init__(self):
        images, labels = self.images, self.labels
        array = isinstance(images, np.ndarray)
        image_layout = array and images.dtype == np.uint8 and images.ndim == 4 and images.shape[3] == 3
        if not (image_layout or (array and images.dtype == np.int64 and images.ndim == 2)):
            raise DataError(f"{self.name}: images must be a uint8 array of shape (N, H, W, 3) or int64 token ids "
                            f"of shape (N, L), got {_describe(images)}")
        if not (isinstance(labels, np.ndarray) and labels.dtype == np.int64
                and labels.shape == (len(images),)):
            raise DataError(f"{self.name}: labels must be an int64 array of shape ({len(images)},), "
                            f"got {_describe(labels)}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            bad = labels[(labels < 0) | (labels >= len(self.classes))][0]
            raise DataError(f"{self.name}: label {bad} is outside 0..{len(self.classes) - 1} "
                            f"({len(self.classes)} classes)")

    def __len__(self):
        return len(self.labels)

    @property
    def is_sequence(self):
        """True for token ids (N, L), False for images (N, H, W, 3)."""
        return self.images.ndim == 2


DatasetLike = Union[ArrayDataset, Tuple[np.ndarray, np.ndarray]]


def load_cifar10(root, split: str = "train") -> ArrayDataset:
    """Read one split of CIFAR-10 from either official format, whatever the file sizes.

    ``root`` is the directory holding ``cifar-10-batches-py/`` or
    ``cifar-10-batches-bin/``, or one of those directories itself (recognised
    by name or by its meta file). The python format wins when both exist,
    since that is the copy torchvision trains from.
    """
    if split not in SPLITS:
        raise DataError(f"CIFAR-10 split must be one of {', '.join(SPLITS)}; got {split!r}")
    directory, fmt = _locate(Path(root).expanduser())
    stems = _TRAIN_STEMS if split == "train" else (_TEST_STEM,)
    if fmt == "python":
        names, meta, read_batch, read_meta = stems, _PYTHON_META, _read_python_batch, _read_python_meta
    else:
        names = tuple(f"{stem}.bin" for stem in stems)
        meta, read_batch, read_meta = _BINARY_META, _read_binary_batch, _read_binary_meta
    missing = [name for name in (*names, meta) if not (directory / name).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 {fmt} files missing in {directory}: {', '.join(missing)}; "
                        f"{_REFETCH_HINT} or pass --data-dir to a complete copy")
    classes = read_meta(directory / meta)
    parts = [read_batch(directory / name) for name in names]
    total = sum(len(labels) for _, labels in parts)
    images = np.empty((total, _SIDE, _SIDE, 3), dtype=np.uint8)
    start = 0
    for rows, _ in parts:
        images[start:start + len(rows)] = rows.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
        start += len(rows)
    labels = np.concatenate([labels for _, labels in parts])
    return ArrayDataset(images, labels, classes, f"cifar10/{split}")


def download_cifar10(root) -> Path:
    """Fetch and unpack the python release with torchvision (which checks the MD5s)."""
    try:
        from torchvision.datasets import CIFAR10
    except ImportError:
        raise DataError("--download needs torchvision: pip install torchvision") from None
    root = Path(root).expanduser()
    try:
        CIFAR10(str(root), train=True, download=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(f"downloading CIFAR-10 into {root} failed ({exc}); fetch "
                        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
                        "and extract it there") from exc
    return root / PYTHON_DIR


def write_cifar10_python(root, train: DatasetLike, test: DatasetLike) -> Path:
    """Write ``root/cifar-10-batches-py`` exactly as the official release lays it out.

    The training images are spread over the five ``data_batch_*`` files
    (unevenly, or some empty, when there are few), because every reader of the
    format, ours included, expects all five. Returns the directory written.
    """
    train, test = _writable(train, "train"), _writable(test, "test")
    directory = Path(root).expanduser() / PYTHON_DIR
    directory.mkdir(parents=True, exist_ok=True)
    chunks = _train_chunks(len(train))
    for number, (stem, index) in enumerate(zip(_TRAIN_STEMS, chunks), start=1):
        label = f"training batch {number} of {len(_TRAIN_STEMS)}"
        _dump_py2(directory / stem, _python_batch(train, index, label))
    _dump_py2(directory / _TEST_STEM, _python_batch(test, np.arange(len(test)), "testing batch 1 of 1"))
    _dump_py2(directory / _PYTHON_META, {
        b"num_cases_per_batch": len(chunks[0]),
        b"label_names": [name.encode() for name in train.classes],
        b"num_vis": _PIXELS,
    })
    return directory


def write_cifar10_binary(root, train: DatasetLike, test: DatasetLike) -> Path:
    """Write ``root/cifar-10-batches-bin`` exactly as the official release lays it out.

    Splits the training images over five files like :func:`write_cifar10_python`.
    Note that MindSpore's own ``Cifar10Dataset`` only reads files of exactly
    10,000 records. Returns the directory written.
    """
    train, test = _writable(train, "train"), _writable(test, "test")
    directory = Path(root).expanduser() / BINARY_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for stem, index in zip(_TRAIN_STEMS, _train_chunks(len(train))):
        _binary_records(train, index).tofile(directory / f"{stem}.bin")
    _binary_records(test, np.arange(len(test))).tofile(directory / f"{_TEST_STEM}.bin")
    (directory / _BINARY_META).write_text("".join(f"{name}\n" for name in train.classes) + "\n")
    return directory


def _locate(root: Path) -> Tuple[Path, str]:
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DataError(f"CIFAR-10 data directory {root} {what}; {_NOT_FOUND_HINT}")
    for sub, fmt in ((PYTHON_DIR, "python"), (BINARY_DIR, "binary")):
        if (root / sub).is_dir():
            return root / sub, fmt
    if root.name == PYTHON_DIR or (root / _PYTHON_META).is_file():
        return root, "python"
    if root.name == BINARY_DIR or (root / _BINARY_META).is_file():
        return root, "binary"
    raise DataError(f"CIFAR-10 not found under {root}: expected {PYTHON_DIR}/ or {BINARY_DIR}/; "
                    f"{_NOT_FOUND_HINT}")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and plain containers, nothing else.

    A batch file is data; a plain ``pickle.load`` would run whatever code a
    tampered file names, so every global other than numpy's array
    reconstruction is refused.
    """

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2
    })

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            entry = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # a corrupt pickle can fail in any of a dozen ways
        raise DataError(f"{path} is not a readable CIFAR-10 python batch ({exc}); {_REFETCH_HINT}") from None
    if not isinstance(entry, dict):
        raise DataError(f"{path} holds a {type(entry).__name__}, not the dict of a CIFAR-10 "
                        f"python batch; {_REFETCH_HINT}")
    # Keys are bytes in the official (Python 2) files, str in files pickled by Python 3.
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in entry.items()}


def _read_python_batch(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    entry = _unpickle(path)
    absent = [key for key in ("data", "labels") if key not in entry]
    if absent:
        raise DataError(f"{path} has no {' or '.join(absent)} entry; it is not a CIFAR-10 python "
                        f"batch; {_REFETCH_HINT}")
    data = entry["data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == _PIXELS):
        raise DataError(f"{path}: data is {_describe(data)}, expected uint8 rows of {_PIXELS} "
                        f"values (3x32x32); {_REFETCH_HINT}")
    labels = np.asarray(entry["labels"])
    if labels.shape != (len(data),) or (len(labels) and labels.dtype.kind not in "iu"):
        raise DataError(f"{path}: labels are {_describe(labels)}, expected {len(data)} integers, "
                        f"one per image row; {_REFETCH_HINT}")
    return data, _checked_labels(labels.astype(np.int64), path)


def _read_binary_batch(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % _RECORD:
        raise DataError(f"{path} is {raw.size} bytes, not a multiple of the {_RECORD}-byte record "
                        f"(1 label + 3x32x32 pixels): it is truncated or not CIFAR-10 binary; "
                        f"{_REFETCH_HINT}")
    records = raw.reshape(-1, _RECORD)
    return records[:, 1:], _checked_labels(records[:, 0].astype(np.int64), path)


def _checked_labels(labels: np.ndarray, path: Path) -> np.ndarray:
    bad = np.flatnonzero((labels < 0) | (labels >= len(CIFAR10_CLASSES)))
    if bad.size:
        raise DataError(f"{path}: record {bad[0]} has label {labels[bad[0]]}, but CIFAR-10 labels "
                        f"are 0..9; the file is corrupt or not CIFAR-10; {_REFETCH_HINT}")
    return labels


def _read_python_meta(path: Path) -> Tuple[str, ...]:
    names = _unpickle(path).get("label_names")
    return _checked_classes(names if isinstance(names, list) else [], path)


def _read_binary_meta(path: Path) -> Tuple[str, ...]:
    names = path.read_bytes().splitlines()
    return _checked_classes([name for name in names if name.strip()], path)


def _checked_classes(names: list, path: Path) -> Tuple[str, ...]:
    classes = tuple(n.decode("latin1").strip() if isinstance(n, bytes) else str(n).strip() for n in names)
    if len(classes) != len(CIFAR10_CLASSES):
        raise DataError(f"{path} names {len(classes)} classes, expected {len(CIFAR10_CLASSES)}; "
                        f"{_REFETCH_HINT}")
    return classes


def _writable(data: DatasetLike, split: str) -> ArrayDataset:
    if not isinstance(data, ArrayDataset):
        images, labels = data
        data = ArrayDataset(np.asarray(images), np.asarray(labels, dtype=np.int64),
                            CIFAR10_CLASSES, f"cifar10/{split}")
    if data.images.shape[1:] != (_SIDE, _SIDE, 3) or len(data.classes) != len(CIFAR10_CLASSES):
        raise DataError(f"{data.name}: CIFAR-10 files hold 32x32x3 images in 10 classes; got images "
                        f"{data.images.shape[1:]} in {len(data.classes)} classes")
    return data


def _train_chunks(n: int) -> list:
    return np.array_split(np.arange(n), len(_TRAIN_STEMS))


def _planar_rows(data: ArrayDataset, index: np.ndarray) -> np.ndarray:
    return data.images[index].transpose(0, 3, 1, 2).reshape(len(index), _PIXELS)


def _python_batch(data: ArrayDataset, index: np.ndarray, batch_label: str) -> dict:
    return {
        b"batch_label": batch_label.encode(),
        b"labels": data.labels[index].tolist(),
        b"data": _planar_rows(data, index),
        b"filenames": [f"{data.classes[data.labels[i]]}_s_{i:06d}.png".encode() for i in index],
    }


def _binary_records(data: ArrayDataset, index: np.ndarray) -> np.ndarray:
    labels = data.labels[index].astype(np.uint8)[:, None]
    return np.concatenate([labels, _planar_rows(data, index)], axis=1)


class _Py2StrPickler(pickle._Pickler):
    """Writes ``bytes`` as a Python 2 ``str``, as the official (Python 2) batch files do.

    Such strings load as ``bytes`` under ``encoding="bytes"`` and as ``str``
    under torchvision's ``encoding="latin1"``, so both kinds of reader find
    their keys. Python 3's own bytes opcodes load as ``bytes`` under every
    encoding, which torchvision's ``entry["data"]`` would not find. The pure
    Python pickler is the one whose dispatch table can be extended.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)))
        self.write(obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump_py2(path: Path, obj) -> None:
    with open(path, "wb") as f:
        _Py2StrPickler(f, protocol=2).dump(obj)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
