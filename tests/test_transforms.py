"""msport's transform twins against torchvision on scikit-learn's sample photos (issue 19).

Every supported transform, v1 and v2, is run by the twin and by torchvision with the twin's drawn
parameters replayed; the whole ImageNet eval and training pipelines are run through
``from_torchvision``, also inside a real ``mindspore.dataset`` pipeline with 2 workers; docs/data.md's
tables must equal their generator.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T1
import torchvision.transforms.v2 as T2

from msport.data.errors import DataError
from msport.data.transforms import (
    ENTRIES,
    RandomResizedCrop,
    Resize,
    as_array,
    docs,
    from_torchvision,
    rng_for,
    run_twins,
    torch_replay,
)
from msport.tolerances import TRANSFORM_FLOAT_MAX_ABS, TRANSFORM_UINT8_MAX_ABS

MEAN, STD = docs.MEAN, docs.STD


@pytest.fixture(scope="module")
def photos():
    return docs.sample_photos()


@pytest.mark.parametrize("case", docs._cases(), ids=lambda c: c.label.split(" [")[0])
def test_each_twin_gives_torchvisions_output_with_replayed_draws(case, photos):
    worst, _, bound = docs.measure_twin(case, photos)
    assert worst <= bound, f"{case.label}: {worst} > {bound}"


@pytest.mark.parametrize("T", [T1, T2], ids=["v1", "v2"])
def test_randaugment_is_exact_at_every_magnitude(T, photos):
    from PIL import Image

    from msport.data.transforms.pipeline import functional_for
    from msport.data.transforms.table import entry

    image = np.ascontiguousarray(photos[1][1][150:214, 300:396])
    for magnitude in (0, 9, 30):
        transform = T.RandAugment(num_ops=3, magnitude=magnitude)
        twin = from_torchvision(T.Compose([transform]))[0]
        for draw in range(30):
            params = twin.draw(rng_for(3, draw, magnitude), image.shape)
            want = entry("RandAugment").replay(functional_for(transform), transform, Image.fromarray(image), params)
            assert np.array_equal(twin.apply(image, params), np.asarray(want)), params


@pytest.mark.parametrize("T", [T1, T2], ids=["v1", "v2"])
def test_every_trivialaugmentwide_operation_is_exact(T, photos):
    from PIL import Image

    from msport.data.transforms.augment import SPACE
    from msport.data.transforms.pipeline import functional_for
    from msport.data.transforms.table import entry

    transform = T.TrivialAugmentWide()
    twin = from_torchvision(T.Compose([transform]))[0]
    image = np.ascontiguousarray(photos[0][1][100:164, 200:296])
    seen = set()
    for draw in range(400):
        params = twin.draw(rng_for(2, draw, 0), image.shape)
        want = entry("TrivialAugmentWide").replay(functional_for(transform), transform, Image.fromarray(image), params)
        assert np.array_equal(twin.apply(image, params), np.asarray(want)), params
        seen.add(params["op"])
    assert seen == set(SPACE)


def eval_pipeline(T):
    tensor = [T.ToTensor()] if T is T1 else [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    return T.Compose([T.Resize(256), T.CenterCrop(224), *tensor, T.Normalize(MEAN, STD)])


def train_pipeline(T):
    return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                      T.ToTensor() if T is T1 else T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True)]),
                      T.Normalize(MEAN, STD)])


@pytest.mark.parametrize("T", [T1, T2], ids=["v1", "v2"])
def test_from_torchvision_of_an_imagenet_eval_pipeline_equals_torchvision(T, photos):
    from PIL import Image

    compose = eval_pipeline(T)
    twins = from_torchvision(compose)
    for _, image in photos:
        want = compose(Image.fromarray(image)).numpy()
        got = image
        for twin in twins:
            got = twin(got)
        assert got.dtype == np.float32 and got.shape == want.shape == (3, 224, 224)
        assert np.abs(got - want).max() <= TRANSFORM_FLOAT_MAX_ABS


def test_from_torchvision_of_a_training_pipeline_equals_torchvision_when_replayed(photos):
    compose = T1.Compose([T1.RandomResizedCrop(224), T1.RandomHorizontalFlip(), T1.ColorJitter(0.4, 0.4, 0.4, 0.1),
                          T1.ToTensor(), T1.Normalize(MEAN, STD)])
    twins = from_torchvision(compose)
    crops = set()
    for index, (_, image) in enumerate(photos):
        for epoch in range(3):
            outputs, params = run_twins(twins, image, rng_for(7, epoch, index))
            want = as_array(torch_replay(compose.transforms, image, params)[-1])
            assert outputs[-1].shape == want.shape == (3, 224, 224)
            assert np.abs(outputs[-1] - want).max() <= TRANSFORM_FLOAT_MAX_ABS
            crops.add(tuple(params[0].values()))
    assert len(crops) == 6  # the draws differ by image and epoch: a replay of one fixed crop would not


def test_v2_compose_nesting_and_v2_transforms_are_twinned(photos):
    compose = train_pipeline(T2)
    flat = [type(t).__name__ for t in compose.transforms]
    assert "Compose" in flat
    twins = from_torchvision(compose)  # nested Compose: its transforms, in order
    assert [type(t).__name__ for t in twins] == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter",
                                                 "ToImage", "ToDtype", "Normalize"]


def test_twins_run_inside_a_mindspore_dataset_pipeline_with_two_workers(photos):
    import mindspore.dataset as ds
    from PIL import Image

    from msport._mindspore import ms  # noqa: F401 - MindSpore starts with msport's CPU settings

    compose = eval_pipeline(T1)
    images = np.stack([image for _, image in photos])
    dataset = ds.NumpySlicesDataset({"image": images}, shuffle=False)
    dataset = dataset.map(operations=from_torchvision(compose), input_columns=["image"], num_parallel_workers=2)
    got = [row[0] for row in dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    assert len(got) == len(photos)
    for row, (_, image) in zip(got, photos):
        assert np.abs(row - compose(Image.fromarray(image)).numpy()).max() <= TRANSFORM_FLOAT_MAX_ABS


def test_mindspores_default_resize_is_far_from_torchvision_and_the_twin_is_not():
    from mindspore.dataset import vision
    from PIL import Image

    from msport._mindspore import ms  # noqa: F401 - MindSpore starts with msport's CPU settings

    image = docs.sample_photos()[0][1]
    want = np.asarray(T1.Resize(224)(Image.fromarray(image))).astype(int)
    assert np.abs(vision.Resize(224)(image).astype(int) - want).max() > 10 * TRANSFORM_UINT8_MAX_ABS
    assert np.abs(Resize(224)(image).astype(int) - want).max() == 0


def test_seeded_twins_reproduce_and_distinct_seeds_differ(photos):
    image = photos[0][1]
    first = [RandomResizedCrop(64, seed=3)(image) for _ in range(2)]
    again = RandomResizedCrop(64, seed=3)
    assert np.array_equal(first[0], again(image))
    other = RandomResizedCrop(64, seed=4)
    assert not np.array_equal(first[0], other(image))


def test_a_worker_process_draws_apart_from_the_process_that_built_the_op(photos):
    import multiprocessing

    twin = RandomResizedCrop(32, seed=5)
    image = photos[0][1][:64, :64]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        in_worker = pool.apply(twin, (image,))
    assert not np.array_equal(in_worker, RandomResizedCrop(32, seed=5)(image))


def test_a_transform_without_a_twin_is_named_with_why():
    with pytest.raises(DataError, match=r"no MindSpore twin of torchvision\.transforms\.autoaugment\.AutoAugment "
                                        r"\(no twin yet: .*\); twins exist for: Resize"):
        from_torchvision(T1.Compose([T1.Resize(32), T1.AutoAugment()]))


def test_a_twin_given_a_tensor_where_torchvision_holds_a_pil_image_says_so():
    with pytest.raises(DataError, match="Resize takes an HWC or HW uint8 image .*before ToTensor"):
        Resize(32)(np.zeros((3, 40, 40), np.float32))


def test_every_entry_with_a_twin_names_its_torchvision_class():
    for e in ENTRIES:
        if e.twin is not None:
            assert e.twin.torch_name == e.torch_name
            assert hasattr(T1, e.torch_name) or hasattr(T2, e.torch_name)


def test_docs_correspondence_table_is_the_table():
    page = (Path(__file__).resolve().parent.parent / docs.DOCS_PAGE).read_text()
    assert docs.section(page, "correspondence") == docs.correspondence_table(), \
        "docs/data.md is out of date: run `python -m msport.data.transforms`"


@pytest.mark.slow
def test_docs_proof_table_is_measured_again(photos):
    page = (Path(__file__).resolve().parent.parent / docs.DOCS_PAGE).read_text()
    assert docs.section(page, "proof") == docs.proof_table(photos), \
        "docs/data.md's proof table is out of date: run `python -m msport.data.transforms`"


@pytest.mark.parametrize("make", [eval_pipeline, train_pipeline], ids=["eval", "train"])
def test_a_fused_twin_pipeline_gives_the_separate_twins_output(make, photos):
    compose = make(T1)
    fused = from_torchvision(compose, seed=11, fuse=True)
    separate = from_torchvision(compose, seed=11)
    assert len(fused) == 1
    for _, image in photos:
        got = image
        for twin in separate:
            got = twin(got)
        assert np.array_equal(fused[0](image), got)  # same draws, and PIL handed on is numpy's pixels
