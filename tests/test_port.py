"""msport port: generated twins of traced torch models, their weights, parity, and what cannot be ported.

Small inputs keep it CPU-cheap; the 21-model table is bench/port_torchvision.py's job.
"""

import json
import os

import numpy as np
import pytest
import torch
import torchvision

import reference_torch
from msport import cli, resolve
from msport._mindspore import ms, nn
from msport.tolerances import PARITY_LOSS_REL as LOSS_RTOL
from msport.convert import load_torch_weights_into_ms
from msport.models import create_model
from msport.port import TraceFailed, UnsupportedModel, port, register_layer, register_op, unregister_layer, \
    unregister_op
from msport.port.build import import_source
from msport.port.parity import train_step_parity
from msport.tolerances import PORT_LOGITS_MAX_ABS


def _input(shape, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _graph_mode(cell, x):
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        return cell(ms.Tensor(x)).asnumpy()
    finally:
        ms.set_context(mode=mode)


# --- self-consistency with the hand-written zoo ---------------------------------------------------

def test_ported_reference_resnet50_equals_the_hand_written_one(tmp_path):
    torch.manual_seed(0)
    torch_model = reference_torch.create_model("resnet50").eval()
    x = _input((2, 3, 32, 32))
    result = port(torch_model, x, name="resnet50", check=False, workdir=str(tmp_path))
    hand = create_model("resnet50")
    assert [p.name for p in result.cell.get_parameters()] == [p.name for p in hand.get_parameters()]
    load_torch_weights_into_ms(hand, torch_model.state_dict())
    hand.set_train(False)
    result.cell.set_train(False)
    ported = result.cell(ms.Tensor(x.numpy())).asnumpy()
    written = hand(ms.Tensor(x.numpy())).asnumpy()
    assert np.abs(ported - written).max() <= 1e-6
    with torch.no_grad():
        assert np.abs(ported - torch_model(x).numpy()).max() <= PORT_LOGITS_MAX_ABS


# --- torchvision, a CPU-cheap subset --------------------------------------------------------------

def _tiny_vit():
    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=16, mlp_dim=32, num_classes=10)
    torch.nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision starts the head at zero
    torch.nn.init.normal_(model.class_token, std=0.5)
    return model


def _small_swin():
    # 8x8 patches in 4x4 windows: the second block of stage 1 shifts; stage 2's 4x4 fits one window, no shift
    return torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                                              window_size=[4, 4], num_classes=10)


MODELS = {
    "resnet18": (lambda: torchvision.models.resnet18(), 64),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(), 64),
    "squeezenet1_0": (lambda: torchvision.models.squeezenet1_0(), 64),
    "vit_tiny": (_tiny_vit, 32),
    "swin_small": (_small_swin, 32),
}
SLOW_MODELS = {
    "shufflenet_v2_x0_5": (lambda: torchvision.models.shufflenet_v2_x0_5(), 64),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), 64),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(), 64),
    "regnet_y_400mf": (lambda: torchvision.models.regnet_y_400mf(), 64),
}


def _check_torchvision(name, build, size, tmp_path):
    torch.manual_seed(0)
    model = build().eval()
    result = port(model, _input((1, 3, size, size)), name=name, workdir=str(tmp_path))
    logits = result.report["logits"]
    assert logits["within_tolerance"], f"{name}: logits max-abs diff {logits['max_abs_diff']:.3g}"
    assert logits["rel_diff"] <= 1e-4, f"{name}: logits relative diff {logits['rel_diff']:.3g}"
    assert result.report["first_divergence"] is None
    return model, result


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torchvision_model_ports_with_torch_logits(name, tmp_path):
    build, size = MODELS[name]
    model, result = _check_torchvision(name, build, size, tmp_path)
    if name in ("resnet18", "vit_tiny"):  # parameter names are torch's, through the registry
        names = {p.name for p in result.cell.get_parameters()}
        expected = {"resnet18": {"layer1.0.conv1.weight", "layer2.0.downsample.1.gamma", "fc.bias"},
                    "vit_tiny": {"class_token", "encoder.pos_embedding", "encoder.layers.encoder_layer_1.ln_2.gamma",
                                 "encoder.layers.encoder_layer_0.self_attention.in_proj_weight"}}[name]
        assert expected <= names


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_MODELS))
def test_more_torchvision_models_port(name, tmp_path):
    build, size = SLOW_MODELS[name]
    _check_torchvision(name, build, size, tmp_path)


