"""torchvision's ResNet18 (the ImageNet layout), its MindSpore port, and the port checked by msport.

    python examples/resnet18_torchvision.py [--trap maxpool-same]

The torch model is torchvision's own ``resnet18(weights=None)`` (no download): a 7x7 stride-2 stem
with padding 3, ``MaxPool2d(3, 2, 1)``, four stages of BasicBlocks, ``AdaptiveAvgPool2d`` and a
Linear head. The port below is written from msport's factories, which take torch's signatures
(``conv2d(3, 64, 7, 2, 3, bias=False)``, ``max_pool2d(3, 2, 1)``), under torchvision's attribute
names, so the weights convert by the registry's rules. The script converts random torchvision
weights, shows both forward passes agree, and runs ``audit`` (nothing flagged). ``--trap
maxpool-same`` builds the stem the way mindcv writes it, ``nn.MaxPool2d(3, 2, pad_mode='same')``:
same output shape, shifted values. ``build_ms_mindcv_names`` is the same port under mindcv's
attribute names (``down_sample``, ``max_pool``, ``classifier``): the tools line it up by structure.
From the command line::

    msport audit --torch examples.resnet18_torchvision:build_torch \\
                 --ms examples.resnet18_torchvision:build_ms --input-shape 2,3,64,64
"""

import argparse

import numpy as np
import torch

TRAPS = ("maxpool-same",)
CLASSES = 10
TORCHVISION_NAMES = {"downsample": "downsample", "maxpool": "maxpool", "avgpool": "avgpool", "fc": "fc"}
#: mindcv's ResNet renames torchvision's attributes.
MINDCV_NAMES = {"downsample": "down_sample", "maxpool": "max_pool", "avgpool": "pool", "fc": "classifier"}


def build_torch(seed=0):
    """torchvision's module definition, random weights."""
    from torchvision.models import resnet18

    torch.manual_seed(seed)
    return resnet18(weights=None, num_classes=CLASSES)


def example_input(batch=2, size=64, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def _ms_classes():
    from mindspore.common.initializer import HeNormal, initializer

    from msport import layers as L
    from msport._mindspore import nn, ops

    class BasicBlock(nn.Cell):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None, names=TORCHVISION_NAMES):
            super().__init__()
            self.conv1 = L.conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = L.batch_norm2d(planes)
            self.relu = L.relu()
            self.conv2 = L.conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = L.batch_norm2d(planes)
            self.shortcut_name = names["downsample"]
            setattr(self, self.shortcut_name, downsample)

        def construct(self, x):
            downsample = getattr(self, self.shortcut_name)
            identity = x if downsample is None else downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet18(nn.Cell):
        def __init__(self, num_classes=CLASSES, trap=None, names=TORCHVISION_NAMES):
            super().__init__()
            self.names = names
            self.inplanes = 64
            self.conv1 = L.conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = L.batch_norm2d(64)
            self.relu = L.relu()
            if trap == "maxpool-same":  # mindcv's stem
                pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
            else:
                pool = L.max_pool2d(3, 2, 1)
            setattr(self, names["maxpool"], pool)
            self.layer1 = self._make_layer(64, 2)
            self.layer2 = self._make_layer(128, 2, stride=2)
            self.layer3 = self._make_layer(256, 2, stride=2)
            self.layer4 = self._make_layer(512, 2, stride=2)
            setattr(self, names["avgpool"], L.adaptive_avg_pool2d((1, 1)))
            setattr(self, names["fc"], L.dense(512, num_classes))
            # torchvision's own init loop: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every conv
            # (BatchNorm 1/0 is every framework's default). Leave it out and audit flags each conv's init.
            for _, cell in self.cells_and_names():
                if isinstance(cell, nn.Conv2d):
                    cell.weight.set_data(initializer(HeNormal(mode="fan_out", nonlinearity="relu"),
                                                     cell.weight.shape, cell.weight.dtype))

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.SequentialCell([L.conv2d(self.inplanes, planes, 1, stride, bias=False),
                                                L.batch_norm2d(planes)])
            layers = [BasicBlock(self.inplanes, planes, stride, downsample, self.names)]
            self.inplanes = planes
            layers += [BasicBlock(planes, planes, names=self.names) for _ in range(1, blocks)]
            return nn.SequentialCell(layers)

        def construct(self, x):
            x = getattr(self, self.names["maxpool"])(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = ops.flatten(getattr(self, self.names["avgpool"])(x), start_dim=1)
            return getattr(self, self.names["fc"])(x)

    return ResNet18


def build_ms(seed=0, trap=None, names=TORCHVISION_NAMES):
    from msport._mindspore import ms

    if trap is not None and trap not in TRAPS:
        raise ValueError(f"unknown trap {trap!r}: choose one of {', '.join(TRAPS)}")
    ms.set_seed(seed)
    return _ms_classes()(trap=trap, names=names)


def build_ms_mindcv_names(seed=0, trap=None):
    """The same port under mindcv's attribute names: no registry rule maps ``fc`` to ``classifier``."""
    return build_ms(seed, trap, names=MINDCV_NAMES)


def trapped_pair(trap, seed=0):
    """torchvision's model and a port with ``trap``, holding torchvision's converted weights."""
    from msport.convert import load_torch_weights_into_ms

    reference, ported = build_torch(seed), build_ms(seed, trap=trap)
    load_torch_weights_into_ms(ported, reference.state_dict())
    return reference, ported


def main(argv=None):
    from msport._mindspore import ms
    from msport.diagnose import audit, layer_diff
    from msport.tolerances import MODEL_FORWARD_EVAL_MAX_REL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trap", choices=TRAPS)
    parser.add_argument("--size", type=int, default=64, help="image side (default %(default)s)")
    args = parser.parse_args(argv)

    x = example_input(size=args.size)
    torch_model, ms_model = trapped_pair(None)
    torch_model.eval()
    ms_model.set_train(False)
    with torch.no_grad():
        want = torch_model(torch.from_numpy(x)).numpy()
    got = ms_model(ms.Tensor(x)).asnumpy()
    error = float(np.abs(want - got).max() / np.abs(want).max())
    verdict = "agree" if error <= MODEL_FORWARD_EVAL_MAX_REL else "DIFFER"
    print(f"converted weights, forward outputs: max|torch - ms| / max|torch| = {error:.2e} "
          f"(tolerance MODEL_FORWARD_EVAL_MAX_REL {MODEL_FORWARD_EVAL_MAX_REL:g}): {verdict}")

    result = audit(build_torch(), build_ms(trap=args.trap), inputs=x)
    print(f"audit ({'trap ' + args.trap if args.trap else 'correct port'}): {len(result.flagged)} flagged")
    for record in result.flagged[:6]:
        print(f"  {record['check']:<10} {record['name']:<24} {record['reason']}")
    if args.trap:
        diff = layer_diff(*trapped_pair(args.trap), x)
        print(f"layer-diff: first_divergence = {diff.summary['first_divergence']}")
    return 1 if verdict != "agree" else 0


if __name__ == "__main__":
    raise SystemExit(main())
