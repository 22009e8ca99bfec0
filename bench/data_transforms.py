"""Images per second of a twin pipeline against the same pipeline of MindSpore's own ops, side by side.

    python bench/data_transforms.py [--images 200] [--workers 2] [--rounds 3] [--separate]

All pipelines run in ``mindspore.dataset`` with ``--workers`` parallel workers on scikit-learn's two
sample photos (427x640), served ``--images`` times by a GeneratorDataset: the ImageNet eval pipeline
(Resize 256, CenterCrop 224, ToTensor, Normalize) and a training pipeline (RandomResizedCrop 224,
horizontal flip, ColorJitter 0.4, ToTensor, Normalize), each built three ways:

* ``ms``: MindSpore's ops as a port writes them (C++; bilinear resizing without antialiasing, which
  is why their pixels differ from torchvision's by up to 85 of 255);
* ``ms antialias``: the only MindSpore route to antialiased resizing, ``ToPIL`` then
  ``Resize(..., Inter.ANTIALIAS)`` (PIL, through Python), the rest as ``ms``;
* ``twins``: ``msport.data.transforms.from_torchvision(..., fuse=True)`` (``--separate``: one op per
  transform), equal to torchvision's output.

They are timed in turn, ``--rounds`` times each, so a change in the machine's load hits all of them;
ratios are of the medians. Goal (issue 19): twins at least 0.8x ``ms``.
"""

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Photos:
    """Random-access source: photo ``i % 2`` for i < n."""

    def __init__(self, n):
        from msport.data.transforms.docs import sample_photos

        self.photos = [image for _, image in sample_photos()]
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return (self.photos[i % len(self.photos)],)


def pipelines(fuse=True):
    """{name: {way: ops}} for the eval and training pipelines."""
    import torchvision.transforms as T  # noqa: I001 - msport's MindSpore settings come before MindSpore's import

    from msport._mindspore import ms  # noqa: F401
    from mindspore.dataset import vision as v
    from msport.data.transforms import from_torchvision

    tail = [v.ToTensor(), v.Normalize(MEAN, STD, is_hwc=False)]
    eval_torch = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    train_torch = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4),
                             T.ToTensor(), T.Normalize(MEAN, STD)])
    jitter = [v.RandomHorizontalFlip(), v.RandomColorAdjust(0.4, 0.4, 0.4)]
    return {
        "eval": {"ms": [v.Resize(256), v.CenterCrop(224), *tail],
                 "ms antialias": [v.ToPIL(), v.Resize(256, v.Inter.ANTIALIAS), v.CenterCrop(224), *tail],
                 "twins": from_torchvision(eval_torch, fuse=fuse)},
        "train": {"ms": [v.RandomResizedCrop(224), *jitter, *tail],
                  "ms antialias": [v.ToPIL(), v.RandomResizedCrop(224, interpolation=v.Inter.ANTIALIAS),
                                   *jitter, *tail],
                  "twins": from_torchvision(train_torch, fuse=fuse)},
    }


def images_per_second(ops, n, workers):
    import mindspore.dataset as ds

    dataset = ds.GeneratorDataset(Photos(n), ["image"], shuffle=False, num_parallel_workers=1)
    dataset = dataset.map(operations=ops, input_columns=["image"], num_parallel_workers=workers,
                          python_multiprocessing=False)
    start = time.perf_counter()
    count = sum(1 for _ in dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))
    elapsed = time.perf_counter() - start
    assert count == n
    return n / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--separate", action="store_true", help="one twin op per transform instead of one fused op")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    ratios = {}
    for name, ways in pipelines(fuse=not args.separate).items():
        for ops in ways.values():
            images_per_second(ops, 8, args.workers)  # warm-up: worker start, first calls
        rates = {way: [] for way in ways}
        for _ in range(args.rounds):
            for way, ops in ways.items():
                rates[way].append(images_per_second(ops, args.images, args.workers))
        medians = {way: statistics.median(r) for way, r in rates.items()}
        ratios[name] = medians["twins"] / medians["ms"]
        print(f"{name}: " + ", ".join(f"{way} {m:.1f} img/s" for way, m in medians.items())
              + f"; twins / ms {ratios[name]:.2f}, twins / ms antialias {medians['twins'] / medians['ms antialias']:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    worst = min(ratios.values())
    print(f"RESULT: twins at {worst:.2f}x MindSpore's own ops (goal >= 0.8): {'ok' if worst >= 0.8 else 'BELOW GOAL'}")
    return 0 if worst >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
