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
