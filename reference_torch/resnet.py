"""CIFAR-style ResNets in PyTorch (the layout of kuangliu/pytorch-cifar).

The reference twin of ``msport/models/resnet.py``: a diff of the two files
shows only framework differences. A state_dict saved by pytorch-cifar's
ResNet loads here with ``strict=True``. Layers keep PyTorch's own defaults:
this side is the ground truth the MindSpore port is measured against.
"""

import torch.nn as nn
import torch.nn.functional as F

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "pool", "linear")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = norm(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride, norm)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = norm(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = norm(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride, norm)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + self.shortcut(x)
        return F.relu(out)


def _shortcut(in_planes, out_planes, stride, norm):
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
        norm(out_planes),
    )


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, width=64, norm=nn.BatchNorm2d):
        super().__init__()
        self.in_planes = width
        self.norm = norm
        self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = norm(width)
        self.layer1 = self._make_layer(block, width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, num_blocks[3], stride=2)
        self.linear = nn.Linear(8 * width * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for s in strides:
            layers.append(block(self.in_planes, planes, s, norm=self.norm))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.avg_pool2d(out, 4).flatten(1)
        return self.linear(out)

    def stage_outputs(self, x):
        """Every stage's output, named as :data:`STAGES`, for layer-by-layer comparison."""
        outputs = {"stem": F.relu(self.bn1(self.conv1(x)))}
        out = outputs["stem"]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            out = getattr(self, name)(out)
            outputs[name] = out
        outputs["pool"] = F.avg_pool2d(out, 4).flatten(1)
        outputs["linear"] = self.linear(outputs["pool"])
        return outputs


def resnet10_w16(num_classes=10):
    """One BasicBlock per stage at a quarter of the width: CPU-sized, for the embedded default."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes, width=16)


def resnet10_w16_nobn(num_classes=10):
    """resnet10_w16 with no BatchNorm: no batch statistics, so data parallel training computes
    what one process computes at any number of ranks (what the data parallel tests check)."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes, width=16, norm=_no_norm)


def _no_norm(channels):
    del channels
    return nn.Identity()


def resnet18(num_classes=10):
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet34(num_classes=10):
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes)


def resnet50(num_classes=10):
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


def resnet101(num_classes=10):
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes)


def resnet152(num_classes=10):
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes)
