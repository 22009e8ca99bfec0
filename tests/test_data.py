"""Tests of msport.data: readers, writers, the digits set, the epoch plan and both pipelines."""

import os
import pickle
import shutil
import sys

import numpy as np
import pytest
import torch
import torchvision
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from data_helpers import make_random_cifar, write_both_formats
from msport.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    DataError,
    apply_plan_to_batch,
    epoch_plan,
    load_cifar10,
    load_dataset,
    load_digits,
    normalize_batch,
    planned_batches,
    steps_per_epoch,
    write_cifar10_binary,
    write_cifar10_python,
)
from msport.data.digits import _split_indices, upsample_digits


def assert_same_data(loaded, expected):
    assert loaded.images.dtype == np.uint8 and loaded.labels.dtype == np.int64
    assert np.array_equal(loaded.images, expected.images)
    assert np.array_equal(loaded.labels, expected.labels)


@pytest.fixture
def cifar(tmp_path):
    return write_both_formats(tmp_path / "data", n_train=23, n_test=7, seed=1)


# --- CIFAR-10 files ----------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_both_formats_read_back_identically(cifar, split):
    expected = getattr(cifar, split)
    from_python = load_cifar10(cifar.python_dir, split)
    from_binary = load_cifar10(cifar.binary_dir, split)
    assert_same_data(from_python, expected)
    assert_same_data(from_binary, expected)
    assert from_python.classes == from_binary.classes == CIFAR10_CLASSES
    assert from_python.name == from_binary.name == f"cifar10/{split}"


