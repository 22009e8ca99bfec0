"""Conversion is explicit, complete, bit-exact, and refuses what it cannot map."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import reference_torch
from msport.cli import main
from msport._mindspore import ms
from msport.checkpoints import CheckpointError, load_ms_params, save_ms_checkpoint
from msport.convert import (ConversionError, convert_file, load_torch_weights_into_ms, mindspore_to_torch,
                            ms_cell_params, ms_param_shapes, torch_state_shapes, torch_to_mindspore)
from msport.models import create_model


@pytest.fixture(scope="module")
def resnet18_state():
    torch.manual_seed(3)
    model = reference_torch.create_model("resnet18")
    model.train()
    model(torch.randn(4, 3, 32, 32))  # non-trivial running stats and a step counter of 1
    return model.state_dict()


def test_round_trip_is_bit_exact_for_every_key(resnet18_state):
    # num_batches_tracked included: its value, dtype and 0-d shape travel in the .ckpt
    shapes = torch_state_shapes(reference_torch.create_model("resnet18"))
    ms_params, to_ms = torch_to_mindspore(resnet18_state)
    back, to_torch = mindspore_to_torch(ms_params, shapes)
    assert list(back) == list(resnet18_state)
    for key, value in resnet18_state.items():
        assert back[key].dtype == value.numpy().dtype, key
        assert back[key].shape == tuple(value.shape), key
        assert back[key].tobytes() == value.numpy().tobytes(), key
    assert len(to_ms.carried) == 20 and not to_torch.added  # one step counter per BatchNorm


def test_a_ckpt_without_counters_gets_them_from_the_caller(resnet18_state):
    shapes = torch_state_shapes(reference_torch.create_model("resnet18"))
    ms_params, _ = torch_to_mindspore(resnet18_state, ms_param_shapes(create_model("resnet18")))
    assert not any(k.startswith("msport.") for k in ms_params)
    back, to_torch = mindspore_to_torch(ms_params, shapes, num_batches_tracked=7)
    assert len(to_torch.added) == 20 and int(back["bn1.num_batches_tracked"]) == 7


def test_batch_norm_names_follow_the_rules(resnet18_state):
    ms_params, _ = torch_to_mindspore(resnet18_state)
    assert {"bn1.gamma", "bn1.beta", "bn1.moving_mean", "bn1.moving_variance"} <= set(ms_params)
    assert "layer2.0.shortcut.1.gamma" in ms_params and "layer2.0.shortcut.0.weight" in ms_params
    # the step counter has no MindSpore parameter: it travels as a record of msport's own
    assert [k for k in ms_params if "num_batches_tracked" in k][0] == "msport.torch.bn1.num_batches_tracked"
    assert not any("num_batches_tracked" in k for k in ms_param_shapes(create_model("resnet18")))


def test_unmapped_key_raises_with_its_name(resnet18_state):
    state = OrderedDict(resnet18_state)
    state["linear.scale"] = torch.ones(1)
    with pytest.raises(ConversionError, match="'linear.scale'"):
        torch_to_mindspore(state)


def test_shape_mismatch_and_missing_keys_raise_with_names(resnet18_state):
    shapes = ms_param_shapes(create_model("resnet18", num_classes=100))
    with pytest.raises(ConversionError, match=r"linear.weight \(10, 512\) vs \(100, 512\)"):
        torch_to_mindspore(resnet18_state, shapes)
    partial = OrderedDict((k, v) for k, v in resnet18_state.items() if not k.startswith("layer4"))
    with pytest.raises(ConversionError, match="missing layer4"):
        torch_to_mindspore(partial, ms_param_shapes(create_model("resnet18")))


def test_optimizer_state_of_a_training_checkpoint_is_kept_aside(resnet18_state, tmp_path):
    # a MindSpore training checkpoint: model parameters only, no msport.torch. records
    ms_params, _ = torch_to_mindspore(resnet18_state, ms_param_shapes(create_model("resnet18")))
    training = OrderedDict(ms_params)
    training["moments.conv1.weight"] = np.zeros_like(ms_params["conv1.weight"])
    training["global_step"] = np.array([1564], np.int32)
    training["learning_rate"] = np.array(0.1, np.float32)
    save_ms_checkpoint(training, tmp_path / "train.ckpt")
    state, report = mindspore_to_torch(load_ms_params(tmp_path / "train.ckpt"),
                                       torch_state_shapes(reference_torch.create_model("resnet18")))
    assert set(report.extra_state) == {"moments.conv1.weight", "global_step", "learning_rate"}
    assert int(state["bn1.num_batches_tracked"]) == 1564
    assert any("optimizer" in line for line in report.lines())


def test_file_path_pth_to_ckpt_gives_the_same_logits(resnet18_state, tmp_path, rng):
    torch_model = reference_torch.create_model("resnet18").eval()
    torch_model.load_state_dict(resnet18_state)
    torch.save(resnet18_state, tmp_path / "model.pth")
    convert_file(tmp_path / "model.pth", tmp_path / "model.ckpt", model=create_model("resnet18"))

    ms_model = create_model("resnet18")
    ms.load_param_into_net(ms_model, ms.load_checkpoint(str(tmp_path / "model.ckpt")), strict_load=True)
    ms_model.set_train(False)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    want = torch_model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ms_model(ms.Tensor(x)).asnumpy(), want, rtol=1e-4, atol=1e-5)

    convert_file(tmp_path / "model.ckpt", tmp_path / "back.pth", model=reference_torch.create_model("resnet18"))
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    for key, value in resnet18_state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(back[key], value), key


def test_in_memory_copy_matches_file_copy(resnet18_state, tmp_path):
    direct = create_model("resnet18")
    load_torch_weights_into_ms(direct, resnet18_state)
    torch.save(resnet18_state, tmp_path / "m.pth")
    convert_file(tmp_path / "m.pth", tmp_path / "m.ckpt")
    from_file = load_ms_params(tmp_path / "m.ckpt")
    for key, value in ms_cell_params(direct).items():
        assert np.array_equal(value, from_file[key]), key


def test_cli_refuses_bad_input_without_touching_files(resnet18_state, tmp_path, capsys):
    torch.save(resnet18_state, tmp_path / "m.pth")
    (tmp_path / "out.ckpt").write_bytes(b"precious")
    assert main(["convert", str(tmp_path / "m.pth"), str(tmp_path / "out.ckpt")]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out.ckpt").read_bytes() == b"precious"

    assert main(["convert", str(tmp_path / "m.pth"), str(tmp_path / "x.ckpt"), "--model", "resnet50"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "do not fit the MindSpore model" in err
    assert not (tmp_path / "x.ckpt").exists()

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert main(["convert", str(tmp_path / "junk.pth"), str(tmp_path / "y.ckpt")]) == 2
    assert "not a loadable torch checkpoint" in capsys.readouterr().err

    assert main(["convert", str(tmp_path / "m.pth"), str(tmp_path / "z.ckpt"), "--model", "resnet18"]) == 0
    assert "converted 102 tensors" in capsys.readouterr().out


# ---- integrity of the files msport writes ------------------------------------------------------------

def test_a_ckpt_msport_wrote_is_checked_against_its_integrity_mark(resnet18_state, tmp_path):
    from msport.checkpoints import INTEGRITY_KEY

    params, _ = torch_to_mindspore(resnet18_state)
    save_ms_checkpoint(params, tmp_path / "m.ckpt")
    loaded = load_ms_params(tmp_path / "m.ckpt")
    assert INTEGRITY_KEY not in loaded and list(loaded) == list(params)
    data = bytearray((tmp_path / "m.ckpt").read_bytes())
    data[-5] ^= 0xFF  # one byte of the last tensor's data: protobuf still parses it
    (tmp_path / "flipped.ckpt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is damaged: its tensors do not match the digest"):
        load_ms_params(tmp_path / "flipped.ckpt")


def test_an_empty_checkpoint_is_never_written(tmp_path):
    from msport.checkpoints import save_torch_state

    for save, name in ((save_ms_checkpoint, "e.ckpt"), (save_torch_state, "e.pth")):
        with pytest.raises(CheckpointError, match="no tensors to save"):
            save({}, tmp_path / name)
        assert not (tmp_path / name).exists()


def test_structural_check_needs_no_model(resnet18_state):
    from msport.convert import structural_check

    names = list(resnet18_state)
    assert structural_check(names, "torch") == []
    cut = [n for n in names if n not in ("layer2.0.bn1.running_var", "layer3.1.conv2.weight")]
    problems = structural_check(cut + ["layer3.1.conv2.bias"], "torch")
    assert "BatchNorm layer2.0.bn1 lacks running_var" in problems
    assert "layer3.1.conv2 has a bias but no weight" in problems
    no_bias = [n for n in names if n != "linear.bias"] + ["linear2.weight", "linear2.bias"]
    assert structural_check(no_bias, "torch") == []  # linear and linear2 are not siblings
    ms_names = list(torch_to_mindspore(resnet18_state)[0])
    assert structural_check([n for n in ms_names if n != "bn1.gamma"] + ["moments.bn1.beta"], "mindspore") == \
        ["BatchNorm bn1 lacks gamma"]


# ---- bugs found in review and fault rounds (each failed before its fix) -------------------------------

def test_structural_check_does_not_take_a_sequentials_layers_for_siblings(tmp_path, capsys):
    from msport.convert import structural_check

    conv_gn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.GroupNorm(2, 8))
    two_linears = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2, bias=False))
    for model in (conv_gn, two_linears):
        assert structural_check(list(model.state_dict()), "torch") == []
    # the same layer in repeated blocks is still compared: a bias pruned from one block is caught
    blocks = torch.nn.Sequential(*(torch.nn.Sequential(torch.nn.Linear(4, 4)) for _ in range(3)))
    pruned = [n for n in blocks.state_dict() if n != "1.0.bias"]
    assert structural_check(pruned, "torch") == ["1.0 lacks the bias its siblings (0.0...) have"]
    torch.save(conv_gn.state_dict(), tmp_path / "conv_gn.pth")
    assert main(["convert", str(tmp_path / "conv_gn.pth"), str(tmp_path / "conv_gn.ckpt")]) == 0, \
        capsys.readouterr().err


def test_target_names_settle_what_torch_names_leave_open():
    from msport._mindspore import nn

    class Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.head = torch.nn.Linear(4, 2)

    class Ms(nn.Cell):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Dense(4, 2)

    state = Torch().state_dict()
    params, report = torch_to_mindspore(state, ms_param_shapes(Ms()))  # names and shapes, no layer map
    assert list(params) == ["embed.embedding_table", "head.weight", "head.bias"]
    assert np.array_equal(params["embed.embedding_table"], state["embed.weight"].numpy())
    assert report.converted == 3


def _trained_bn_state(steps):
    torch.manual_seed(0)
    model = reference_torch.create_model("resnet10_w16").train()
    for _ in range(steps):
        model(torch.randn(2, 3, 32, 32))
    return model.state_dict()


def test_round_trip_with_model_keeps_step_counters_bit_identical(tmp_path, capsys):
    state = _trained_bn_state(46)
    torch.save(state, tmp_path / "x.pth")
    model = ["--model", "resnet10_w16"]
    assert main(["convert", str(tmp_path / "x.pth"), str(tmp_path / "a.ckpt"), *model]) == 0
    assert main(["convert", str(tmp_path / "a.ckpt"), str(tmp_path / "b.pth"), *model]) == 0
    capsys.readouterr()
    back = torch.load(tmp_path / "b.pth", weights_only=True)
    assert list(back) == list(state)
    assert int(back["bn1.num_batches_tracked"]) == 46
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].numpy().tobytes() == value.numpy().tobytes(), key


def test_zero_element_tensors_convert_and_load_back(tmp_path, capsys):
    state = OrderedDict([("fc.weight", torch.randn(3, 4)), ("fc.bias", torch.randn(3)),
                         ("mask.weight", torch.zeros(0, 4)), ("empty.weight", torch.zeros(0))])
    torch.save(state, tmp_path / "z.pth")
    assert main(["convert", str(tmp_path / "z.pth"), str(tmp_path / "z.ckpt")]) == 0
    loaded = load_ms_params(tmp_path / "z.ckpt")
    assert loaded["mask.weight"].shape == (0, 4) and loaded["empty.weight"].shape == (0,)
    assert main(["convert", str(tmp_path / "z.ckpt"), str(tmp_path / "back.pth")]) == 0, capsys.readouterr().err
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert {k: tuple(v.shape) for k, v in back.items()} == {k: tuple(v.shape) for k, v in state.items()}


def test_compare_ckpt_name_map_yaml_style_and_carried_counters(resnet18_state, tmp_path, capsys):
    import json

    torch.save(resnet18_state, tmp_path / "m.pth")
    assert main(["convert", str(tmp_path / "m.pth"), str(tmp_path / "m.ckpt")]) == 0  # carries 20 counters
    (tmp_path / "map.yaml").write_text("linear.weight: linear.weight\nlinear.bias: linear.bias\n")
    out = tmp_path / "r.json"
    assert main(["compare-ckpt", str(tmp_path / "m.pth"), str(tmp_path / "m.ckpt"), "--name-map",
                 str(tmp_path / "map.yaml"), "--json", str(out)]) == 0, capsys.readouterr().err
    summary = json.loads(out.read_text())["summary"]
    assert summary["flagged"] == 0 and summary["only_a"] == [] and summary["only_b"] == []
    (tmp_path / "typo.txt").write_text("linear.wieght linear.weight\n")  # names nothing: refused, not ignored
    assert main(["compare-ckpt", str(tmp_path / "m.pth"), str(tmp_path / "m.ckpt"), "--name-map",
                 str(tmp_path / "typo.txt")]) == 2
    assert "linear.wieght" in capsys.readouterr().err


def test_compare_ckpt_checks_every_output_before_work(resnet18_state, tmp_path, capsys):
    torch.save(resnet18_state, tmp_path / "m.pth")
    precious = (tmp_path / "m.pth").read_bytes()
    assert main(["compare-ckpt", str(tmp_path / "m.pth"), str(tmp_path / "m.pth"), "--json",
                 str(tmp_path / "m.pth")]) == 2
    assert "is also an input" in capsys.readouterr().err and (tmp_path / "m.pth").read_bytes() == precious
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["compare-ckpt", str(tmp_path / "m.pth"), str(tmp_path / "m.pth"), "--json",
                 str(tmp_path / "r.json"), "--report", str(tmp_path / "notes.txt")]) == 2
    assert "--report" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists() and (tmp_path / "notes.txt").read_text() == "mine"


def test_each_command_module_is_found_by_its_name():
    """``msport CMD`` imports only CMD's module, found from the command's name: the two must agree."""
    import importlib

    from msport.cli import COMMAND_MODULES, _command_name

    for module_name in COMMAND_MODULES:
        assert importlib.import_module(module_name).NAME == _command_name(module_name), module_name


def test_structural_check_tells_a_layernorm_from_a_batchnorm_cut_short(resnet18_state):
    from msport.convert import structural_check

    ln = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    ms_names = list(torch_to_mindspore(ln.state_dict())[0])
    assert "1.gamma" in ms_names and structural_check(ms_names, "mindspore") == []
    names = list(torch_to_mindspore(resnet18_state)[0])
    cut = names[:names.index("layer1.1.bn1.beta") + 1]
    assert structural_check(cut, "mindspore") == [
        "BatchNorm layer1.1.bn1 lacks moving_mean, moving_variance (its siblings, layer1.0.bn1..., have them)"]
    torch_cut = [n for n in resnet18_state if not n.startswith("layer1.1.bn1.running")]
    assert any(p.startswith("BatchNorm layer1.1.bn1 lacks running_mean") for p in structural_check(torch_cut, "torch"))
