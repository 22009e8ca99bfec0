"""The worked ports in examples/ (models nobody here wrote): converted weights agree, the correct port
audits clean, and every planted trap is named by audit and placed by layer-diff at the right layer."""

import pytest
import torch

from examples import lstm_classifier, resnet18_torchvision, transformer_classifier
from msport._mindspore import ms
from msport.cli import main
from msport.convert import load_torch_weights_into_ms
from msport.diagnose import audit, copy_torch_weights, layer_diff
from msport.tolerances import MODEL_FORWARD_EVAL_MAX_REL, max_rel

EXAMPLES = {
    "resnet18": (resnet18_torchvision, lambda: resnet18_torchvision.example_input(batch=2, size=32)),
    "transformer": (transformer_classifier, lambda: transformer_classifier.example_input(batch=2, length=8)),
    "lstm": (lstm_classifier, lambda: lstm_classifier.example_input(batch=2, length=6)),
}




@pytest.mark.parametrize("name", list(EXAMPLES))
def test_converted_weights_give_torchs_outputs_and_the_correct_port_audits_clean(name):
    example, make_input = EXAMPLES[name]
    inputs = make_input()
    torch_model = example.build_torch().eval()
    ms_model = example.build_ms()
    load_torch_weights_into_ms(ms_model, torch_model.state_dict())
    ms_model.set_train(False)
    with torch.no_grad():
        want = torch_model(torch.from_numpy(inputs)).numpy()
    got = ms_model(ms.Tensor(inputs)).asnumpy()
    assert max_rel(want, got) <= MODEL_FORWARD_EVAL_MAX_REL

    result = audit(example.build_torch(seed=1), example.build_ms(seed=1), inputs=inputs)
    assert result.flagged == [], [(r["name"], r["reason"]) for r in result.flagged]
    assert result.summary["unpaired_torch"] == [] and result.summary["layers_without_twin"] == []
    # every parameterised layer type the model uses was audited
    audited = {r["check"] for r in result.records}
    assert {"init", "Linear"} <= audited


# (example, trap, audit's check and first flagged name, layer-diff mode, layer-diff's first_divergence)
TRAPS = [
    ("resnet18", "maxpool-same", "MaxPool2d", "maxpool", False, "maxpool"),
    ("transformer", "layernorm-eps", "LayerNorm", "layers.0.norm1", False, "layers.0.norm1"),
    ("transformer", "embedding-init", "init", "embedding.weight", False, "embedding"),
    ("transformer", "dropout-keep-prob", "Dropout", "dropout", True, "dropout"),
    ("lstm", "embedding-init", "init", "embedding.weight", False, "embedding"),
    ("lstm", "dropout-keep-prob", "Dropout", "dropout", True, "dropout"),
]
HINTS = {"maxpool-same": "pad_mode='same'", "layernorm-eps": "epsilon=1e-7", "embedding-init": "Normal(0.01)",
         "dropout-keep-prob": "keep_prob"}


@pytest.mark.parametrize("name, trap, check, flagged, train, first", TRAPS, ids=[f"{t[0]}-{t[1]}" for t in TRAPS])
def test_each_planted_trap_is_named_by_audit_and_placed_by_layer_diff(name, trap, check, flagged, train, first):
    example, make_input = EXAMPLES[name]
    inputs = make_input()
    result = audit(example.build_torch(seed=1), example.build_ms(seed=1, trap=trap), inputs=inputs)
    assert result.flagged, f"{trap} not flagged"
    assert {r["check"] for r in result.flagged} == {check}
    assert result.summary["first_divergence"] == flagged
    assert HINTS[trap] in result.flagged[0]["reason"]

    diff = layer_diff(*example.trapped_pair(trap), inputs, train_mode=train)
    assert diff.summary["first_divergence"] == first, [(r["name"], r["reason"]) for r in diff.flagged][:3]


def test_a_port_under_mindcvs_names_is_lined_up_by_structure_and_position_or_by_a_name_map():
    inputs = resnet18_torchvision.example_input(batch=2, size=32)
    result = audit(resnet18_torchvision.build_torch(), resnet18_torchvision.build_ms_mindcv_names(), inputs=inputs)
    assert result.flagged == [] and result.summary["unpaired_torch"] == []
    assert result.summary["paired_by_structure"] == 17  # three downsample convs + BNs (4 tensors each), fc
    assert "  by structure: fc <-> classifier (Linear)" in result.notes
    # parameter-less layers have no shapes to match: paired by type and position, as layer-diff pairs them
    assert result.summary["layers_without_twin"] == []

    torch_model = resnet18_torchvision.build_torch()
    ported = resnet18_torchvision.build_ms_mindcv_names(trap="maxpool-same")
    copy_torch_weights(torch_model, ported)
    assert [r["name"] for r in audit(torch_model, ported, inputs=inputs).flagged] == ["maxpool"]
    names = {"maxpool": "max_pool", "avgpool": "pool"}
    assert [r["name"] for r in audit(torch_model, ported, inputs=inputs, name_map=names).flagged] == ["maxpool"]
    result = layer_diff(torch_model, ported, inputs, name_map=names)
    assert result.summary["first_divergence"] == "maxpool" and result.summary["only_torch"] == []


def test_compare_ckpt_of_a_renamed_ports_checkpoint_pairs_by_structure(tmp_path, capsys):
    from msport.convert import ms_cell_params
    from msport.checkpoints import save_ms_checkpoint

    torch_model = resnet18_torchvision.build_torch()
    ported = resnet18_torchvision.build_ms_mindcv_names()
    copy_torch_weights(torch_model, ported)
    torch.save(torch_model.state_dict(), tmp_path / "tv.pth")
    save_ms_checkpoint(ms_cell_params(ported), tmp_path / "mindcv.ckpt")
    assert main(["compare-ckpt", str(tmp_path / "tv.pth"), str(tmp_path / "mindcv.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "(85 by registry, 17 by structure)" in out and "RESULT: nothing flagged" in out


def test_layer_diff_with_gradients_on_token_ids_flags_nothing_on_the_correct_port():
    torch_model, ms_model = transformer_classifier.trapped_pair(None)
    result = layer_diff(torch_model, ms_model, transformer_classifier.example_input(batch=2, length=8), grads=True)
    assert result.summary["mode"] == "values" and result.flagged == [], \
        [(r["name"], r["kind"], r["reason"]) for r in result.flagged]
    assert result.summary["param_grads_compared"] == len(list(torch_model.parameters()))
    assert result.summary["loss_ms"] == pytest.approx(result.summary["loss_torch"], rel=1e-5)


def test_the_example_scripts_run(capsys):
    assert transformer_classifier.main(["--length", "8"]) == 0
    out = capsys.readouterr().out
    assert "agree" in out and "audit (correct port): 0 flagged" in out


def test_audit_cli_on_a_user_pair_given_by_module_callable(tmp_path, capsys):
    argv = ["audit", "--torch", "examples.transformer_classifier:build_torch",
            "--ms", "examples.transformer_classifier:build_ms",
            "--example", "examples.transformer_classifier:example_input"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "27 parameters paired (27 by registry)" in out and "RESULT: nothing flagged" in out
    argv = ["layer-diff", "--torch", "examples.lstm_classifier:build_torch",
            "--ms", "examples.lstm_classifier:build_ms",
            "--example", "examples.lstm_classifier:example_input", "--copy-weights", "--grads"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "mode values" in out and "RESULT: nothing flagged" in out