def test_uneven_train_files_keep_order(cifar):
    sizes = [os.path.getsize(cifar.binary_dir / f"data_batch_{i}.bin") // 3073 for i in range(1, 6)]
    assert sizes == [5, 5, 5, 4, 4]
    assert_same_data(load_cifar10(cifar.binary_dir), cifar.train)


def test_root_forms_and_python_preferred(tmp_path):
    python_data = make_random_cifar(12, 3, seed=1)
    binary_data = make_random_cifar(12, 3, seed=2)
    write_cifar10_python(tmp_path, *python_data)
    write_cifar10_binary(tmp_path, *binary_data)
    assert_same_data(load_cifar10(tmp_path), python_data[0])
    assert_same_data(load_cifar10(str(tmp_path / "cifar-10-batches-bin")), binary_data[0])
    renamed = tmp_path / "my-copy"
    shutil.copytree(tmp_path / "cifar-10-batches-bin", renamed)
    assert_same_data(load_cifar10(renamed, "test"), binary_data[1])


def test_tuple_input_and_empty_train_files(tmp_path):
    images = np.zeros((3, 32, 32, 3), np.uint8)
    images[1] = 200
    write_cifar10_binary(tmp_path, (images[:0], np.zeros(0, int)), (images, [4, 5, 6]))
    loaded = load_cifar10(tmp_path, "test")
    assert np.array_equal(loaded.images, images) and loaded.labels.tolist() == [4, 5, 6]
    assert len(load_cifar10(tmp_path, "train")) == 0


def test_python_files_match_the_reference_reader(cifar):
    """Read the way torchvision does (latin1 -> str keys) and the way most scripts do (bytes keys)."""
    rows, labels = [], []
    for i in range(1, 6):
        with open(cifar.python_dir / f"data_batch_{i}", "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        rows.append(entry["data"])
        labels.extend(entry["labels"])
    images = np.vstack(rows).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert np.array_equal(images, cifar.train.images) and labels == cifar.train.labels.tolist()
    with open(cifar.python_dir / "test_batch", "rb") as f:
        entry = pickle.load(f, encoding="bytes")
    assert entry[b"data"].shape == (7, 3072) and entry[b"labels"] == cifar.test.labels.tolist()
    assert entry[b"batch_label"] == b"testing batch 1 of 1" and len(entry[b"filenames"]) == 7
    with open(cifar.python_dir / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"] == list(CIFAR10_CLASSES)


def test_python_files_load_in_torchvision(cifar, monkeypatch):
    """torchvision checks the official MD5s; with the checks disabled its reader takes our files."""
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kw: True)
    for train, expected in ((True, cifar.train), (False, cifar.test)):
        theirs = torchvision.datasets.CIFAR10(str(cifar.root), train=train)
        assert np.array_equal(theirs.data, expected.images)
        assert theirs.targets == expected.labels.tolist()
        assert theirs.classes == list(CIFAR10_CLASSES)


def test_binary_files_load_in_mindspore(tmp_path):
    """MindSpore's reader needs exactly 10,000 records per file: write one full test file."""
    from msport._mindspore import ms  # noqa: F401
    import mindspore.dataset as msds

    train, test = make_random_cifar(0, 10000, seed=3)
    write_cifar10_binary(tmp_path, train, test)
    dataset = msds.Cifar10Dataset(str(tmp_path / "cifar-10-batches-bin"), usage="test", shuffle=False)
    theirs = next(dataset.batch(10000).create_dict_iterator(num_epochs=1, output_numpy=True))
    assert np.array_equal(theirs["image"], test.images)
    assert np.array_equal(theirs["label"], test.labels)
    assert_same_data(load_cifar10(tmp_path, "test"), test)


# --- bad inputs --------------------------------------------------------------------------------

def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist.*--download") as err:
        load_cifar10(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


def test_empty_dir(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found under .*cifar-10-batches-py/"):
        load_cifar10(tmp_path)


def test_missing_files_are_listed(cifar):
    (cifar.python_dir / "data_batch_3").unlink()
    (cifar.python_dir / "batches.meta").unlink()
    with pytest.raises(DataError, match="missing .*: data_batch_3, batches.meta;"):
        load_cifar10(cifar.root)
    (cifar.binary_dir / "test_batch.bin").unlink()
    with pytest.raises(DataError, match="missing .*: test_batch.bin;"):
        load_cifar10(cifar.binary_dir, "test")


def test_truncated_binary_file(cifar):
    path = cifar.binary_dir / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"data_batch_2\.bin is 15265 bytes, not a multiple of the 3073"):
        load_cifar10(cifar.binary_dir)


def test_binary_label_out_of_range(cifar):
    path = cifar.binary_dir / "test_batch.bin"
    raw = bytearray(path.read_bytes())
    raw[3 * 3073] = 10
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"test_batch\.bin: record 3 has label 10.*0\.\.9"):
        load_cifar10(cifar.binary_dir, "test")


def rewrite_pickle(path, **changes):
    """Re-pickle a batch with Python 3 (str keys), which the reader must also accept."""
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry.update(changes)
    with open(path, "wb") as f:
        pickle.dump(entry, f)


def test_python3_pickled_batches_are_read(cifar):
    rewrite_pickle(cifar.python_dir / "test_batch")
    assert_same_data(load_cifar10(cifar.root, "test"), cifar.test)


def test_python_label_out_of_range(cifar):
    rewrite_pickle(cifar.python_dir / "data_batch_4", labels=[0, 1, 10, 2])
    with pytest.raises(DataError, match=r"data_batch_4: record 2 has label 10"):
        load_cifar10(cifar.root)


def test_python_wrong_row_width(cifar):
    rewrite_pickle(cifar.python_dir / "test_batch", data=np.zeros((7, 3000), np.uint8))
    with pytest.raises(DataError, match=r"test_batch: data is uint8 array of shape \(7, 3000\).*3072"):
        load_cifar10(cifar.root, "test")


def test_python_label_count_mismatch(cifar):
    rewrite_pickle(cifar.python_dir / "test_batch", labels=[1, 2])
    with pytest.raises(DataError, match=r"test_batch: labels are .*expected 7 integers"):
        load_cifar10(cifar.root, "test")


def test_garbage_pickle(cifar):
    (cifar.python_dir / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match=r"test_batch is not a readable CIFAR-10 python batch"):
        load_cifar10(cifar.root, "test")


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_pickle_that_runs_code_is_refused(cifar, tmp_path):
    marker = tmp_path / "pwned"
    with open(cifar.python_dir / "test_batch", "wb") as f:
        pickle.dump({"data": _Payload(str(marker)), "labels": []}, f)
    with pytest.raises(DataError, match=r"refusing to load global \w+\.mkdir"):
        load_cifar10(cifar.root, "test")
    assert not marker.exists()


def test_bad_meta(cifar):
    (cifar.binary_dir / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(DataError, match=r"batches\.meta\.txt names 2 classes, expected 10"):
        load_cifar10(cifar.binary_dir)


def test_bad_arguments(cifar):
    with pytest.raises(DataError, match="split must be one of train, test; got 'valid'"):
        load_cifar10(cifar.root, "valid")
    with pytest.raises(DataError, match="unknown data set 'mnist'; choose one of: cifar10, digits"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="needs a directory: pass --data-dir"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match=r"images must be a uint8 array of shape \(N, H, W, 3\)"):
        write_cifar10_binary(cifar.root, (np.zeros((2, 32, 32, 3), np.float32), [0, 1]), cifar.test)
    with pytest.raises(DataError, match="CIFAR-10 files hold 32x32x3 images"):
        write_cifar10_python(cifar.root, (np.zeros((2, 28, 28, 3), np.uint8), [0, 1]), cifar.test)


def test_load_dataset_dispatch(cifar):
    assert_same_data(load_dataset("cifar10", cifar.root, "train"), cifar.train)
    assert_same_data(load_dataset("cifar10", cifar.root, "val"), cifar.test)
    assert load_dataset("digits", split="val", seed=3).name == "digits/val"


# --- digits ------------------------------------------------------------------------------------

def test_digits_shapes_and_sizes():
    train, val = load_digits("train"), load_digits("val")
    assert train.images.shape == (len(train), 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and train.classes == tuple("0123456789")
    assert (train.name, val.name) == ("digits/train", "digits/val")
    assert len(train) + len(val) == 1797 and 340 <= len(val) <= 380
    assert train.images.max() == 255 and train.images.min() == 0
    assert np.array_equal(train.images[..., 0], train.images[..., 2])


def test_digits_split_is_a_stratified_partition():
    from sklearn.datasets import load_digits as sklearn_digits

    labels = sklearn_digits().target
    train_index, val_index = _split_indices(labels, 0.2, seed=0)
    assert len(np.intersect1d(train_index, val_index)) == 0
    assert np.array_equal(np.union1d(train_index, val_index), np.arange(len(labels)))
    for cls in range(10):
        count = np.sum(labels == cls)
        assert np.sum(labels[val_index] == cls) == round(0.2 * count)
    val = load_digits("val")
    assert np.array_equal(val.labels, labels[val_index])


def test_digits_deterministic_per_seed():
    a, b, c = load_digits("val", seed=5), load_digits("val", seed=5), load_digits("val", seed=6)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    test = load_digits("test", seed=5)
    assert np.array_equal(test.images, a.images) and test.name == "digits/test"


def test_digits_upsampling_is_torch_bilinear():
    from sklearn.datasets import load_digits as sklearn_digits

    small = sklearn_digits().images[:20]
    ours = upsample_digits(small)
    big = torch.nn.functional.interpolate(torch.from_numpy(small[:, None]), size=(32, 32),
                                          mode="bilinear", align_corners=False)[:, 0].numpy()
    expected = np.clip(np.rint(big * 255 / 16), 0, 255).astype(np.uint8)
    assert np.array_equal(ours[..., 1], expected)


def test_digits_bad_arguments(monkeypatch):
    with pytest.raises(DataError, match="digits split must be one of train, val, test"):
        load_digits("all")
    with pytest.raises(DataError, match="val_fraction must lie strictly between 0 and 1"):
        load_digits(val_fraction=1.0)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(DataError, match=r"needs scikit-learn: pip install 'msport\[digits\]'"):
        load_digits()


def test_digits_are_scikit_learns_own_arrays():
    # read from the file scikit-learn ships, without importing it (a second of every trainer's start)
    from sklearn.datasets import load_digits as sklearn_digits

    from msport.data.digits import _bundled_digits

    bunch = sklearn_digits()
    images, labels = _bundled_digits()
    assert np.array_equal(images, bunch.images) and images.dtype == bunch.images.dtype
    assert np.array_equal(labels, bunch.target) and labels.dtype == np.int64


# --- the plan and the numpy reference ----------------------------------------------------------

def plans_equal(a, b):
    return (np.array_equal(a.order, b.order) and np.array_equal(a.offsets, b.offsets)
            and np.array_equal(a.flips, b.flips))


def test_plan_deterministic_and_independent_of_history():
    fresh = epoch_plan(500, 3, 7, augment=True)
    for epoch in range(3):
        epoch_plan(500, epoch, 7, augment=True)
    assert plans_equal(fresh, epoch_plan(500, 3, 7, augment=True))
    assert fresh.order.dtype == fresh.offsets.dtype == np.int64 and fresh.flips.dtype == bool
    assert fresh.offsets.shape == (500, 2)


def test_plan_differs_across_epochs_and_seeds():
    base = epoch_plan(500, 0, 0, augment=True)
    for other in (epoch_plan(500, 1, 0, augment=True), epoch_plan(500, 0, 1, augment=True)):
        assert not np.array_equal(base.order, other.order)
        assert not np.array_equal(base.offsets, other.offsets)
        assert not np.array_equal(base.flips, other.flips)


def test_plan_draws_cover_the_crop_range():
    plan = epoch_plan(3000, 0, 0, augment=True)
    assert np.array_equal(np.sort(plan.order), np.arange(3000))
    assert set(np.unique(plan.offsets[:, 0])) == set(range(9))
    assert set(np.unique(plan.offsets[:, 1])) == set(range(9))
    assert 0.45 < plan.flips.mean() < 0.55


def test_plan_identity_without_augmentation():
    plan = epoch_plan(50, 4, 9, augment=False)
    assert np.array_equal(plan.order, np.arange(50))
    assert (plan.offsets == 4).all() and not plan.flips.any()
    shuffled = epoch_plan(50, 4, 9, augment=False, shuffle=True)
    assert not np.array_equal(shuffled.order, np.arange(50))
    assert (shuffled.offsets == 4).all() and not shuffled.flips.any()
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(apply_plan_to_batch(images, plan.offsets[:5], plan.flips[:5]), images)


def test_crop_and_flip_equal_torchvision():
    """Our reference is RandomCrop(32, padding=4) + RandomHorizontalFlip once their draws are fixed."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    offsets = np.array([[0, 0], [8, 8], [0, 8], [8, 0], [4, 4], [1, 7]] + rng.integers(0, 9, (6, 2)).tolist())
    flips = np.array([False, True] * 6)
    ours = apply_plan_to_batch(images, offsets, flips, pad=4)
    for image, (dy, dx), flip, mine in zip(images, offsets, flips, ours):
        chw = torch.from_numpy(image).permute(2, 0, 1)
        theirs = TF.crop(TF.pad(chw, [4], fill=0), int(dy), int(dx), 32, 32)
        if flip:
            theirs = TF.hflip(theirs)
        assert np.array_equal(mine, theirs.permute(1, 2, 0).numpy())


def test_normalisation_equals_torchvision():
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    ours = normalize_batch(images)
    to_tensor = torchvision.transforms.ToTensor()
    normalize = v2.Normalize(CIFAR10_MEAN, CIFAR10_STD)
    theirs = torch.stack([normalize(to_tensor(image)) for image in images]).numpy()
    assert ours.dtype == np.float32 and ours.shape == (6, 3, 32, 32) and ours.flags.c_contiguous
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert np.array_equal(ours, theirs)  # same float32 operations in the same order: not just close


def test_steps_and_batch_rules():
    assert steps_per_epoch(45, 8, drop_last=False) == 6
    assert steps_per_epoch(45, 8, drop_last=True) == 5
    with pytest.raises(DataError, match="batch_size must be at least 1"):
        steps_per_epoch(45, 0, drop_last=False)
    ds, _ = make_random_cifar(5, 0)
    with pytest.raises(DataError, match="5 samples make no full batch of 8"):
        planned_batches(ds, 8, train=True, augment=False, seed=0, drop_last=True)
    with pytest.raises(DataError, match="evaluation pipeline .* augment=True"):
        planned_batches(ds, 2, train=False, augment=True, seed=0)


# --- both pipelines ----------------------------------------------------------------------------

def reference_epoch(ds, batch_size, epoch, seed, augment, shuffle, drop_last=False):
    """The batches as the plan defines them, assembled here without PlannedBatches."""
    plan = epoch_plan(len(ds), epoch, seed, augment=augment, shuffle=shuffle)
    served = len(ds) - len(ds) % batch_size if drop_last else len(ds)
    for start in range(0, served, batch_size):
        part = slice(start, min(start + batch_size, served))
        index = plan.order[part]
        crops = apply_plan_to_batch(ds.images[index], plan.offsets[part], plan.flips[part])
        yield normalize_batch(crops), ds.labels[index]


def torch_epoch(loader, epoch):
    loader.set_epoch(epoch)
    batches = [(x.numpy(), y.numpy()) for x, y in loader]
    assert all(x.dtype == np.float32 and y.dtype == np.int64 for x, y in batches)
    return batches


def ms_rows(dataset):
    rows = list(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert all(x.dtype == np.float32 and y.dtype == np.int32 for x, y in rows)
    return rows


def assert_batches_equal(got, expected):
    expected = list(expected)
    assert len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected):
        assert np.array_equal(x, ex) and np.array_equal(y, ey)


@pytest.fixture(scope="module")
def small_ds():
    return make_random_cifar(45, 0, seed=4)[0]


def test_pipelines_identical_in_deterministic_mode(small_ds):
    from msport.data import make_ms_dataset, make_torch_loader

    loader = make_torch_loader(small_ds, 8, train=False, augment=False, seed=0, num_workers=2)
    dataset = make_ms_dataset(small_ds, 8, train=False, augment=False, seed=0, num_workers=2)
    assert len(loader) == 6 and loader.num_samples == 45 and dataset.get_dataset_size() == 6
    torch_batches, ms_batches = torch_epoch(loader, 0), ms_rows(dataset)
    assert [len(y) for _, y in torch_batches] == [8, 8, 8, 8, 8, 5]
    assert_batches_equal(torch_batches, reference_epoch(small_ds, 8, 0, 0, False, False))
    assert_batches_equal(ms_batches, torch_batches)
    assert np.array_equal(np.concatenate([y for _, y in ms_batches]), small_ds.labels)


def test_pipelines_identical_with_augmentation(small_ds):
    from msport.data import iterate_ms_epoch, make_ms_dataset, make_torch_loader

    loader = make_torch_loader(small_ds, 8, train=True, augment=True, seed=11, num_workers=2)
    torch_epochs = [torch_epoch(loader, epoch) for epoch in (0, 1)]
    for epoch, batches in enumerate(torch_epochs):
        assert_batches_equal(batches, reference_epoch(small_ds, 8, epoch, 11, True, True))
    assert not np.array_equal(torch_epochs[0][0][1], torch_epochs[1][0][1])
    assert not np.array_equal(torch_epochs[0][0][0], torch_epochs[1][0][0])

    whole_run = ms_rows(make_ms_dataset(small_ds, 8, train=True, augment=True, seed=11, num_epochs=2))
    assert_batches_equal(whole_run, torch_epochs[0] + torch_epochs[1])
    resumed = list(iterate_ms_epoch(small_ds, 8, epoch=1, train=True, augment=True, seed=11))
    assert_batches_equal(resumed, torch_epochs[1])


def test_pipelines_drop_last_and_process_workers(small_ds):
    from msport.data import make_ms_dataset, make_torch_loader

    loader = make_torch_loader(small_ds, 8, train=True, augment=True, seed=2, num_workers=0,
                               drop_last=True)
    assert len(loader) == 5 and loader.num_samples == 40
    torch_batches = torch_epoch(loader, 3)
    assert_batches_equal(torch_batches, reference_epoch(small_ds, 8, 3, 2, True, True, drop_last=True))
    dataset = make_ms_dataset(small_ds, 8, train=True, augment=True, seed=2, start_epoch=3,
                              drop_last=True, num_workers=2, python_multiprocessing=True)
    assert_batches_equal(ms_rows(dataset), torch_batches)


def test_unnormalised_batches_are_the_crops(small_ds):
    from msport.data import make_torch_loader

    loader = make_torch_loader(small_ds, 16, train=True, augment=True, seed=0, num_workers=0,
                               normalize=False)
    x, y = next(iter(loader))
    plan = epoch_plan(45, 0, 0, augment=True)
    expected = apply_plan_to_batch(small_ds.images[plan.order[:16]], plan.offsets[:16], plan.flips[:16])
    assert x.dtype == torch.uint8 and np.array_equal(x.numpy(), expected)


def test_data_errors_are_user_errors():
    from msport.errors import UserError

    assert issubclass(DataError, UserError) and issubclass(DataError, ValueError)
