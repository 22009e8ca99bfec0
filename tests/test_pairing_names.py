"""Pairing on ports whose MindSpore parameter names are not their cells' paths, and alignment ties."""

import numpy as np
import torch
import torch.nn as tnn

from msport import layers as L
from msport._mindspore import nn
from msport.diagnose import copy_torch_weights, layer_diff
from msport.diagnose.structure import lcs


class TorchStage(tnn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = tnn.Conv2d(width, width, 1, bias=False)
        self.bn = tnn.BatchNorm2d(width)

    def forward(self, x):
        return self.bn(self.conv(x))


class TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = tnn.ModuleList([TorchStage(4), TorchStage(4)])

    def forward(self, x):
        for stage in self.trunk:
            x = stage(x)
        return x.mean(dim=(2, 3))


class MSStage(nn.Cell):
    def __init__(self, width):
        super().__init__()
        self.conv = L.conv2d(width, width, 1, bias=False)
        self.norm = L.batch_norm2d(width)

    def construct(self, x):
        return self.norm(self.conv(x))


class MSNet(nn.Cell):
    """Stages appended to an empty CellList, as mindcv's RegNet builds them: MindSpore names their
    parameters ``0.conv.weight`` while the cells are ``stages.0.conv``."""

    def __init__(self):
        super().__init__()
        self.stages = nn.CellList()
        for _ in range(2):
            self.stages.append(MSStage(4))

    def construct(self, x):
        for stage in self.stages:
            x = stage(x)
        return x.mean(axis=(2, 3))


def test_a_celllists_short_parameter_names_keep_their_layers_types_and_pair():
    ms_model = MSNet()
    names = [p.name for p in ms_model.get_parameters()]
    assert names[0] == "0.conv.weight"  # the premise: a name that is not the path stages.0.conv
    torch.manual_seed(0)
    torch_model = TorchNet().eval()
    pairing = copy_torch_weights(torch_model, ms_model)
    assert pairing.only_torch == pairing.only_ms == []
    assert pairing.params["trunk.1.conv.weight"] == "1.conv.weight"
    assert pairing.params["trunk.1.bn.running_var"] == "1.norm.moving_variance"
    assert pairing.layers["trunk.1.conv"] == "stages.1.conv"  # layers are named by path
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
    result = layer_diff(torch_model, ms_model, x, pairing=pairing)
    assert result.summary["verdict"] == "clean" and result.flagged == []
    assert {r["name"]: r["paired_by"] for r in result.records}["trunk.1.conv"] == "parameters"


def test_an_alignment_tie_skips_what_pairs_with_nothing_ahead():
    # a 1x1 projection and the next branch's conv have one shape; the port's block that pairs with
    # nothing comes first: the projection pairs with the projection, not the branch's conv
    assert lcs(["proj", "proj"], ["block", "proj"], lambda a, b: a == b) == [(0, 1)]
