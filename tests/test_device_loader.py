"""The accelerator pipeline builds, on the device, exactly the batches of every other pipeline."""

import numpy as np
import pytest
import torch

from data_helpers import make_random_cifar
from msport.data import planned_batches
from msport.data.torch_device import make_device_loader

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def dataset():
    train, _ = make_random_cifar(150, 1, seed=7)
    return train


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("augment", [False, True])
def test_device_batches_are_bit_identical_to_the_numpy_reference(dataset, device, augment):
    reference = planned_batches(dataset, 32, train=True, augment=augment, seed=11)
    loader = make_device_loader(dataset, 32, device=device, train=True, augment=augment, seed=11)
    assert len(loader) == reference.steps == 5  # the last batch is partial (150 = 4 x 32 + 22)
    for epoch in (0, 3):
        loader.set_epoch(epoch)
        for step, (x, y) in enumerate(loader):
            want_x, want_y = reference.batch(epoch, step)
            assert x.device.type == device
            assert np.array_equal(x.cpu().numpy(), want_x), f"epoch {epoch} step {step}"
            assert np.array_equal(y.cpu().numpy(), want_y)


def test_channels_last_changes_layout_not_values(dataset):
    plain = make_device_loader(dataset, 50, device="cpu", train=True, augment=True, seed=1)
    nhwc = make_device_loader(dataset, 50, device="cpu", train=True, augment=True, seed=1, channels_last=True)
    for (a, _), (b, _) in zip(plain, nhwc):
        assert b.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b)


def test_evaluation_loader_serves_every_sample_once_in_order(dataset):
    loader = make_device_loader(dataset, 64, device="cpu", train=False, augment=False, seed=0)
    labels = torch.cat([y for _, y in loader]).numpy()
    assert np.array_equal(labels, dataset.labels)
