"""The diagnosis tools on any torch Module / MindSpore Cell pair: names paired by map, registry or structure
(and said so), inputs of any form and dtype, each side's own loss, every registered trap named."""

import json

import numpy as np
import pytest
import torch
import torch.nn as tnn

from msport import layers as L
from msport._mindspore import ms, nn, ops
from msport.cli import main
from msport.diagnose import audit, compare_state, layer_diff
from msport.diagnose.name_map import NameMapError, load_name_map
from msport.diagnose.pairing import copy_torch_weights, pair_models
from msport.tolerances import LAYER_DIFF_GRAD_NORM_REL


class TorchNet(tnn.Module):
    """Conv, BatchNorm, GELU, Linear: torch's names."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 8, 3, padding=1)
        self.bn = tnn.BatchNorm2d(8)
        self.act = tnn.GELU()
        self.fc = tnn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.act(self.bn(self.conv(x))).mean(dim=(2, 3)))


class RenamedNet(nn.Cell):
    """The same network with every attribute renamed, as mindcv renames torchvision's."""

    def __init__(self, gelu_approximate=False):
        super().__init__()
        self.stem = L.conv2d(3, 8, 3, padding=1)
        self.norm = L.batch_norm2d(8)
        self.gelu = nn.GELU(approximate=gelu_approximate)
        self.head = L.dense(8, 5)

    def construct(self, x):
        return self.head(ops.mean(self.gelu(self.norm(self.stem(x))), (2, 3)))


def _pair(**kwargs):
    torch.manual_seed(0)
    ms.set_seed(0)
    return TorchNet(), RenamedNet(**kwargs)


X = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
NAME_MAP = {"conv": "stem", "bn": "norm", "act": "gelu", "fc": "head"}


def test_renamed_port_is_paired_by_structure_and_says_so():
    torch_model, ms_model = _pair()
    pairing = pair_models(torch_model, ms_model)
    assert pairing.params["conv.weight"] == "stem.weight" and pairing.params["bn.weight"] == "norm.gamma"
    assert pairing.params["bn.running_var"] == "norm.moving_variance"
    assert set(pairing.how.values()) == {"structure"} and pairing.only_torch == pairing.only_ms == []
    text = "\n".join(pairing.lines())
    assert "by structure: conv <-> stem (Conv2d)" in text and "by structure: fc <-> head (Linear)" in text
    # a parameter-less layer has no shapes to be matched by: without a map it is left unpaired
    assert pairing.layers["conv"] == "stem" and "act" not in pairing.layers


@pytest.mark.parametrize("form", ["dict", "callable", "json", "lines"])
def test_a_name_map_in_every_form_pairs_layers_and_parameters(form, tmp_path):
    torch_model, ms_model = _pair()
    if form == "dict":
        name_map = NAME_MAP
    elif form == "callable":
        name_map = NAME_MAP.get
    elif form == "json":
        name_map = tmp_path / "map.json"
        name_map.write_text(json.dumps(NAME_MAP))
    else:
        name_map = tmp_path / "map.txt"
        name_map.write_text("# torch  mindspore\n" + "".join(f"{k} {v}\n" for k, v in NAME_MAP.items()))
    pairing = pair_models(torch_model, ms_model, name_map=str(name_map) if form in ("json", "lines") else name_map)
    assert set(pairing.how.values()) == {"map"} and pairing.params["bn.bias"] == "norm.beta"
    assert pairing.layers["act"] == "gelu"


def test_leftovers_are_listed_on_each_side_never_guessed():
    class Extra(RenamedNet):
        def __init__(self):
            super().__init__()
            self.head = L.dense(8, 6)  # a different shape: nothing pairs it

    torch.manual_seed(0)
    pairing = pair_models(TorchNet(), Extra())
    assert pairing.only_torch == ["fc.weight", "fc.bias"] and pairing.only_ms == ["head.weight", "head.bias"]
    assert any("no MindSpore twin (2): fc.weight, fc.bias" in line for line in pairing.lines())


