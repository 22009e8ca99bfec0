"""The diagnosis tools name the bugs real ports have, and stay quiet on a correct port.

Each planted bug lives in a tiny torch/MindSpore pair (input 2x3x8x8) that is
correct unless one argument plants the mistake, so every "flagged" test has a
"correct" twin proving the flag comes from the bug. The zoo's ResNet18 with
converted weights is the real-size correct pair; ResNet50 is marked slow.
"""

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as F

from msport._mindspore import ms, nn, ops
from msport.cli import main
from msport.convert import load_torch_weights_into_ms, ms_cell_params, torch_to_mindspore
from msport.checkpoints import save_ms_checkpoint, save_torch_state
from msport.diagnose import audit, compare_state, layer_diff
from msport.diagnose.stats import compare, ks_normal, ks_two_sample, ks_uniform, summarize
from msport.tolerances import LAYER_PROBE_MAX_REL, MAGNITUDE_RATIO_RANGE
from msport.layers import apply_init

TINY_INPUT = (2, 3, 8, 8)


# --- tiny twin models with switchable bugs ------------------------------------------------------

class TinyTorch(tnn.Module):
    """conv-bn-relu, stride-2 conv-bn-relu, global average, square Linear, classifier."""

    def __init__(self, conv1_bias=True):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 8, 3, padding=1, bias=conv1_bias)
        self.bn1 = tnn.BatchNorm2d(8)
        self.conv2 = tnn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = tnn.BatchNorm2d(16)
        self.fc1 = tnn.Linear(16, 16)  # square: a transposed weight still fits
        self.fc2 = tnn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = x.mean(dim=(2, 3))
        return self.fc2(F.relu(self.fc1(x)))


