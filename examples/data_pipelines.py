"""Input pipelines for ``msport compare-data`` (docs/data.md): torchvision's, a hand-written MindSpore port, the twins.

    msport compare-data --torch examples/data_pipelines.py:torch_eval --ms examples/data_pipelines.py:ms_eval
"""

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def torch_eval():
    """The ImageNet evaluation pipeline as torchvision users write it."""
    import torchvision.transforms as T

    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])


def ms_eval():
    """Its port by hand, MindSpore's ops at their defaults: Resize without antialiasing, CenterCrop's own offset."""
    from mindspore.dataset import vision

    return [vision.Decode(), vision.Resize(256), vision.CenterCrop(224), vision.ToTensor(),
            vision.Normalize(MEAN, STD, is_hwc=False)]


def twin_eval():
    """msport's twin of torch_eval: torchvision's output, in a MindSpore pipeline."""
    from msport.data.transforms import from_torchvision

    return from_torchvision(torch_eval())


def torch_train():
    import torchvision.transforms as T

    return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4),
                      T.ToTensor(), T.Normalize(MEAN, STD)])


def ms_train():
    """MindSpore's own random ops: not replayable, so compare-data compares their statistics over many draws."""
    from mindspore.dataset import vision

    return [vision.RandomResizedCrop(224), vision.RandomHorizontalFlip(), vision.RandomColorAdjust(0.4, 0.4, 0.4),
            vision.ToTensor(), vision.Normalize(MEAN, STD, is_hwc=False)]


def twin_train():
    """The twins draw their crops, flips and factors in a form compare-data replays on the torch side."""
    from msport.data.transforms import from_torchvision

    return from_torchvision(torch_train())
