"""The two zoos build the same architectures under the same names."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import reference_torch
from msport.convert import ms_param_shapes, torch_to_mindspore
from msport.models import create_model, list_models

RESNET50_PARAMETERS = 23_520_842  # the seed's CIFAR ResNet50, torch layout


def test_both_sides_register_the_same_models():
    assert list_models() == reference_torch.list_models()
    assert {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"} <= set(list_models())


def test_resnet50_has_the_seed_parameter_count_on_both_sides():
    torch_count = sum(p.numel() for p in reference_torch.create_model("resnet50").parameters())
    ms_count = sum(int(np.prod(p.shape)) for p in create_model("resnet50").trainable_params())
    assert torch_count == ms_count == RESNET50_PARAMETERS


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_has_a_twin_of_the_same_shape(name):
    torch_model = reference_torch.create_model(name, num_classes=7)
    ms_model = create_model(name, num_classes=7)
    # Raises on any unmapped, missing or mis-shaped parameter.
    torch_to_mindspore(torch_model.state_dict(), ms_param_shapes(ms_model))


def _pytorch_cifar_state_dict(model):
    """A state_dict as kuangliu/pytorch-cifar's main.py saves it: {'net': ..., 'acc', 'epoch'}, keys under
    'module.' because it wraps the model in DataParallel."""
    return {"net": OrderedDict(("module." + k, v) for k, v in model.state_dict().items()),
            "acc": 93.0, "epoch": 199}


def test_pytorch_cifar_checkpoint_loads_strictly(tmp_path):
    from msport.convert import load_file_into_torch
    from msport.checkpoints import load_torch_state

    torch.manual_seed(1)
    source = reference_torch.create_model("resnet18")
    path = tmp_path / "ckpt.pth"
    torch.save(_pytorch_cifar_state_dict(source), path)
    assert all(k.startswith("module.") for k in load_torch_state(path))
    torch.manual_seed(2)
    target = reference_torch.create_model("resnet18")
    report = load_file_into_torch(target, path)  # msport's own unwrapping and module. stripping
    assert "module." in report.dropped
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_unknown_model_and_scheme_name_the_choices():
    with pytest.raises(ValueError, match="unknown model 'resnet99'.*resnet18"):
        create_model("resnet99")
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        reference_torch.create_model("vgg")
    with pytest.raises(ValueError, match="unknown init scheme"):
        create_model("resnet18", init="xavier")


def _weights_off_normal_001(model):
    """Conv and Dense weights whose std is not Normal(0.01)'s (within 10%; each holds >= 1,728 values)."""
    return [p.name for p in model.get_parameters()
            if p.name.endswith("weight") and abs(p.asnumpy().std() - 0.01) > 0.001]


def test_init_scheme_reaches_every_conv_and_dense():
    legacy = create_model("resnet18", init="legacy")
    assert _weights_off_normal_001(legacy) == []
    assert not legacy.linear.bias.asnumpy().any()
    # the check can fail: torch's kaiming-uniform is off Normal(0.01) in most layers
    assert len(_weights_off_normal_001(create_model("resnet18", init="torch"))) > 10


def test_check_zoo_command_reports_every_requested_model(capsys):
    from msport.cli import main

    assert main(["check-zoo", "--models", "resnet10_w16", "resnet18"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["resnet10_w16", "resnet18"]
    assert all(line.endswith("ok") for line in lines[1:])
    assert main(["check-zoo", "--models", "vgg16"]) == 2


def test_msport_runs_as_a_module_and_lists_every_command_module():
    import importlib
    import pkgutil
    import subprocess
    import sys

    import msport.commands
    from msport.cli import COMMAND_MODULES

    # discovered, not listed: a command module the CLI forgot to register fails here
    found = [f"msport.commands.{m.name}" for m in pkgutil.iter_modules(msport.commands.__path__)
             if not m.name.startswith("_")]
    assert sorted(found) == sorted(COMMAND_MODULES)
    result = subprocess.run([sys.executable, "-m", "msport", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for module in COMMAND_MODULES:
        assert importlib.import_module(module).NAME in result.stdout