def test_generated_source_reads_as_a_model_and_runs_in_graph_mode(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = _input((1, 3, 32, 32))
    result = port(model, x, name="resnet18", check=False, workdir=str(tmp_path))
    source = result.source
    assert source.count("class ") == 1 and "class Resnet18(nn.Cell):" in source
    assert "from msport.layers import" in source and "conv2d(64, 64, 3, padding=1, bias=False)" in source
    assert "self.layer2[0].downsample[0](" in source and "exec(" not in source and "eval(" not in source
    result.cell.set_train(False)
    pynative = result.cell(ms.Tensor(x.numpy())).asnumpy()
    graph = _graph_mode(result.cell, x.numpy())
    with torch.no_grad():
        want = model(x).numpy()
    assert np.abs(graph - want).max() <= PORT_LOGITS_MAX_ABS
    assert np.abs(graph - pynative).max() <= PORT_LOGITS_MAX_ABS


# --- training ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_one_training_step_matches_torch(name, tmp_path):
    torch.manual_seed(0)
    model = (torchvision.models.resnet18(num_classes=10) if name == "resnet18"
             else torchvision.models.mobilenet_v2(num_classes=10, dropout=0.0))  # dropout draws differ
    x = _input((4, 3, 32, 32)).numpy()
    y = np.array([0, 3, 7, 3])
    result = port(model, torch.from_numpy(x), name=name, check=False, workdir=str(tmp_path))
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)  # as train_ms.py trains
    try:
        step = train_step_parity(model, result.cell, x, y)
    finally:
        ms.set_context(mode=mode)
    assert step["loss_rel_diff"] <= LOSS_RTOL, step
    assert step["running_stats"], "no BatchNorm statistics compared"
    assert step["running_stats_max_rel_diff"] <= LOSS_RTOL, max(step["running_stats"].items(), key=lambda kv: kv[1])


# --- what cannot be ported ----------------------------------------------------------------------------

BAD_MODELS = '''
import torch


class Branchy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class Flag(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x, negate=False):
        y = self.fc(x)
        if negate:
            return -y
        return y


class Odd(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Upsample(scale_factor=2)
        self.fc = torch.nn.Linear(8, 2)

    def forward(self, x):
        y = torch.erf(self.up(x))
        return self.fc(torch.cumsum(y, 1))
'''


