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
from msport.diagnose.pairing import NameMapError, copy_torch_weights, load_name_map, pair_models


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