def test_bad_name_maps_are_one_line_errors(tmp_path):
    torch_model, ms_model = _pair()
    with pytest.raises(NameMapError, match="does not have"):
        pair_models(torch_model, ms_model, name_map={"conv": "trunk"})
    bad = tmp_path / "bad.txt"
    bad.write_text("conv stem extra\n")
    with pytest.raises(NameMapError, match="bad.txt:1"):
        load_name_map(str(bad))
    with pytest.raises(NameMapError, match="no such"):
        load_name_map(str(tmp_path / "absent.json"))


def test_gelu_tanh_approximation_is_named_by_audit_and_layer_diff():
    torch_model, ms_model = _pair(gelu_approximate=True)
    result = audit(torch_model, ms_model, inputs=X, name_map=NAME_MAP)
    assert [(r["check"], r["name"]) for r in result.flagged] == [("GELU", "act")]
    assert "tanh approximation" in result.flagged[0]["reason"]
    assert audit(*_pair(), inputs=X, name_map=NAME_MAP).flagged == []

    torch_model, ms_model = _pair(gelu_approximate=True)
    copy_torch_weights(torch_model, ms_model)
    result = layer_diff(torch_model, ms_model, X, name_map=NAME_MAP)
    assert result.summary["mode"] == "values" and result.summary["first_divergence"] == "act"


