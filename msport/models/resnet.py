"""CIFAR-style ResNets in MindSpore (the layout of kuangliu/pytorch-cifar).

Mirrors ``reference_torch/resnet.py`` line for line: a diff of the two files
shows only framework differences. Parameter names are an API (checkpoint
conversion relies on them): ``conv1``, ``bn1``, ``layer1``..``layer4``, the
blocks' ``conv1..3`` / ``bn1..3`` / ``shortcut``, and ``linear``.

Every layer comes from :mod:`msport.layers`, so ``init`` decides how the whole
network is initialised.
"""

from msport._mindspore import nn
from msport.layers import batch_norm2d, conv2d, dense

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "pool", "linear")


class BasicBlock(nn.Cell):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, init="torch", norm=batch_norm2d):
        super().__init__()
        self.conv1 = conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False, init=init)
        self.bn1 = norm(planes)
        self.conv2 = conv2d(planes, planes, 3, stride=1, padding=1, bias=False, init=init)
        self.bn2 = norm(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride, init, norm)
        self.relu = nn.ReLU()

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return self.relu(out)


class Bottleneck(nn.Cell):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, init="torch", norm=batch_norm2d):
        super().__init__()
        self.conv1 = conv2d(in_planes, planes, 1, bias=False, init=init)
        self.bn1 = norm(planes)
        self.conv2 = conv2d(planes, planes, 3, stride=stride, padding=1, bias=False, init=init)
        self.bn2 = norm(planes)
        self.conv3 = conv2d(planes, planes * self.expansion, 1, bias=False, init=init)
        self.bn3 = norm(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride, init, norm)
        self.relu = nn.ReLU()

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + self.shortcut(x)
        return self.relu(out)


def _shortcut(in_planes, out_planes, stride, init, norm):
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.SequentialCell([
        conv2d(in_planes, out_planes, 1, stride=stride, bias=False, init=init),
        norm(out_planes),
    ])


class ResNet(nn.Cell):
    def __init__(self, block, num_blocks, num_classes=10, init="torch", width=64, norm=batch_norm2d):
        super().__init__()
        self.in_planes = width
        self.init = init
        self.norm = norm
        self.conv1 = conv2d(3, width, 3, stride=1, padding=1, bias=False, init=init)
        self.bn1 = norm(width)
        self.layer1 = self._make_layer(block, width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, num_blocks[3], stride=2)
        self.linear = dense(8 * width * block.expansion, num_classes, init=init)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(kernel_size=4, stride=4)
        self.flatten = nn.Flatten()

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for s in strides:
            layers.append(block(self.in_planes, planes, s, init=self.init, norm=self.norm))
            self.in_planes = planes * block.expansion
        return nn.SequentialCell(layers)

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = self.flatten(self.pool(out))
        return self.linear(out)

    def stage_outputs(self, x):
        """Every stage's output, named as :data:`STAGES`, for layer-by-layer comparison."""
        outputs = {"stem": self.relu(self.bn1(self.conv1(x)))}
        out = outputs["stem"]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            out = getattr(self, name)(out)
            outputs[name] = out
        outputs["pool"] = self.flatten(self.pool(out))
        outputs["linear"] = self.linear(outputs["pool"])
        return outputs


def resnet10_w16(num_classes=10, init="torch"):
    """One BasicBlock per stage at a quarter of the width: CPU-sized, for the embedded default."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes, init, width=16)


def resnet10_w16_nobn(num_classes=10, init="torch"):
    """resnet10_w16 with no BatchNorm: no batch statistics, so data parallel training computes
    what one process computes at any number of ranks (what the data parallel tests check)."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes, init, width=16, norm=_no_norm)


def _no_norm(channels):
    del channels
    return nn.Identity()


def resnet18(num_classes=10, init="torch"):
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, init)


def resnet34(num_classes=10, init="torch"):
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, init)


def resnet50(num_classes=10, init="torch"):
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, init)


def resnet101(num_classes=10, init="torch"):
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, init)


def resnet152(num_classes=10, init="torch"):
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, init)
