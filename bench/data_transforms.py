"""Images per second of a twin pipeline against the same pipeline of MindSpore's own ops, side by side.

    python bench/data_transforms.py [--images 200] [--workers 2] [--rounds 3] [--separate] [--processes]
    python bench/data_transforms.py --profile [--images 200] [--rounds 3]

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
ratios are of the medians. Goal (issue 19): twins at least 0.8x ``ms`` in images per second. Each
way also prints its CPU ms per image (this process, all threads), which moves far less with other
jobs' load than wall time. ``--processes`` runs the twins' workers as processes
(``python_multiprocessing=True``) instead of threads.

``--profile`` says where the time goes: for ``ms`` and ``twins`` it times every prefix of each
pipeline (the first k ops; for the twins, one fused op of the first k twins) in the same way,
side by side, and prints what each stage adds, in wall and CPU milliseconds per image with
``--workers`` workers; ``source`` is the GeneratorDataset and iterator alone. It first times what
any Python op pays on these photos: the PyFunc boundary (an op returning its input) and the
numpy -> PIL -> numpy round trip a fused twin op makes once.
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


def run(ops, n, workers, processes=False):
    """(images per second, CPU ms per image) of one pass over ``n`` images.

    The CPU time is this process's, all its threads (source, MindSpore's C++ workers, Python
    workers), so it barely moves with other jobs' load where wall time does; with worker
    processes it misses theirs and is not reported.
    """
    import mindspore.dataset as ds

    dataset = ds.GeneratorDataset(Photos(n), ["image"], shuffle=False, num_parallel_workers=1)
    if ops:
        dataset = dataset.map(operations=ops, input_columns=["image"], num_parallel_workers=workers,
                              python_multiprocessing=processes)
    start, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert count == n
    return n / elapsed, (float("nan") if processes else 1e3 * cpu / n)


def timed(ways, args, processes=()):
    """{way: (median images per second, median CPU ms per image)}, timed in turn each round."""
    for way, ops in ways.items():
        run(ops, 8, args.workers, way in processes)  # warm-up: worker start, first calls
    runs = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way, ops in ways.items():
            runs[way].append(run(ops, args.images, args.workers, way in processes))
    return {way: tuple(statistics.median(column) for column in zip(*r)) for way, r in runs.items()}


def returned(image):
    """A Python op that does nothing: what the PyFunc boundary itself costs."""
    return image


def pil_round_trip(image):
    """numpy -> PIL -> numpy, which a fused twin op pays once."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(image))


def profile(args):
    """What each stage adds, in wall and CPU ms per image: differences of the prefixes' timings."""
    from msport.data.transforms import Fused

    base = {way: (1e3 / rate, cpu) for way, (rate, cpu) in
            timed({"source": [], "python op": [returned], "PIL round trip": [pil_round_trip]}, args).items()}
    print("a 427x640 photo (ms per image, wall / CPU): source {0[0]:.3f} / {0[1]:.3f}, a Python op returning it "
          "+{1:.3f} / +{2:.3f}, numpy -> PIL -> numpy in it +{3:.3f} / +{4:.3f} more".format(
              base["source"], base["python op"][0] - base["source"][0], base["python op"][1] - base["source"][1],
              base["PIL round trip"][0] - base["python op"][0], base["PIL round trip"][1] - base["python op"][1]))
    for name, ways in pipelines(fuse=False).items():
        names = {side: [type(op).__name__ for op in ways[side]] for side in ("ms", "twins")}
        prefixes = {"source": []}
        prefixes.update({f"ms {k}": ways["ms"][:k] for k in range(1, len(ways["ms"]) + 1)})
        prefixes.update({f"twins {k}": [Fused(ways["twins"][:k])] for k in range(1, len(ways["twins"]) + 1)})
        cost = {way: (1e3 / rate, cpu) for way, (rate, cpu) in timed(prefixes, args).items()}
        print(f"{name} (ms per image, wall / CPU): source {cost['source'][0]:.3f} / {cost['source'][1]:.3f}")
        for side in ("ms", "twins"):
            before, parts = cost["source"], []
            for k, stage in enumerate(names[side], 1):
                now = cost[f"{side} {k}"]
                parts.append(f"{stage} +{now[0] - before[0]:.3f} / +{now[1] - before[1]:.3f}")
                before = now
            print(f"  {side}: " + ", ".join(parts) + f"; total {before[0]:.3f} / {before[1]:.3f}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--separate", action="store_true", help="one twin op per transform instead of one fused op")
    parser.add_argument("--processes", action="store_true", help="the twins' workers as processes, not threads")
    parser.add_argument("--profile", action="store_true", help="what each stage of each pipeline costs")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    if args.profile:
        status = profile(args)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return status
    ratios = {}
    for name, ways in pipelines(fuse=not args.separate).items():
        medians = timed(ways, args, processes=("twins",) if args.processes else ())
        rate = {way: m[0] for way, m in medians.items()}
        ratios[name] = rate["twins"] / rate["ms"]
        print(f"{name}: " + ", ".join(f"{way} {m[0]:.1f} img/s ({m[1]:.2f} CPU ms/img)" for way, m in medians.items())
              + f"; twins / ms {ratios[name]:.2f}, twins / ms antialias {rate['twins'] / rate['ms antialias']:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    worst = min(ratios.values())
    print(f"RESULT: twins at {worst:.2f}x MindSpore's own ops (goal >= 0.8): {'ok' if worst >= 0.8 else 'BELOW GOAL'}")
    return 0 if worst >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