def test_tuple_and_dict_inputs_with_each_sides_own_loss():
    class TorchTwoInputs(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = tnn.Embedding(10, 4)
            self.proj = tnn.Linear(4, 3)

        def forward(self, tokens, scale):
            return self.proj(self.embedding(tokens)) * scale  # (N, T, 3): not logits

    class MSTwoInputs(nn.Cell):
        def __init__(self):
            super().__init__()
            self.embedding = L.embedding(10, 4)
            self.proj = L.dense(4, 3)

        def construct(self, tokens, scale):
            return self.proj(self.embedding(tokens)) * scale

    torch.manual_seed(0)
    torch_model, ms_model = TorchTwoInputs(), MSTwoInputs()
    copy_torch_weights(torch_model, ms_model)
    tokens = np.array([[1, 2, 3], [4, 5, 0]], dtype=np.int64)
    scale = np.full((2, 3, 1), 0.5, np.float32)
    with pytest.raises(ValueError, match="not \\(N, classes\\) logits"):
        layer_diff(torch_model, ms_model, (tokens, scale), grads=True)
    result = layer_diff(torch_model, ms_model, {"tokens": tokens, "scale": scale}, grads=True,
                        torch_loss_fn=lambda out, _: (out ** 2).mean(), loss_fn=lambda out, _: (out ** 2).mean())
    assert result.flagged == [] and result.summary["loss_ms"] == pytest.approx(result.summary["loss_torch"], 1e-5)
    assert result.summary["param_grads_compared"] == 3


def test_compare_state_of_a_renamed_pair_and_its_cli(tmp_path, capsys):
    torch_model, ms_model = _pair()
    copy_torch_weights(torch_model, ms_model)
    result = compare_state(torch_model, ms_model)
    assert result.flagged == [] and result.summary["compared"] == 8
    ms_model.head.weight.set_data(ms.Tensor(np.zeros((5, 8), np.float32)))
    assert [r["name"] for r in compare_state(torch_model, ms_model).flagged] == ["fc.weight"]


MODULE = '''
import torch, numpy as np
import torch.nn as tnn
from msport import layers as L
from msport._mindspore import nn, ops

class T(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = tnn.Linear(4, 2)
    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))

class M(nn.Cell):
    def __init__(self, same):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3, stride=2, pad_mode="same", has_bias=True) if same else L.conv2d(3, 4, 3, 2, 1)
        self.out = L.dense(4, 2)
    def construct(self, x):
        return self.out(ops.mean(self.body(x), (2, 3)))

def build_torch():
    torch.manual_seed(0)
    return T()

def build_ms():
    return M(same=False)

def build_ms_same():
    return M(same=True)

def inputs():
    return np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
'''


def test_cli_takes_a_pair_by_file_spec_with_a_name_map(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(MODULE)
    (tmp_path / "names.txt").write_text("conv body\nfc out\n")
    pair = ["--torch", "mine.py:build_torch", "--example", "mine.py:inputs"]
    assert main(["audit", *pair, "--ms", "mine.py:build_ms", "--name-map", "names.txt"]) == 0
    assert "4 parameters paired (4 by map)" in capsys.readouterr().out
    code = main(["audit", *pair, "--ms", "mine.py:build_ms_same", "--json", "a.json"])
    assert code == 1
    document = json.loads((tmp_path / "a.json").read_text())
    flagged = [r for r in document["records"] if r["flagged"]]
    assert [(r["check"], r["name"]) for r in flagged] == [("Conv2d", "conv")]
    assert "pad_mode='same'" in flagged[0]["reason"] and document["summary"]["first_divergence"] == "conv"
    assert main(["layer-diff", *pair, "--ms", "mine.py:build_ms_same", "--copy-weights", "--json", "l.json"]) == 1
    assert json.loads((tmp_path / "l.json").read_text())["summary"]["first_divergence"] == "conv"
    assert main(["compare-ckpt", "--torch", "mine.py:build_torch", "--ms", "mine.py:build_ms"]) == 1  # fresh inits
    capsys.readouterr()


def test_convert_checks_against_a_model_given_by_spec(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(MODULE.replace("self.body", "self.conv").replace("self.out", "self.fc"))
    from msport import specs

    torch.save(specs.call("mine.py:build_torch", "test").state_dict(), tmp_path / "w.pth")
    assert main(["convert", "w.pth", "w.ckpt", "--model", "mine.py:build_ms"]) == 0
    assert "converted 4 tensors" in capsys.readouterr().out
    assert main(["convert", "w.pth", "w2.ckpt", "--model", "mine.py:build_torch"]) == 2
    assert "not a mindspore.nn.Cell" in capsys.readouterr().err and not (tmp_path / "w2.ckpt").exists()


@pytest.mark.parametrize("argv, message", [
    (["audit", "--torch", "nomodule_here:build", "--ms", "x:y"], "cannot import nomodule_here"),
    (["audit", "--torch", "no-colon", "--ms", "x:y"], "unknown model 'no-colon'"),
    (["audit", "--torch", "examples.lstm_classifier:build_torch"], "needs both --torch"),
    (["audit", "--torch", "examples.lstm_classifier:build_ms", "--ms", "examples.lstm_classifier:build_ms"],
     "not a torch.nn.Module"),
    (["audit", "--model", "resnet18", "--torch", "examples.lstm_classifier:build_torch",
      "--ms", "examples.lstm_classifier:build_ms"], "not both"),
    (["audit"], "give a zoo model"),
    (["layer-diff", "--torch", "examples.lstm_classifier:build_torch", "--ms", "examples.lstm_classifier:build_ms"],
     "the torch model failed on the input"),
    (["audit", "--torch", "examples.lstm_classifier:build_torch", "--ms", "examples.lstm_classifier:build_ms",
      "--name-map", "absent.txt"], "no such file"),
])
def test_bad_pairs_are_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


# --- diagnosis that is right on real ports: pairing by computation, replay, verdicts (issue 22) -----------

class PoolNet(tnn.Module):
    """A ResNet stem in miniature: conv, BN, ReLU, MaxPool(3, 2, 1), then a conv and a classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(8)
        self.relu = tnn.ReLU()
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        self.conv2 = tnn.Conv2d(8, 8, 3, padding=1)
        self.fc = tnn.Linear(8, 4)

    def forward(self, x):
        x = self.conv2(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(x.mean(dim=(2, 3)))


class PoolPort(nn.Cell):
    """Its port as mindcv writes one: renamed attributes, the pool with pad_mode='same' when ``same``."""

    def __init__(self, same=True):
        super().__init__()
        self.stem = L.conv2d(3, 8, 3, padding=1, bias=False)
        self.norm = L.batch_norm2d(8)
        self.act = nn.ReLU()
        self.max_pool = nn.MaxPool2d(3, 2, pad_mode="same") if same else L.max_pool2d(3, 2, 1)
        self.body = L.conv2d(8, 8, 3, padding=1)
        self.head = L.dense(8, 4)

    def construct(self, x):
        x = self.body(self.max_pool(self.act(self.norm(self.stem(x)))))
        return self.head(ops.mean(x, (2, 3)))


def _with_stats(torch_model):
    """Random BatchNorm statistics: fresh 0/1 ones would hide a mix-up."""
    with torch.no_grad():
        for layer in torch_model.modules():
            if isinstance(layer, tnn.BatchNorm2d):
                layer.running_mean.normal_(0, 0.3)
                layer.running_var.uniform_(0.5, 2.0)
    return torch_model.eval()


def _copied(torch_model, ms_model):
    copy_torch_weights(torch_model, ms_model)
    return torch_model, ms_model


X8 = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)


def test_a_parameter_free_layer_pairs_by_type_and_position_and_is_the_culprit_with_its_reason():
    torch.manual_seed(0)
    result = layer_diff(*_copied(_with_stats(PoolNet()), PoolPort(same=True)), X8)
    records = {r["name"]: r for r in result.records}
    assert records["maxpool"]["paired_by"] == "position" and records["relu"]["paired_by"] == "position"
    assert result.summary["culprits"] == ["maxpool"] and [r["name"] for r in result.flagged] == ["maxpool"]
    reason = records["maxpool"]["reason"]
    assert reason.startswith("MaxPool2d: torch padding 1, MindSpore pad_mode same")
    assert "bottom/right" in reason
    # conv2 inherits the difference: its output differs, it matches alone, it is not named
    assert records["conv2"]["differs"] and records["conv2"]["alone_rel_diff"] < 1e-5 and not records["conv2"]["flagged"]
    assert result.summary["verdict"] == "diverges" and result.exit_code == 1

    torch.manual_seed(0)
    correct = layer_diff(*_copied(_with_stats(PoolNet()), PoolPort(same=False)), X8)
    assert correct.flagged == [] and correct.summary["verdict"] == "clean" and correct.exit_code == 0
    assert correct.summary["only_torch"] == correct.summary["only_mindspore"] == []


class Nested(tnn.Module):
    """Two stages nested one way: (conv, BN, ReLU6), (conv, BN)."""

    def __init__(self):
        super().__init__()
        self.features = tnn.Sequential(tnn.Sequential(tnn.Conv2d(3, 8, 1), tnn.BatchNorm2d(8), tnn.ReLU6()),
                                       tnn.Sequential(tnn.Conv2d(8, 8, 1), tnn.BatchNorm2d(8)))
        self.fc = tnn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


class NestedOtherwise(nn.Cell):
    """The same layers nested another way: ``features.0`` holds only the first conv."""

    def __init__(self):
        super().__init__()
        self.features = nn.SequentialCell([nn.SequentialCell([L.conv2d(3, 8, 1)]),
                                           nn.SequentialCell([L.batch_norm2d(8), nn.ReLU6(), L.conv2d(8, 8, 1),
                                                              L.batch_norm2d(8)])])
        self.fc = L.dense(8, 3)

    def construct(self, x):
        return self.fc(ops.mean(self.features(x), (2, 3)))


def test_containers_pair_only_when_the_layers_they_ran_pair_so_a_faithful_port_raises_no_alarm():
    torch.manual_seed(0)
    result = layer_diff(*_copied(_with_stats(Nested()), NestedOtherwise()), X8)
    assert result.flagged == [] and result.summary["verdict"] == "clean", [r["reason"] for r in result.flagged]
    paired = {r["name"]: r["paired_by"] for r in result.records}
    # same path, different contents: never compared; the whole stack ran the same layers: compared
    assert "features.0" not in paired and "features.1" not in paired and paired["features"] == "contents"
    assert paired["features.0.2"] == "position"


class Doubling(PoolNet):
    def forward(self, x):
        x = self.conv2(self.maxpool(self.relu(self.bn1(self.conv1(x)))) * 2.0)  # a functional op no layer holds
        return self.fc(x.mean(dim=(2, 3)))


class WithTanh(PoolPort):
    def __init__(self):
        super().__init__(same=False)
        self.squash = nn.Tanh()  # a layer torch does not have

    def construct(self, x):
        x = self.body(self.squash(self.max_pool(self.act(self.norm(self.stem(x))))))
        return self.head(ops.mean(x, (2, 3)))


def test_a_divergent_port_no_layer_explains_names_the_span_and_its_unpaired_layers():
    torch.manual_seed(0)
    result = layer_diff(*_copied(_with_stats(Doubling()), PoolPort(same=False)), X8)
    assert result.summary["culprits"] == [] and result.summary["verdict"] == "diverges" and result.exit_code == 1
    assert result.summary["span"] == ["maxpool", "conv2"]
    assert [r["kind"] for r in result.flagged] == ["span"] and "functional ops" in result.flagged[0]["reason"]

    torch.manual_seed(0)
    result = layer_diff(*_copied(_with_stats(PoolNet()), WithTanh()), X8)
    assert result.summary["suspects"] == ["MindSpore squash (Tanh)"] and result.summary["verdict"] == "diverges"
    assert "RESULT: nothing flagged" not in result.verdict()


class Wider(PoolPort):
    def __init__(self):
        super().__init__(same=False)
        self.head = L.dense(8, 4)
        self.extra = L.dense(4, 4)  # weights torch has no twin for

    def construct(self, x):
        return self.extra(super().construct(x))


def test_parameters_left_unpaired_make_the_verdict_incomplete_never_clean(capsys):
    from msport.commands._common import copied_text

    torch.manual_seed(0)
    torch_model, ms_model = _with_stats(PoolNet()), Wider()
    pairing = copy_torch_weights(torch_model, ms_model)
    assert "NOT copied: 0 torch tensors without a MindSpore twin, 2 MindSpore parameters" in copied_text(pairing)
    result = layer_diff(torch_model, ms_model, X8, mode="values")
    assert result.summary["verdict"] == "incomplete" and result.exit_code == 1
    assert result.verdict().startswith("INCOMPLETE: 0 torch / 2 MindSpore parameters pair with nothing")


class Scaled(tnn.Module):
    """A block with a bare (C, 1, 1) scale (torchvision's ConvNeXt layer_scale) and two branches."""

    def __init__(self):
        super().__init__()
        self.layer_scale = tnn.Parameter(torch.rand(6, 1, 1))
        self.branch1 = tnn.Sequential(tnn.Conv2d(3, 6, 1), tnn.BatchNorm2d(6))
        self.branch2 = tnn.Sequential(tnn.Conv2d(3, 6, 3, padding=1), tnn.BatchNorm2d(6))

    def forward(self, x):
        return self.layer_scale * (self.branch1(x) + self.branch2(x))


class ScaledPort(nn.Cell):
    """Its port: the scale is (C,) and named ``gamma_``; the branches are declared the other way round."""

    def __init__(self):
        super().__init__()
        self.gamma_ = ms.Parameter(ms.Tensor(np.ones(6, np.float32)))
        self.branch_main = nn.SequentialCell([L.conv2d(3, 6, 3, padding=1), L.batch_norm2d(6)])
        self.branch_proj = nn.SequentialCell([L.conv2d(3, 6, 1), L.batch_norm2d(6)])

    def construct(self, x):
        return self.gamma_.reshape(-1, 1, 1) * (self.branch_proj(x) + self.branch_main(x))


def test_renamed_parameters_pair_by_type_shape_and_position_and_each_pair_is_printed():
    pairing = pair_models(Scaled(), ScaledPort())
    assert pairing.only_torch == pairing.only_ms == []
    assert pairing.params["layer_scale"] == "gamma_"
    assert pairing.params["branch1.0.weight"] == "branch_proj.0.weight"
    assert pairing.params["branch2.1.running_var"] == "branch_main.1.moving_variance"
    text = "\n".join(pairing.lines())
    assert "by structure: branch1.0 <-> branch_proj.0 (Conv2d)" in text
    assert "by structure: branch2.0 <-> branch_main.0 (Conv2d)" in text


def test_a_parameter_belongs_to_the_deepest_registered_layer_not_its_immediate_parent():
    """MindSpore's BatchNorm3d keeps its parameters in an inner ``bn2d`` cell; the layer is ``bn``."""
    class Torch3d(tnn.Module):
        def __init__(self):
            super().__init__()
            self.norm = tnn.BatchNorm3d(4)

        def forward(self, x):
            return self.norm(x)

    class Port3d(nn.Cell):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm3d(4)

        def construct(self, x):
            return self.bn(x)

    pairing = pair_models(Torch3d(), Port3d())
    assert pairing.params["norm.weight"] == "bn.bn2d.gamma"
    assert pairing.structural == [("norm", "bn", "BatchNorm3d")]


def test_grads_judge_the_loss_and_gradients_against_measured_noise():
    torch.manual_seed(0)
    torch_model, ms_model = _copied(_with_stats(PoolNet()), PoolPort(same=False))
    labels = np.array([0, 3])
    smoothed = layer_diff(torch_model, ms_model, X8, labels, grads=True, mode="values",
                          torch_loss_fn=lambda out, y: tnn.functional.cross_entropy(out, y, label_smoothing=0.1))
    assert [r["name"] for r in smoothed.flagged][0] == "(loss)"
    assert "label smoothing" in smoothed.flagged[0]["reason"] and smoothed.summary["verdict"] == "diverges"
    # measured on this model, not the 0.3 a worst case needs
    assert smoothed.summary["grad_rtol"] < LAYER_DIFF_GRAD_NORM_REL / 10
    same = layer_diff(torch_model, ms_model, X8, labels, grads=True, mode="values")
    assert same.flagged == [] and same.summary["verdict"] == "clean"


def test_cli_copy_weights_says_what_it_could_not_copy_and_withholds_the_verdict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = MODULE.replace("        self.out = L.dense(4, 2)\n",
                           "        self.out = L.dense(4, 2)\n        self.extra = L.dense(2, 2)\n")
    extra = extra.replace("return self.out(ops.mean(self.body(x), (2, 3)))",
                          "return self.extra(self.out(ops.mean(self.body(x), (2, 3))))")
    (tmp_path / "mine.py").write_text(extra)
    code = main(["layer-diff", "--torch", "mine.py:build_torch", "--ms", "mine.py:build_ms", "--example",
                 "mine.py:inputs", "--copy-weights", "--mode", "values"])
    out = capsys.readouterr().out
    assert code == 1 and "NOT copied: 0 torch tensors without a MindSpore twin, 2 MindSpore parameters" in out
    assert "RESULT: INCOMPLETE: 0 torch / 2 MindSpore parameters pair with nothing" in out


class ReluThenScale(tnn.Module):
    """conv, functional ReLU, x2, a ReLU module: torch has one ReLU module where its port has two."""

    def __init__(self):
        super().__init__()
        self.conv = tnn.Conv2d(3, 4, 3, padding=1)
        self.act = tnn.ReLU()
        self.fc = tnn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.act(tnn.functional.relu(self.conv(x)) * 2.0).mean(dim=(2, 3)))


class ReluCellsThenScale(nn.Cell):
    def __init__(self):
        super().__init__()
        self.stem = L.conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.act = nn.ReLU()
        self.head = L.dense(4, 3)

    def construct(self, x):
        return self.head(ops.mean(self.act(self.relu(self.stem(x)) * 2.0), (2, 3)))


def test_outputs_that_part_and_meet_again_on_agreeing_logits_are_no_divergence():
    """Position pairs torch's one ReLU module with the port's first ReLU cell, which is not its twin: their
    outputs differ (x2 apart), but alone they match and the model's output agrees, so nothing is flagged."""
    torch.manual_seed(0)
    result = layer_diff(*_copied(ReluThenScale(), ReluCellsThenScale()), X8)
    act = next(r for r in result.records if r["name"] == "act")
    assert act["paired_by"] == "position" and act["differs"] and act["alone_rel_diff"] < 1e-6
    assert result.flagged == [] and result.summary["verdict"] == "clean"
    assert any("not a divergence" in note for note in result.notes)