class TinyMS(nn.Cell):
    """The MindSpore twin, written with MindSpore's own API as a porter would; each argument plants a bug."""

    def __init__(self, conv1_bias=True, conv2_pad_mode="pad", bn_momentum=0.9):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=conv1_bias)
        self.bn1 = nn.BatchNorm2d(8, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, pad_mode=conv2_pad_mode,
                               padding=1 if conv2_pad_mode == "pad" else 0, has_bias=False)
        self.bn2 = nn.BatchNorm2d(16, momentum=bn_momentum)
        self.fc1 = nn.Dense(16, 16)
        self.fc2 = nn.Dense(16, 10)
        self.relu = nn.ReLU()

    def construct(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = ops.mean(x, (2, 3))
        return self.fc2(self.relu(self.fc1(x)))


def tiny_pair(seed=0, copy_weights=True, init="torch", **bugs):
    torch.manual_seed(seed)
    torch_model = TinyTorch(conv1_bias=True)
    ms.set_seed(seed)
    ms_model = TinyMS(**bugs)
    apply_init(ms_model, init)
    if copy_weights:
        load_torch_weights_into_ms(ms_model, torch_model.state_dict())
    return torch_model, ms_model


def tiny_batch(seed=0):
    return np.random.default_rng(seed).standard_normal(TINY_INPUT).astype(np.float32)


def flagged_names(result, kind_key, kind):
    return [r["name"] for r in result.flagged if r.get(kind_key) == kind]


@pytest.fixture(scope="module")
def resnet18_files(tmp_path_factory):
    """A fresh torch ResNet18 as .pth, its conversion as a MindSpore *training* checkpoint (.ckpt)."""
    import reference_torch

    folder = tmp_path_factory.mktemp("resnet18")
    torch.manual_seed(0)
    state = reference_torch.create_model("resnet18").state_dict()
    pth = folder / "resnet18.pth"
    save_torch_state(OrderedDict((k, v.numpy()) for k, v in state.items()), pth)
    params, _ = torch_to_mindspore(state)
    params["moments.conv1.weight"] = np.zeros_like(params["conv1.weight"])  # optimizer state, as training saves
    params["global_step"] = np.array([391], dtype=np.int32)
    ckpt = folder / "resnet18.ckpt"
    save_ms_checkpoint(params, ckpt)
    return pth, ckpt


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- stats ------------------------------------------------------------------------------------------

def test_compare_figures_on_known_arrays():
    a = np.array([1.0, -2.0, 3.0, 0.0], dtype=np.float32)
    b = np.array([1.0, -2.0, 3.0, 1.0], dtype=np.float32)
    figures = compare(a, b, sides=("torch", "ms"))
    assert figures["max_abs_diff"] == 1.0
    assert figures["mean_abs_diff"] == 0.25
    assert figures["rel_diff"] == pytest.approx(1.0 / np.sqrt(14.0))
    assert figures["cosine"] == pytest.approx(14.0 / (np.sqrt(14.0) * np.sqrt(15.0)))
    assert figures["magnitude_ratio"] == pytest.approx(7.0 / 6.0)
    assert (figures["ms_min"], figures["ms_max"]) == (-2.0, 3.0)
    assert compare(np.zeros(3), np.zeros(3))["rel_diff"] == 0.0
    assert compare(np.zeros(3), np.ones(3))["rel_diff"] == float("inf")


def test_summarize_accumulates_in_float64():
    x = np.full(10_000_000, 0.1, dtype=np.float32)  # a float32 running sum drifts by ~1e-3 here
    assert summarize(x)["mean"] == pytest.approx(float(np.float32(0.1)), rel=1e-12)


def test_ks_tests_agree_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    uniform, normal = rng.uniform(-0.2, 0.2, 500), rng.normal(0.0, 0.01, 500)
    for x in (uniform, normal):
        d, p = ks_uniform(x, 0.2)
        reference = stats.kstest(x, "uniform", args=(-0.2, 0.4))
        assert d == pytest.approx(reference.statistic)
        assert p == pytest.approx(reference.pvalue, rel=0.1, abs=1e-12)
    other = rng.uniform(-0.2, 0.2, 400)
    d, p = ks_two_sample(uniform, other)
    reference = stats.ks_2samp(uniform, other, method="asymp")
    assert d == pytest.approx(reference.statistic)
    assert p == pytest.approx(reference.pvalue, rel=0.1)
    assert ks_two_sample(uniform, normal)[1] < 1e-30
    d, p = ks_normal(normal, 0.01)
    reference = stats.kstest(normal, "norm", args=(0.0, 0.01))
    assert d == pytest.approx(reference.statistic) and p == pytest.approx(reference.pvalue, rel=0.1)
    assert ks_normal(normal, 1.0)[1] < 1e-30  # MindSpore's Normal(0.01) Embedding against torch's N(0, 1)


# --- planted bugs: each named by the right command; its correct twin is not --------------------------

def test_correct_tiny_pair_passes_audit_and_layer_diff():
    torch_model, ms_model = tiny_pair()
    optimizer = nn.Momentum([{"params": ms_model.trainable_params(), "weight_decay": 5e-4}], 0.1, 0.9)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    result = audit(torch_model, ms_model, optimizer=optimizer, loss_fn=loss, input_shape=TINY_INPUT)
    assert result.flagged == []
    checks = {r["check"] for r in result.records}
    assert {"init", "BatchNorm2d", "Conv2d", "Linear", "weight_decay", "loss"} <= checks
    result = layer_diff(torch_model, ms_model, tiny_batch(), grads=True, train_mode=True)
    assert result.summary["mode"] == "values"
    assert result.flagged == [], [(r["name"], r["reason"]) for r in result.flagged]
    # conv1's bias feeds a train-mode BatchNorm: its gradient is rounding noise on both sides, not judged
    bias_grad = next(r for r in result.records if r["name"] == "conv1.bias" and r["kind"] == "param_grad")
    assert bias_grad["vanishing"] and bias_grad["rel_diff"] > GRAD_NOISE_REL


GRAD_NOISE_REL = 0.1  # the noise in that vanishing gradient is large relative to itself


def test_legacy_init_is_named_by_audit_and_by_layer_diff_magnitudes():
    torch_model, ms_model = tiny_pair(copy_weights=False, init="legacy")
    result = audit(torch_model, ms_model, input_shape=TINY_INPUT)
    assert flagged_names(result, "check", "init") == [
        "conv1.weight", "conv1.bias", "conv2.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    conv1 = next(r for r in result.flagged if r["name"] == "conv1.weight")
    assert conv1["std_ratio"] < 0.1 and "Normal(0.01)" in conv1["reason"]
    assert "zeros" in next(r for r in result.flagged if r["name"] == "fc2.bias")["reason"]

    result = layer_diff(torch_model, ms_model, tiny_batch())
    assert result.summary["mode"] == "magnitude"
    assert result.summary["first_divergence"] == "conv1"
    first = result.records[0]
    assert first["name"] == "conv1" and first["magnitude_ratio"] < MAGNITUDE_RATIO_RANGE[0] / 4


def test_long_diagnoses_report_each_stage_and_plot_what_they_judged(tmp_path):
    from msport.diagnose import plots
    from msport.diagnose.audit import STAGES as AUDIT_STAGES
    from msport.diagnose.layer_diff import STAGES as LAYER_DIFF_STAGES, TABLE_COLUMNS, plots_for
    from msport.diagnose.report import write_report

    torch_model, ms_model = tiny_pair(copy_weights=False, init="legacy")
    stages = []
    result = audit(torch_model, ms_model, input_shape=TINY_INPUT, progress=stages.append)
    assert len(stages) == AUDIT_STAGES
    init = [r for r in result.records if r["check"] == "init"]
    assert {r["layer_type"] for r in init if r["name"].startswith("conv1.")} == {"Conv2d"}
    assert plots.init_std(init, tmp_path / "init_std.png") and (tmp_path / "init_std.png").stat().st_size > 1000
    constants = [r for r in init if r["expected_std"] == 0]
    assert constants and not plots.init_std(constants, tmp_path / "none.png")  # constants are not drawn
    assert not (tmp_path / "none.png").exists()

    stages.clear()
    result = layer_diff(torch_model, ms_model, tiny_batch(), grads=True, progress=stages.append)
    assert stages == ["torch forward and backward", "MindSpore forward and backward", "comparing every layer"]
    assert len(stages) == LAYER_DIFF_STAGES
    write_report(result, tmp_path / "rep", TABLE_COLUMNS, plots_for(result))
    assert sorted(p.name for p in (tmp_path / "rep").glob("*.png")) == [
        "grad_magnitude.png", "grad_magnitude_ratio.png", "magnitude.png", "magnitude_ratio.png"]


def test_fresh_torch_init_passes_audit_and_magnitude_check():
    torch_model, ms_model = tiny_pair(copy_weights=False, init="torch", seed=3)
    assert audit(torch_model, ms_model, input_shape=TINY_INPUT).flagged == []
    result = layer_diff(torch_model, ms_model, tiny_batch())
    assert result.summary["mode"] == "magnitude"
    assert result.flagged == []


def test_batchnorm_momentum_written_the_torch_way_is_named_by_audit():
    torch_model, ms_model = tiny_pair(bn_momentum=0.1)  # torch's value in MindSpore's API
    result = audit(torch_model, ms_model, input_shape=TINY_INPUT)
    assert flagged_names(result, "check", "BatchNorm2d") == ["bn1", "bn2"]
    assert [r["check"] for r in result.flagged] == ["BatchNorm2d", "BatchNorm2d"]
    bn1 = result.flagged[0]
    assert bn1["ms_momentum"] == pytest.approx(0.9, abs=1e-4) and bn1["torch_momentum"] == 0.1
    assert "momentum=0.9" in bn1["reason"]


def test_audit_measures_momentum_instead_of_trusting_the_attribute():
    # MindSpore 2.10 stores 1 - momentum in .momentum: the attribute of a correct layer reads 0.1
    assert nn.BatchNorm2d(4, momentum=0.9).momentum == pytest.approx(0.1)
    torch_model, ms_model = tiny_pair(bn_momentum=0.9)
    records = [r for r in audit(torch_model, ms_model, input_shape=TINY_INPUT).records if r["check"] == "BatchNorm2d"]
    assert [r["ms_momentum"] for r in records] == [pytest.approx(0.1, abs=1e-4)] * 2
    assert not any(r["flagged"] for r in records)


def test_stride2_same_padding_is_named_by_audit_and_layer_diff():
    torch_model, ms_model = tiny_pair(conv2_pad_mode="same")
    result = audit(torch_model, ms_model, input_shape=TINY_INPUT)
    assert [(r["check"], r["name"]) for r in result.flagged] == [("Conv2d", "conv2")]
    conv2 = result.flagged[0]
    assert conv2["torch_output_shape"] == conv2["ms_output_shape"]  # same shape, shifted values
    assert conv2["probe_max_rel"] > 100 * LAYER_PROBE_MAX_REL and "pad_mode='pad'" in conv2["reason"]

    result = layer_diff(torch_model, ms_model, tiny_batch())
    assert result.summary["mode"] == "values"
    assert result.summary["first_divergence"] == "conv2"
    assert not next(r for r in result.records if r["name"] == "bn1")["flagged"]


def test_conv_missing_its_bias_is_named_by_audit():
    torch_model, ms_model = tiny_pair(copy_weights=False, conv1_bias=False)
    result = audit(torch_model, ms_model, input_shape=TINY_INPUT)
    assert [(r["check"], r["name"]) for r in result.flagged] == [("parameters", "conv1.bias"), ("Conv2d", "conv1")]
    assert "has_bias=False" in result.flagged[1]["reason"]


def test_weight_decay_skipping_batchnorm_is_named_by_audit():
    torch_model, ms_model = tiny_pair()
    ungrouped = nn.Momentum(ms_model.trainable_params(), 0.1, 0.9, weight_decay=5e-4)
    result = audit(torch_model, ms_model, optimizer=ungrouped, input_shape=TINY_INPUT, check_init=False)
    assert flagged_names(result, "check", "weight_decay") == ["bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias"]
    assert "'beta' or 'gamma'" in result.flagged[0]["reason"]
    decayed = next(r for r in result.records if r["name"] == "conv2.weight" and r["check"] == "weight_decay")
    assert decayed["ms_weight_decay"] == pytest.approx(5e-4) and not decayed["flagged"]

    torch_sgd = torch.optim.SGD(torch_model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    grouped = nn.Momentum([{"params": ms_model.trainable_params(), "weight_decay": 5e-4}], 0.1, 0.9)
    result = audit(torch_model, ms_model, optimizer=grouped, torch_optimizer=torch_sgd, input_shape=TINY_INPUT,
                   check_init=False)
    assert result.flagged == []
    assert sum(r["check"] == "weight_decay" for r in result.records) == len(list(torch_model.parameters()))


def test_loss_defaults_are_named_by_audit():
    torch_model, ms_model = tiny_pair()
    result = audit(torch_model, ms_model, loss_fn=nn.SoftmaxCrossEntropyWithLogits(), input_shape=TINY_INPUT,
                   check_init=False)
    assert [(r["check"], r["reason"] is not None) for r in result.flagged] == [("loss", True)]
    assert "sparse=True" in result.flagged[0]["reason"]
    per_sample = nn.SoftmaxCrossEntropyWithLogits(sparse=True)  # reduction='none' left at its default
    result = audit(torch_model, ms_model, loss_fn=per_sample, input_shape=TINY_INPUT, check_init=False)
    assert result.flagged[0]["ms_output_shape"] == (4,) and "reduction='mean'" in result.flagged[0]["reason"]


def test_transposed_dense_is_named_by_compare_ckpt_and_layer_diff(tmp_path, capsys):
    torch_model, ms_model = tiny_pair()
    ms_model.fc1.weight.set_data(ms.Tensor(ms_model.fc1.weight.asnumpy().T.copy()))  # a buggy converter
    pth, ckpt = tmp_path / "tiny.pth", tmp_path / "tiny_ms.ckpt"
    save_torch_state(OrderedDict((k, v.numpy()) for k, v in torch_model.state_dict().items()), pth)
    save_ms_checkpoint(ms_cell_params(ms_model), ckpt)

    code, out, _ = run_cli(["compare-ckpt", pth, ckpt, "--json", tmp_path / "c.json"], capsys)
    assert code == 1
    record = {r["name"]: r for r in json.loads((tmp_path / "c.json").read_text())["records"]}["fc1.weight"]
    assert record["flagged"] and "transposed" in record["reason"]
    assert json.loads((tmp_path / "c.json").read_text())["summary"]["first_divergence"] == "fc1.weight"
    assert "RESULT: 1 flagged; first: fc1.weight" in out

    result = layer_diff(torch_model, ms_model, tiny_batch(), grads=True)
    assert result.summary["mode"] == "values" and result.summary["weights_differ"] == ["fc1.weight"]
    assert result.summary["first_divergence"] == "fc1"
    assert result.summary["first_param_grad_divergence"] == "conv1.weight"  # everything below fc1 inherits it
    # fc2 inherits fc1's error: its output differs, but on torch's own input it matches, so it is not named
    assert [r["name"] for r in result.flagged if r["kind"] == "output"] == ["fc1"]
    assert result.summary["culprits"] == ["fc1"] and "alone" in result.flagged[0]["reason"]
    fc2 = next(r for r in result.records if r["name"] == "fc2")
    assert fc2["differs"] and fc2["alone_rel_diff"] < 1e-5


def test_layer_diff_leaves_both_models_as_they_were():
    torch_model, ms_model = tiny_pair()
    torch_model.eval()
    torch_before = {k: v.clone() for k, v in torch_model.state_dict().items()}
    # asnumpy() can alias the live buffer: copy, or the "before" values move with the model
    ms_before = {k: v.copy() for k, v in ms_cell_params(ms_model).items()}
    mode_before = ms.get_context("mode")
    layer_diff(torch_model, ms_model, tiny_batch(), grads=True, train_mode=True)
    assert not torch_model.training and not ms_model.training
    assert all(torch.equal(v, torch_model.state_dict()[k]) for k, v in torch_before.items())
    assert all(np.array_equal(v, ms_cell_params(ms_model)[k]) for k, v in ms_before.items())
    assert all(p.grad is None for p in torch_model.parameters())
    assert ms.get_context("mode") == mode_before


def test_identity_modules_get_their_own_path_gradient():
    class Residual(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tnn.Linear(4, 4)
            self.shortcut = tnn.Sequential()  # returns its input: the tensor is shared with fc's input

        def forward(self, x):
            h = torch.relu(self.fc(x))
            return self.fc(h) + self.shortcut(h)

    from msport.diagnose import capture_torch

    torch.manual_seed(0)
    model = Residual()
    capture = capture_torch(model, np.ones((2, 4), np.float32), np.array([0, 1]), grads=True)
    d_out = capture.output_grads["fc#2"]  # d loss / d output of the block, which the shortcut passes through
    np.testing.assert_allclose(capture.output_grads["shortcut"], d_out, rtol=1e-6)



def test_a_shared_mindspore_cell_gets_each_calls_gradient():
    from msport.diagnose import capture_mindspore

    class Shared(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc0 = nn.Dense(3, 3, weight_init="identity", bias_init="zeros")
            self.relu = nn.ReLU()  # called twice, as the zoo's blocks do
            self.fc = nn.Dense(3, 2, weight_init=ms.Tensor(np.array([[1., 2., 3.], [0., 1., 0.]], np.float32)),
                               bias_init="zeros")

        def construct(self, x):
            return self.fc(self.relu(self.relu(self.fc0(x)) * 3.0) * 5.0)

    # logits (75, 30) with label 1: d loss / d logits = (1, -1), so by hand
    # d/d relu#2 = 5 * W^T (1, -1) = (5, 5, 15) and d/d relu = 3 * (5, 5, 0)
    capture = capture_mindspore(Shared(), np.array([[1., 2., -1.]], np.float32), np.array([1]), grads=True)
    np.testing.assert_allclose(capture.output_grads["relu#2"], [[5., 5., 15.]], rtol=1e-6)
    np.testing.assert_allclose(capture.output_grads["relu"], [[15., 15., 0.]], rtol=1e-6)

# --- the zoo's correct pair: nothing flagged -----------------------------------------------------------

def test_compare_ckpt_of_a_checkpoint_and_its_conversion_flags_nothing(resnet18_files, tmp_path, capsys):
    pth, ckpt = resnet18_files
    code, out, err = run_cli(["compare-ckpt", pth, ckpt, "--json", tmp_path / "r.json", "--top", "5"], capsys)
    assert (code, err) == (0, "")
    assert "ignored 2 MindSpore optimizer/training-state tensors" in out
    assert "num_batches_tracked" in out and "RESULT: nothing flagged" in out
    assert "5 of 102 rows shown" in out
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["summary"]["compared"] == 102 and document["summary"]["flagged"] == 0
    assert all(r["max_abs_diff"] == 0.0 and not r["flagged"] for r in document["records"])
    assert document["summary"]["first_divergence"] is None


def test_compare_ckpt_lists_one_sided_keys_and_shape_mismatches(tmp_path):
    a = OrderedDict([("fc.weight", np.ones((2, 3), np.float32)), ("fc.bias", np.zeros(2, np.float32)),
                     ("bn.running_mean", np.zeros(2, np.float32))])
    b = OrderedDict([("fc.weight", np.ones((3, 2), np.float32)), ("fc.bias", np.zeros(2, np.float32)),
                     ("extra.weight", np.ones(1, np.float32))])
    result = compare_state(a, b)
    assert [(r["name"], r["status"]) for r in result.flagged] == [
        ("fc.weight", "shape mismatch"), ("bn.running_mean", "only in a"), ("extra.weight", "only in b")]
    assert result.summary["only_a"] == ["bn.running_mean"] and result.summary["only_b"] == ["extra.weight"]
    assert compare_state(a, a).flagged == []


def test_independently_trained_checkpoints_show_their_distributions():
    rng = np.random.default_rng(0)
    a = {"w": rng.normal(0, 1, 1000).astype(np.float32)}
    b = {"w": rng.normal(0, 2, 1000).astype(np.float32)}
    record = compare_state(a, b).records[0]
    assert record["flagged"] and record["b_std"] / record["a_std"] == pytest.approx(2.0, rel=0.1)
    assert abs(record["cosine"]) < 0.1


def test_layer_diff_of_resnet18_with_converted_weights_flags_nothing():
    import reference_torch
    from msport.models import create_model

    torch.manual_seed(0)
    torch_model = reference_torch.create_model("resnet18")
    ms_model = create_model("resnet18")
    load_torch_weights_into_ms(ms_model, torch_model.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    result = layer_diff(torch_model, ms_model, x, grads=True, train_mode=True)
    assert result.flagged == [], [(r["name"], r["reason"]) for r in result.flagged]
    summary = result.summary
    assert summary["mode"] == "values" and summary["first_divergence"] is None
    # 61 common layers (20 convs, 20 BNs, shortcuts, blocks, stages, linear); functional relu has no twin
    assert summary["outputs_compared"] == summary["output_grads_compared"] == 61
    assert summary["param_grads_compared"] == 62
    assert "layer1.0.relu" in summary["only_mindspore"] and summary["only_torch"] == []
    assert summary["loss_ms"] == pytest.approx(summary["loss_torch"], rel=1e-5)


# --- a zoo nobody here wrote: mindcv 0.3.0 against torchvision (bench/diagnose_mindcv.py sweeps them all) ---

def _mindcv_pair(torch_name, mindcv_name):
    """torchvision's model and mindcv's port, random weights with random BatchNorm statistics, copied."""
    import mindcv
    import torchvision

    from msport.diagnose.pairing import copy_torch_weights

    torch.manual_seed(0)
    torch_model = getattr(torchvision.models, torch_name)(num_classes=10).eval()
    with torch.no_grad():
        for layer in torch_model.modules():
            if isinstance(layer, tnn.BatchNorm2d):
                layer.running_mean.normal_(0, 0.2)
                layer.running_var.uniform_(0.5, 2.0)
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.normal_(0, 0.2)
    ms_model = mindcv.create_model(mindcv_name, num_classes=10, pretrained=False)
    pairing = copy_torch_weights(torch_model, ms_model)
    assert pairing.only_torch == pairing.only_ms == []
    return torch_model, ms_model, pairing


MINDCV_BATCH = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)


def test_mindcv_resnet18_is_blamed_on_its_stem_max_pool_with_the_reason():
    torch_model, ms_model, pairing = _mindcv_pair("resnet18", "resnet18")
    result = layer_diff(torch_model, ms_model, MINDCV_BATCH, pairing=pairing)
    summary = result.summary
    assert summary["mode"] == "values" and summary["verdict"] == "diverges" and summary["logits_differ"]
    assert summary["culprits"] == ["maxpool"] and summary["first_divergence"] == "maxpool"
    pool = next(r for r in result.records if r["name"] == "maxpool")
    assert pool["paired_by"] == "position"
    assert pool["reason"].startswith("MaxPool2d: torch padding 1, MindSpore pad_mode same")
    assert "bottom/right" in pool["reason"]
    conv = next(r for r in result.records if r["name"] == "layer1.0.conv1")  # where the old verdict pointed
    assert conv["differs"] and not conv["flagged"] and conv["alone_rel_diff"] < 1e-5


def test_mindcv_mobilenet_v2_a_faithful_port_raises_no_alarm():
    torch_model, ms_model, pairing = _mindcv_pair("mobilenet_v2", "mobilenet_v2_100")
    result = layer_diff(torch_model, ms_model, MINDCV_BATCH, pairing=pairing)
    assert result.flagged == [] and result.summary["verdict"] == "clean", [r["reason"] for r in result.flagged]
    assert result.summary["logits_rel_diff"] < 1e-5 and result.summary["outputs_compared"] > 100


# --- CLI ---------------------------------------------------------------------------------------------------

def test_layer_diff_cli_dumps_reports_and_exits_zero(resnet18_files, tmp_path, capsys):
    pth, _ = resnet18_files
    batch = tmp_path / "batch.npy"
    np.save(batch, np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
    code, out, err = run_cli(["layer-diff", "--model", "resnet18", "--torch-weights", pth, "--input", batch,
                              "--dump", tmp_path / "dump", "--report", tmp_path / "report",
                              "--json", tmp_path / "l.json", "--only-diff"], capsys)
    assert (code, err) == (0, "")
    assert "mode values" in out and "RESULT: nothing flagged" in out
    document = json.loads((tmp_path / "l.json").read_text())
    # 61 paired layer calls and the model's own output
    assert len(document["records"]) == 62 and document["records"][-1]["name"] == "(output)"
    assert document["summary"]["flagged"] == 0 and document["summary"]["verdict"] == "clean"
    dump = tmp_path / "dump"
    with np.load(dump / "torch.npz") as torch_dump, np.load(dump / "mindspore.npz") as ms_dump:
        np.testing.assert_allclose(ms_dump["output/layer4"], torch_dump["output/layer4"], rtol=1e-4, atol=1e-5)
        assert "output/layer1.0.relu#2" in ms_dump.files and ms_dump["input"].shape == (2, 3, 32, 32)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Nothing flagged." in report and "![magnitude.png](magnitude.png)" in report
    assert (tmp_path / "report" / "magnitude.png").stat().st_size > 1000


def test_layer_diff_cli_names_the_seeds_first_conv_on_legacy_init(tmp_path, capsys):
    code, out, _ = run_cli(["layer-diff", "--model", "resnet18", "--ms-init", "legacy", "--batch-size", "2",
                            "--json", tmp_path / "l.json", "--report", tmp_path / "rep"], capsys)
    assert code == 1
    summary = json.loads((tmp_path / "l.json").read_text())["summary"]
    assert summary["mode"] == "magnitude" and summary["first_divergence"] == "conv1"
    assert "RESULT:" in out and "first: conv1" in out
    # magnitude mode draws what it judged: the ratio, with the band; a values difference means nothing here
    assert (tmp_path / "rep" / "magnitude_ratio.png").exists() and not (tmp_path / "rep" / "difference.png").exists()
    assert "## Flagged" in (tmp_path / "rep" / "report.md").read_text()


def test_audit_cli_on_the_zoo(tmp_path, capsys):
    code, out, _ = run_cli(["audit", "--model", "resnet18", "--ms-loss", "softmax-ce-sparse-mean",
                            "--optimizer", "momentum", "--grouped-decay"], capsys)
    assert code == 0 and "RESULT: nothing flagged" in out
    code, out, _ = run_cli(["audit", "--model", "resnet18", "--ms-init", "legacy", "--optimizer", "sgd",
                            "--json", tmp_path / "a.json", "--only-diff"], capsys)
    assert code == 1
    document = json.loads((tmp_path / "a.json").read_text())
    flagged = [(r["check"], r["name"]) for r in document["records"] if r["flagged"]]
    assert flagged[0] == ("init", "conv1.weight")
    assert ("weight_decay", "bn1.weight") in flagged and ("weight_decay", "conv1.weight") not in flagged
    assert document["summary"]["BatchNorm2d_flagged"] == 0 and document["summary"]["Conv2d_flagged"] == 0


@pytest.mark.parametrize("argv, message", [
    (["compare-ckpt", "missing.pth", "missing.ckpt"], "no such checkpoint file"),
    (["compare-ckpt", "weights.txt", "weights.ckpt"], "unknown checkpoint type"),
    (["layer-diff", "--model", "resnet9000"], "unknown model 'resnet9000'"),
    (["audit", "--model", "resnet9000"], "unknown model 'resnet9000'"),
    (["layer-diff", "--model", "resnet18", "--input", "batch.txt"], "takes a .npy file"),
    (["layer-diff", "--model", "resnet18", "--input", "absent.npy"], "no such input file"),
    (["layer-diff", "--model", "resnet18", "--ms-init", "xavier"], "unknown init scheme"),
    (["layer-diff", "--model", "resnet18", "--torch-weights", "absent.pth"], "no such checkpoint file"),
    (["audit", "--model", "resnet18", "--input-shape", "2,x"], "--input-shape"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"msport {argv[0]}: error: ") and message in err


def test_help_for_every_command(capsys):
    for command in ("compare-ckpt", "layer-diff", "audit"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_layer_diff_takes_a_data_batch(capsys):
    code, out, _ = run_cli(["layer-diff", "--model", "resnet18", "--data", "digits", "--batch-size", "2",
                            "--ms-init", "torch"], capsys)
    assert "input: digits test images" in out
    assert code == 0, out  # two independent torch-scheme inits stay within magnitude ratio [0.5, 2]


# --- slow: the seed's model --------------------------------------------------------------------------------

@pytest.mark.slow
def test_resnet50_with_converted_weights_flags_nothing(tmp_path, capsys):
    import reference_torch

    torch.manual_seed(0)
    state = reference_torch.create_model("resnet50").state_dict()
    pth = tmp_path / "resnet50.pth"
    save_torch_state(OrderedDict((k, v.numpy()) for k, v in state.items()), pth)
    params, _ = torch_to_mindspore(state)
    save_ms_checkpoint(params, tmp_path / "resnet50.ckpt")
    code, out, _ = run_cli(["compare-ckpt", pth, tmp_path / "resnet50.ckpt"], capsys)
    assert code == 0
    code, out, _ = run_cli(["layer-diff", "--model", "resnet50", "--torch-weights", pth, "--ms-weights",
                            tmp_path / "resnet50.ckpt", "--grads", "--train-mode", "--batch-size", "4",
                            "--json", tmp_path / "l.json"], capsys)
    summary = json.loads((tmp_path / "l.json").read_text())["summary"]
    assert code == 0, summary
    # every torch module has a twin; 161 trainable parameters (conv, BN affine, linear)
    assert summary["outputs_compared"] == 143 and summary["only_torch"] == []
    assert summary["param_grads_compared"] == 161
