"""Forward and backward parity of every zoo model with weights converted from its torch twin."""

import numpy as np
import pytest
import torch

import reference_torch
from conftest import cosine, max_rel, rel_norm
from msport._mindspore import ms, nn
from msport.convert import load_torch_weights_into_ms
from msport.models import create_model, list_models
from msport.models.resnet import STAGES
from msport.tolerances import (MODEL_FORWARD_EVAL_MAX_REL, MODEL_FORWARD_TRAIN_MAX_REL, MODEL_GRAD_MIN_COSINE,
                               MODEL_GRAD_NORM_REL)

BATCH = 4


def _twins(name, seed=0):
    torch.manual_seed(seed)
    torch_model = reference_torch.create_model(name)
    ms_model = create_model(name)
    load_torch_weights_into_ms(ms_model, torch_model.state_dict())
    return torch_model, ms_model


def _assert_stages_agree(torch_model, ms_model, x, rtol):
    with torch.no_grad():
        want = torch_model.stage_outputs(torch.from_numpy(x))
    got = ms_model.stage_outputs(ms.Tensor(x))
    assert list(want) == list(got) == list(STAGES)
    for stage in STAGES:  # in order, so the first failing stage is the one reported
        err = max_rel(want[stage].numpy(), got[stage].asnumpy())
        assert err <= rtol, f"stage {stage}: max|torch - ms| / max|torch| = {err:.2e} > {rtol:.0e}"


#: resnet101 and resnet152 repeat resnet50's bottleneck blocks, deeper; ``msport check-zoo`` checks every model
#: of the zoo (README), the suite the distinct architectures.
SUITE_MODELS = [name for name in list_models() if name not in ("resnet101", "resnet152")]


@pytest.mark.parametrize("name", SUITE_MODELS)
def test_forward_parity_eval_and_train(name, rng):
    torch_model, ms_model = _twins(name)
    x = rng.standard_normal((BATCH, 3, 32, 32)).astype(np.float32)
    torch_model.eval()
    ms_model.set_train(False)
    _assert_stages_agree(torch_model, ms_model, x, MODEL_FORWARD_EVAL_MAX_REL)
    torch_model.train()
    ms_model.set_train(True)
    _assert_stages_agree(torch_model, ms_model, x, MODEL_FORWARD_TRAIN_MAX_REL)


def test_train_mode_updates_running_statistics_alike(rng):
    torch_model, ms_model = _twins("resnet18")
    torch_model.train()
    ms_model.set_train(True)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    torch_model(torch.from_numpy(x))
    ms_model(ms.Tensor(x))
    for module in ("bn1", "layer2.0.shortcut.1", "layer4.1.bn2"):
        t = torch_model.get_submodule(module)
        m = dict((p.name, p) for p in ms_model.get_parameters())
        for t_name, m_name in (("running_mean", "moving_mean"), ("running_var", "moving_variance")):
            err = max_rel(getattr(t, t_name).numpy(), m[f"{module}.{m_name}"].asnumpy())
            assert err < MODEL_FORWARD_TRAIN_MAX_REL, f"{module}.{t_name}: {err:.2e}"


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_backward_parity_every_parameter_gradient(name, rng):
    torch_model, ms_model = _twins(name, seed=1)
    torch_model.train()
    ms_model.set_train(True)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 8)

    loss_t = torch.nn.functional.cross_entropy(torch_model(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    torch_grads = {k: p.grad.numpy() for k, p in torch_model.named_parameters()}

    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    params = ms_model.trainable_params()
    grad_fn = ms.value_and_grad(lambda a, b: loss_fn(ms_model(a), b), None, params)
    loss_m, ms_grads = grad_fn(ms.Tensor(x), ms.Tensor(y.astype(np.int32)))

    assert abs(float(loss_m.asnumpy()) - loss_t.item()) < 1e-4
    to_torch = {"gamma": "weight", "beta": "bias"}
    assert len(params) == len(torch_grads)
    for param, grad in zip(params, ms_grads):
        module, suffix = param.name.rsplit(".", 1)
        want = torch_grads[f"{module}.{to_torch.get(suffix, suffix)}"]
        err, cos = rel_norm(want, grad.asnumpy()), cosine(want, grad.asnumpy())
        assert err <= MODEL_GRAD_NORM_REL and cos >= MODEL_GRAD_MIN_COSINE, \
            f"grad of {param.name}: ||torch - ms|| / ||torch|| = {err:.2e}, cosine {cos:.6f}"
