"""The audit pairs layers as layer-diff does (msport.diagnose.alignment): parameter-free layers by type and
position between paired neighbours, never by path alone, so a renamed pool is audited against its twin."""

import numpy as np
import torch
import torch.nn as tnn

from msport import layers as L
from msport._mindspore import nn
from msport.diagnose import audit, copy_torch_weights, layer_diff

X = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)


def test_torchvision_resnet18_against_mindcvs_audits_the_renamed_stem_pool_and_its_padding():
    import mindcv
    import torchvision

    torch.manual_seed(0)
    torch_model = torchvision.models.resnet18(num_classes=10).eval()
    ms_model = mindcv.create_model("resnet18", num_classes=10, pretrained=False)
    result = audit(torch_model, ms_model, inputs=X, check_init=False)
    pool = next(r for r in result.records if r["name"] == "maxpool")  # mindcv names it max_pool
    assert pool["check"] == "MaxPool2d" and pool["ms_name"] == "max_pool"
    assert "padding 1" in pool["torch"] and "pad_mode same" in pool["mindspore"]
    assert pool["flagged"] and "bottom/right" in pool["reason"]
    assert [r["name"] for r in result.flagged] == ["maxpool"]
    assert "maxpool (MaxPool2d)" not in result.summary["layers_without_twin"]


class TorchStem(tnn.Module):
    def __init__(self):
        super().__init__()
        self.a = tnn.Conv2d(3, 4, 3, padding=1)
        self.b = tnn.ReLU()
        self.c = tnn.MaxPool2d(3, 2, 1)

    def forward(self, x):
        return self.c(self.b(self.a(x)))


class SwappedNames(nn.Cell):
    """The same layers, the parameter-free ones under each other's names: a path pairing would audit torch's
    MaxPool2d ``c`` against this ReLU ``c``."""

    def __init__(self, fail=False):
        super().__init__()
        self.a = L.conv2d(3, 4, 3, padding=1)
        self.c = nn.ReLU()
        self.b = nn.MaxPool2d(3, 2, pad_mode="same")
        self.fail = fail

    def construct(self, x):
        if self.fail:
            raise ValueError("this port cannot run")
        return self.b(self.c(self.a(x)))


def test_parameter_free_layers_pair_by_type_and_position_not_by_path():
    result = audit(TorchStem(), SwappedNames(), inputs=X, check_init=False)
    pool = next(r for r in result.records if r["name"] == "c")
    assert pool["check"] == "MaxPool2d" and pool["ms_name"] == "b" and pool["flagged"]
    assert "pads bottom/right" in pool["reason"]
    assert not any("expected nn." in (r["reason"] or "") for r in result.records)


def test_a_port_that_cannot_run_the_probe_input_is_still_audited_where_parameters_pair():
    result = audit(TorchStem(), SwappedNames(fail=True), inputs=X, check_init=False)
    assert [r["name"] for r in result.records if r["check"] == "Conv2d"] == ["a"]
    assert "c (MaxPool2d)" in result.summary["layers_without_twin"]
    assert any("fails on the probe input" in n and "ValueError" in n for n in result.notes)


class NoBias(nn.Cell):
    """torch's stem with MindSpore's ``nn.Conv2d`` default ``has_bias=False`` and the pool written as torch's."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, pad_mode="pad", padding=1)
        self.b = nn.ReLU()
        self.c = L.max_pool2d(3, 2, 1)

    def construct(self, x):
        return self.c(self.b(self.a(x)))


def test_a_bias_the_port_lacks_is_a_setting_that_diverges_not_an_incomplete_pairing():
    torch.manual_seed(0)
    torch_model = TorchStem()
    ms_model = NoBias()
    pairing = copy_torch_weights(torch_model, ms_model)
    assert pairing.only_torch == pairing.lacking_torch == ["a.bias"] and pairing.unresolved_torch == []
    assert any("the paired twin layer does not hold" in line for line in pairing.lines())
    result = layer_diff(torch_model, ms_model, X, pairing=pairing)
    assert result.summary["verdict"] == "diverges" and result.summary["culprits"] == ["a"]
    conv = next(r for r in result.records if r["name"] == "a")
    assert conv["cause_known"] and "bias False vs torch True" in conv["reason"]
    assert [r["name"] for r in audit(torch_model, ms_model, inputs=X, check_init=False).flagged] == ["a.bias", "a"]