@pytest.fixture
def bad_models(tmp_path, monkeypatch):
    (tmp_path / "bad_models.py").write_text(BAD_MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import bad_models
    importlib.reload(bad_models)
    yield bad_models


def test_untraceable_model_names_the_line_and_concrete_args(bad_models, tmp_path, capsys):
    code = cli.main(["port", "bad_models:Branchy", "--out", str(tmp_path / "out"), "--input-shape", "1,4"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "bad_models.py:11 `if x.sum() > 0:`" in err and "concrete_args" in err and "--concrete-arg" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(TraceFailed):
        port(bad_models.Flag(), _input((1, 4)), check=False)


def test_concrete_arg_fixes_a_python_branch(bad_models, tmp_path, capsys):
    out = tmp_path / "flag"
    code = cli.main(["port", "bad_models:Flag", "--out", str(out), "--input-shape", "2,4",
                     "--concrete-arg", "negate=True"])
    assert code == 0, capsys.readouterr().err
    net = import_source(str(out / "Flag_ms.py")).create(str(out / "Flag.ckpt"))
    model = bad_models.Flag()
    from msport.convert import load_ms_checkpoint  # checks and drops msport's integrity record

    model.load_state_dict({k: torch.from_numpy(v.asnumpy()) for k, v in
                           load_ms_checkpoint(str(out / "Flag.ckpt")).items()})
    x = _input((2, 4))
    assert np.abs(net(ms.Tensor(x.numpy())).asnumpy() - model(x, negate=True).detach().numpy()).max() <= 1e-6


def test_every_unsupported_node_is_listed_and_nothing_is_generated(bad_models, tmp_path, capsys):
    with pytest.raises(UnsupportedModel) as info:
        port(bad_models.Odd(), _input((1, 4)), check=False)
    found = {(u.node, u.target) for u in info.value.unsupported}
    assert found == {("up", "torch.nn.modules.upsampling.Upsample"), ("erf", "torch.erf"),
                     ("cumsum", "torch.cumsum")}
    assert all("bad_models.py:" in u.where for u in info.value.unsupported)
    out = tmp_path / "odd"
    assert cli.main(["port", "bad_models:Odd", "--out", str(out), "--input-shape", "1,4"]) == 2
    err = capsys.readouterr().err
    assert "3 node(s)" in err and "bad_models.py:35 `y = torch.erf(self.up(x))`" in err
    assert sorted(os.listdir(out)) == ["unsupported.json", "unsupported.md"]
    assert len(json.loads((out / "unsupported.json").read_text())) == 3


class ReflectPadded(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
        self.up = torch.nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.norm(x) + self.up(x)[..., :4, :5] * self.up.scale_factor


def test_a_layer_configuration_mindspore_cannot_compute_is_listed_with_the_registry_reason():
    with pytest.raises(UnsupportedModel) as info:
        port(ReflectPadded(), _input((2, 3, 4, 5)), check=False)
    why = {u.node: u.why for u in info.value.unsupported}
    assert set(why) == {"norm", "up"}
    assert "padding_mode='reflect'" in why["norm"] and "test_port.py:" in info.value.unsupported[0].where


# --- twins of one's own ------------------------------------------------------------------------------

class Scale(torch.nn.Module):
    """A user's layer: a learned per-channel scale."""

    def __init__(self, channels):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(channels, 1))

    def forward(self, x):
        return x * self.weight


class ScaleTwin(nn.Cell):
    def __init__(self, channels):
        super().__init__()
        self.gamma = ms.Parameter(ms.Tensor(np.zeros((channels, 1), np.float32)), name="gamma")

    def construct(self, x):
        return x * self.gamma


class UsesScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = Scale(3)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(torch.erf(self.scale(x)))


def test_registered_twins_port_a_module_type_and_an_op(tmp_path):
    model = UsesScale()
    with pytest.raises(UnsupportedModel):
        port(model, _input((2, 3, 5)), check=False)
    twin = register_layer(Scale, ScaleTwin, args=lambda m: ((m.weight.shape[0],), {}), params={"weight": "gamma"})
    op = register_op(torch.erf, "input", "ops.erf({input})")
    try:
        result = port(model, _input((2, 3, 5)), workdir=str(tmp_path))
    finally:
        unregister_layer(twin.torch_type)
        unregister_op(op)
    assert "ScaleTwin(3)" in result.source and "ops.erf(" in result.source
    assert "scale.gamma" in [p.name for p in result.cell.get_parameters()]
    assert result.report["logits"]["within_tolerance"]


# --- the command ---------------------------------------------------------------------------------------

def test_port_command_writes_model_weights_and_parity(tmp_path, capsys):
    out = tmp_path / "rn"
    args = ["port", "torchvision:resnet18", "--out", str(out), "--input-shape", "1,3,32,32"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "max |torch - MindSpore|" in printed and "first divergent layer: none" in printed
    assert sorted(os.listdir(out)) == ["parity.json", "parity.md", "resnet18.ckpt", "resnet18_ms.py"]
    report = json.loads((out / "parity.json").read_text())
    assert report["logits"]["within_tolerance"] and report["layers_compared"] > 50
    net = import_source(str(out / "resnet18_ms.py")).create(str(out / "resnet18.ckpt"))
    torch.manual_seed(0)  # the command's default --seed: the same random weights
    model = torchvision.models.resnet18().eval()
    x = _input((1, 3, 32, 32))
    net.set_train(False)
    with torch.no_grad():
        assert np.abs(net(ms.Tensor(x.numpy())).asnumpy() - model(x).numpy()).max() <= PORT_LOGITS_MAX_ABS
    before = (out / "resnet18.ckpt").stat().st_mtime_ns
    assert cli.main(args) == 2  # never overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "resnet18.ckpt").stat().st_mtime_ns == before


@pytest.mark.parametrize("spec, shape, message", [
    ("torchvision:resnet_nope", "1,3,32,32", "no classification model 'resnet_nope'"),
    ("nosuchmodule_xyz:make", "1,3,32,32", "cannot import nosuchmodule_xyz"),
    ("resnet999", "1,3,32,32", "unknown model 'resnet999'"),
    ("torchvision:resnet18", "1,x,32", "--input-shape '1,x,32'"),
])
def test_port_command_bad_input_is_one_line_and_exit_2(spec, shape, message, tmp_path, capsys):
    assert cli.main(["port", spec, "--out", str(tmp_path / "o"), "--input-shape", shape]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


# --- training a ported model: port:DIR for train_ms.py, module:callable for train_torch.py ------------------

def test_trainers_build_a_ported_model_and_its_torch_spec(tmp_path, capsys):
    from msport.convert import load_file_into_ms

    spec = "reference_torch.resnet:resnet10_w16"
    assert cli.main(["port", spec, "--out", str(tmp_path / "p"), "--input-shape", "2,3,32,32"]) == 0
    torch.manual_seed(3)
    torch_model = resolve.torch_model(spec, num_classes=10)  # what train_torch.py --model SPEC builds
    cell = resolve.ms_model(f"port:{tmp_path / 'p'}", num_classes=10)      # what train_ms.py --model port:DIR builds
    torch.save(torch_model.state_dict(), tmp_path / "init.pth")
    load_file_into_ms(cell, str(tmp_path / "init.pth"))                # --init-from, as both trainers take it
    x = _input((2, 3, 32, 32))
    cell.set_train(False)
    with torch.no_grad():
        assert np.abs(cell(ms.Tensor(x.numpy())).asnumpy() - torch_model.eval()(x).numpy()).max() <= PORT_LOGITS_MAX_ABS
    with pytest.raises(ValueError, match="num_classes=7"):
        resolve.ms_model(f"port:{tmp_path / 'p'}", num_classes=7)
    with pytest.raises(ValueError, match="expected one <name>_ms.py"):
        resolve.ms_model(f"port:{tmp_path}", num_classes=10)
