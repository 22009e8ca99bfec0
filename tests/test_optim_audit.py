"""audit's recipe checks: optimizer class and hyperparameters, lr per parameter, schedule, loss configuration."""

import numpy as np
import pytest
import torch

import msport.optim as mo
from examples import transformer_classifier as ex
from msport._mindspore import nn
from msport.convert import load_torch_weights_into_ms
from msport.diagnose import audit
from msport.layers import build
from msport.optim import lr_scheduler as ml


@pytest.fixture(scope="module")
def pair():
    torch_model, ms_model = ex.build_torch(), ex.build_ms()
    load_torch_weights_into_ms(ms_model, torch_model.state_dict())
    return torch_model, ms_model


def _groups(params, first):
    """Two groups: the embedding (lr 1e-3, no decay) and the rest (lr 2e-3, decay 0.05), as a recipe writes."""
    head = [p for n, p in params if n.startswith("embedding")]
    rest = [p for n, p in params if not n.startswith("embedding")]
    return [{"params": head, "lr": 1e-3, "weight_decay": 0.0}, {"params": rest, **first}]


def _torch_recipe(torch_model):
    opt = torch.optim.AdamW(_groups(list(torch_model.named_parameters()), {"lr": 2e-3, "weight_decay": 0.05}))
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [torch.optim.lr_scheduler.LinearLR(opt, 0.1, total_iters=4),
                                                        torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)], [4])
    return opt, sched


def _ms_params(ms_model):
    return [(p.name, p) for p in ms_model.trainable_params()]


def _audit(pair, optimizer, **kw):
    torch_model, ms_model = pair
    topt, tsched = _torch_recipe(torch_model)
    return audit(torch_model, ms_model, optimizer=optimizer, torch_optimizer=topt, torch_scheduler=tsched,
                 inputs=ex.example_input(), check_init=False, **kw), topt


def test_msport_adamw_with_torchs_recipe_flags_nothing(pair):
    opt = mo.AdamW(_groups(_ms_params(pair[1]), {"lr": 2e-3, "weight_decay": 0.05}))
    sched = ml.SequentialLR(opt, [ml.LinearLR(opt, 0.1, total_iters=4), ml.CosineAnnealingLR(opt, 10)], [4])
    result, topt = _audit(pair, opt, lr_schedule=sched, loss_fn=build("CrossEntropyLoss", label_smoothing=0.1),
                          torch_loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=0.1))
    checks = {r["check"] for r in result.records}
    assert {"optimizer", "lr", "schedule", "weight_decay", "loss"} <= checks
    assert result.flagged == []
    assert opt.param_groups[1]["lr"] == pytest.approx(2e-4) and topt.param_groups[1]["lr"] == pytest.approx(2e-4)


def test_adamweightdecay_for_torch_adamw_is_flagged_by_name(pair):
    ms_params = _ms_params(pair[1])
    opt = nn.AdamWeightDecay(_groups(ms_params, {"lr": 2e-3, "weight_decay": 0.05}), learning_rate=2e-3)
    result, _ = _audit(pair, opt)
    reasons = {r["name"]: r["reason"] for r in result.flagged if r["check"] == "optimizer"}
    assert "bias correction" in reasons["class"] and "eps" in reasons["class"]
    assert "msport.optim.AdamW" in reasons["class"]
    assert "1e-06" in reasons["group 0: eps"]  # its default eps, against torch's 1e-8
    schedule = [r for r in result.records if r["check"] == "schedule"]
    assert len(schedule) == 20 and schedule[0]["flagged"]  # a fixed lr against torch's warm-up


def test_a_mindspore_lr_list_is_checked_against_torchs_scheduler(pair):
    topt, tsched = _torch_recipe(pair[0])
    want = []
    for _ in range(20):
        want.append(topt.param_groups[0]["lr"])  # the schedule check reads group 0
        topt.step()
        tsched.step()
    groups = _groups(_ms_params(pair[1]), {"lr": 2e-3, "weight_decay": 0.05})
    good = mo.AdamW(groups)
    result, _ = _audit(pair, good, lr_schedule=want)
    assert not [r for r in result.flagged if r["check"] == "schedule"]
    result, _ = _audit(pair, good, lr_schedule=np.full(20, 2e-3))  # no warm-up, no decay
    assert next(r["name"] for r in result.flagged if r["check"] == "schedule") == "step 0"


def test_loss_configuration_is_compared(pair):
    result, _ = _audit(pair, mo.AdamW(_groups(_ms_params(pair[1]), {"lr": 2e-3, "weight_decay": 0.05})),
                       lr_schedule=None, loss_fn=nn.CrossEntropyLoss(),
                       torch_loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=3))
    loss = next(r for r in result.flagged if r["check"] == "loss")
    assert "label_smoothing 0.0 vs torch 0.1" in loss["reason"] and "ignore_index -100 vs torch 3" in loss["reason"]


def test_a_failing_loss_reports_its_own_error(pair):
    """Issue 16 bug 6: every exception from the user's loss was reported as 'expects one-hot labels'."""
    from msport._mindspore import ops

    class Broken(nn.Cell):
        def construct(self, logits, labels):
            raise ValueError("my loss wants labels of shape (N, 1)")

    result = audit(*pair, loss_fn=Broken(), inputs=ex.example_input(), check_init=False)
    reason = next(r for r in result.flagged if r["check"] == "loss")["reason"]
    assert "my loss wants labels of shape (N, 1)" in reason and "one-hot" not in reason
    del ops


def test_msport_audit_recipe_from_the_command_line(capsys):
    from msport.cli import main

    base = ["audit", "--torch", "examples.transformer_classifier:build_torch", "--ms",
            "examples.transformer_classifier:build_ms", "--example", "examples.transformer_classifier:example_input"]
    main(base + ["--recipe", "examples.transformer_classifier:naive_recipe"])
    out = capsys.readouterr().out
    assert "bias correction" in out and "label_smoothing" in out and "schedule" in out
    main(base + ["--recipe", "examples.transformer_classifier:recipe"])
    out = capsys.readouterr().out
    assert "RESULT: nothing flagged" in out
