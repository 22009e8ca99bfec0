"""parity-train on any pair and recipe: the Transformer example with AdamW, label smoothing and clipping."""

import pytest

from msport.cli import main

BASE = ["parity-train", "--torch", "examples.transformer_classifier:build_torch",
        "--ms", "examples.transformer_classifier:build_ms", "--data", "examples.transformer_classifier:batches",
        "--steps", "6", "--set", "optimizer=adamw", "--lr", "1e-3", "--weight-decay", "0.01",
        "--set", "label_smoothing=0.1", "--set", "clip_grad_norm=1.0", "--schedule", "constant", "--mode", "pynative"]


@pytest.mark.slow
def test_parity_train_says_msport_adamw_follows_torch(capsys):
    assert main(BASE) == 0
    out = capsys.readouterr().out
    assert "AdamW(lr=0.001" in out and "label smoothing 0.1" in out
    assert "verdict: MindSpore follows torch" in out


@pytest.mark.slow
def test_parity_train_flags_the_step_a_planted_adamweightdecay_parts(capsys):
    assert main(BASE + ["--ms-optimizer", "examples.transformer_classifier:adam_weight_decay"]) == 1
    out = capsys.readouterr().out
    # the weights part in step 1's update; the loss shows it from step 2 on
    assert "beyond rounding noise at step(s) [2," in out


def test_parity_train_refuses_half_a_pair(capsys):
    assert main(["parity-train", "--torch", "examples.transformer_classifier:build_torch"]) == 2
    assert "--torch and --ms together" in capsys.readouterr().err


def test_the_recipe_keys_are_config_keys_of_every_program():
    import argparse

    from msport.training.config import ALL, add_arguments, from_mapping, resolve
    from msport.training.recipe import optimizer_arguments
    from msport.training.schedule import per_step_lr

    for program in ALL:
        args = add_arguments(argparse.ArgumentParser(), program).parse_args(
            ["--optimizer", "adamw", "--betas", "0.9", "0.98", "--eps", "1e-6", "--label-smoothing", "0.1",
             "--clip-grad-norm", "1.0", "--schedule", "linear", "--warmup-epochs", "1", "--set", "epochs=3"])
        cfg = resolve(args)
        assert optimizer_arguments(cfg) == ("AdamW", {"lr": 0.1, "weight_decay": 5e-4, "betas": (0.9, 0.98),
                                                      "eps": 1e-6})
    lrs = per_step_lr(cfg, 4)  # linear warm-up over 4 steps, then torch's LinearLR to 0 over 8
    assert list(lrs[:5]) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1]) and lrs[-1] == pytest.approx(0.0125)
    assert optimizer_arguments(from_mapping({"optimizer": "rmsprop"}))[1] == {"lr": 0.1, "weight_decay": 5e-4}


@pytest.mark.parametrize("values,message", [
    ({"optimizer": "lamb"}, "optimizer 'lamb' unknown"),
    ({"betas": [0.9]}, "betas must be two numbers"),
    ({"schedule": "onecycle", "warmup_epochs": 1}, "onecycle warms up by itself"),
    ({"optimizer": "adam", "nesterov": True}, "nesterov is an sgd option"),
    ({"label_smoothing": 1.0}, "label_smoothing must be below 1"),
])
def test_bad_recipe_keys_are_one_line_errors(values, message):
    from msport.errors import UserError
    from msport.training.config import from_mapping

    with pytest.raises(UserError, match=message):
        from_mapping(values)
