"""msport reproduce beyond the case study: arms defined by a config, the paired arm and its statistics, and the
Transformer preset (configs/reproduce_digits_transformer.yaml) end to end."""

import json
import math
import os

import numpy as np
import pytest
import yaml
from scipy import stats as scipy_stats

from msport.cli import main
from msport.data import load_dataset, planned_batches
from msport.errors import UserError
from msport.optim import catalog
from msport.reproduce.config import RunOutcome, load_config, plan_runs
from msport.reproduce.report import build_results, comparison_pairs, console_summary, markdown
from msport.reproduce.stats import paired_difference, paired_seeds_needed, welch_difference
from msport.reproduce.supervise import shard_positions
from msport.training.config import load_resolved

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = os.path.join(ROOT, "configs", "reproduce_digits_transformer.yaml")


def _write(tmp_path, data, name="reproduce.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


# -- paired statistics on constructed numbers ----------------------------------------------------

def test_paired_interval_resolves_what_welch_cannot_when_the_draw_moves_both_arms():
    # the seeds spread both arms by 4 points; each pair differs by about one point
    torch_arm = {0: 90.0, 1: 92.0, 2: 94.0, 3: 91.0}
    paired_arm = {3: 92.1, 1: 92.8, 0: 91.0, 2: 95.3}  # another order: pairs are matched by seed
    p = paired_difference(paired_arm, torch_arm)
    assert p.seeds == (0, 1, 2, 3) and p.differences == pytest.approx((1.0, 0.8, 1.3, 1.1))
    assert p.mean == pytest.approx(1.05) and p.std == pytest.approx(np.std([1.0, 0.8, 1.3, 1.1], ddof=1))
    seeds = sorted(torch_arm)
    reference = scipy_stats.ttest_rel([paired_arm[s] for s in seeds], [torch_arm[s] for s in seeds])
    low, high = reference.confidence_interval(0.95)
    assert (p.ci_low, p.ci_high) == pytest.approx((low, high)) and p.df == 3
    assert p.resolved is True
    welch = welch_difference(list(paired_arm.values()), list(torch_arm.values()))
    assert welch.difference == pytest.approx(p.mean) and welch.resolved is False


def test_paired_interval_pairs_only_common_seeds_and_has_none_for_one_pair():
    p = paired_difference({0: 91.0, 1: 93.0, 5: 80.0}, {0: 90.0, 1: 92.5, 2: 99.0})
    assert p.seeds == (0, 1) and p.differences == pytest.approx((1.0, 0.5))
    one = paired_difference({0: 91.0}, {0: 90.0, 1: 92.0})
    assert one.n == 1 and one.ci_low is None and one.resolved is None
    same = paired_difference({0: 91.0, 1: 93.0}, {0: 90.5, 1: 92.5})
    assert (same.ci_low, same.ci_high, same.resolved) == (0.5, 0.5, True)  # no spread: the point itself
    with pytest.raises(ValueError):
        paired_difference({0: 1.0}, {1: 1.0})


def test_paired_seeds_needed_is_the_smallest_n_meeting_the_paired_planning_formula():
    def margin(n, std):
        return (scipy_stats.t.ppf(0.975, n - 1) + scipy_stats.t.ppf(0.8, n - 1)) * std / math.sqrt(n)

    n = paired_seeds_needed(0.3, 0.5)
    assert margin(n, 0.5) <= 0.3 < margin(n - 1, 0.5)
    assert paired_seeds_needed(0.0, 0.5) is None and paired_seeds_needed(0.3, 0.0) is None


# -- the report of a paired arm --------------------------------------------------------------------

def _outcomes(best):
    return [RunOutcome(arm=arm, seed=seed, path=f"/out/runs/{arm}-seed{seed}", val_acc=[v - 0.5, v], best_epoch=2,
                       best_val_acc=v, train_seconds=1.0)
            for arm, values in best.items() for seed, v in enumerate(values)]


def test_report_gives_per_seed_differences_and_a_paired_interval_beside_welch(tmp_path):
    best = {"torch": [90.0, 92.0, 94.0], "ms_parity": [89.0, 95.0, 91.0], "ms_paired": [90.4, 92.5, 94.3]}
    cfg = load_config(_write(tmp_path, {"seeds": [0, 1, 2], "arms": list(best), "output_dir": "/out",
                                        "train": {"model": "resnet10_w16", "epochs": 2}}))
    results = build_results(cfg, _outcomes(best))
    by_name = {(c["name"], c["metric"]): c for c in results["comparisons"]}
    paired = by_name["ms_paired - torch", "best"]
    assert paired["paired"]["differences"] == pytest.approx([0.4, 0.5, 0.3])
    assert paired["paired"]["resolved"] is True and paired["resolved"] is False  # Welch: the draws' spread
    assert paired["paired"]["verdict"].startswith("resolved: from the same initial weights, ms_paired is higher")
    assert by_name["ms_parity - torch", "best"]["paired"] is None  # its own draw: no pairing by seed
    assert by_name["ms_paired - torch", "best"]["case_study"] is None  # the case study has no such arm
    text = markdown(results)
    assert "95% CI (paired)" in text and "+0.40, +0.50, +0.30" in text
    assert "**ms_paired - torch** (best epoch, paired by seed): resolved" in text
    assert "ms_paired - torch (paired by seed): resolved" in console_summary(results)


def test_comparisons_put_every_arm_against_the_reference_then_each_pair():
    class Arm:
        def __init__(self, framework):
            self.framework = framework

    definitions = {"torch": Arm("torch"), "a": Arm("mindspore"), "b": Arm("mindspore"), "c": Arm("mindspore")}
    assert comparison_pairs(["torch", "a", "b", "c"], definitions) == [
        ("c", "torch"), ("b", "torch"), ("a", "torch"), ("c", "b"), ("c", "a"), ("b", "a")]


# -- arms defined by a config -----------------------------------------------------------------------

def test_the_preset_defines_its_arms_and_the_paired_arm_starts_from_the_torch_runs_weights(tmp_path):
    cfg = load_config(PRESET, seeds=[4], output_dir=str(tmp_path / "out"))
    assert cfg.arms == ["torch", "ms_naive", "ms_parity", "ms_paired"]
    runs = {r.arm.name: r for r in plan_runs(cfg)}
    assert runs["ms_naive"].config.ms_recipe == "mindspore" and runs["ms_parity"].config.ms_recipe == "msport"
    assert runs["torch"].arm.script == "train_torch.py" and runs["ms_paired"].arm.script == "train_ms.py"
    assert runs["ms_paired"].config.init_from == os.path.join(runs["torch"].path, "initial.pth")
    assert runs["ms_parity"].config.init_from is None
    assert {r.config.data for r in runs.values()} == {"digits_tokens"}
    # --shard keeps a paired run with its source, whatever the number of invocations
    positions = shard_positions(plan_runs(load_config(PRESET, seeds=[0, 1], output_dir=str(tmp_path / "o"))))
    assert positions == [0, 1, 2, 0, 4, 5, 6, 4]
    assert load_config(PRESET, arms=["torch", "ms_paired"]).arms == ["torch", "ms_paired"]


@pytest.mark.parametrize("arms, message", [
    ({"a": {"framework": "jax"}}, "framework must be one of torch, mindspore"),
    ({"a": {"framework": "torch", "colour": "red"}}, "unknown key(s) colour"),
    ({"a": {"framework": "mindspore", "start_from": "t"}, "t": {"framework": "torch"}},
     "start_from 't' must name an arm defined before it"),
    ({"t": {"framework": "torch", "train": {"seed": 3}}}, "arms: t: train: seed set by reproduce"),
    ({"t": {"framework": "torch", "train": {"init_from": "x.pth"}}}, "start_from sets init_from"),
    ({"t": {"framework": "torch", "train": {"lrr": 0.1}}}, "arms: t: train: unknown key(s) lrr"),
    ({"t": {"framework": "mindspore", "train": {"ms_recipe": "keras"}}}, "ms_recipe 'keras' unknown"),
    ({"t": {"framework": "torch", "train": {"model": "resnet999"}}}, "arms: t: train:"),
])
def test_bad_arm_definitions_are_one_line_errors(tmp_path, arms, message):
    with pytest.raises(UserError) as info:
        load_config(_write(tmp_path, {"seeds": [0], "train": {"epochs": 1}, "arms": arms}))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_docs_port_of_each_optimizer_gets_mindsporess_names_and_defaults():
    name, kwargs = catalog.builtin_port("AdamW", {"lr": 1e-3, "weight_decay": 0.01, "betas": (0.9, 0.98)})
    assert (name, kwargs) == ("AdamWeightDecay", {"learning_rate": 1e-3, "weight_decay": 0.01, "beta1": 0.9,
                                                  "beta2": 0.98})  # eps left out: MindSpore's 1e-6 applies
    assert catalog.builtin_port("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "dampening": 0.1}) == (
        "Momentum", {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True})
    with pytest.raises(UserError, match="no MindSpore built-in"):
        catalog.builtin_port("RAdam", {"lr": 1e-3})


def test_digit_tokens_are_the_digits_pixels_served_unaugmented():
    tokens, images = load_dataset("digits_tokens"), load_dataset("digits")
    assert tokens.images.shape == (len(images), 64) and tokens.images.dtype == np.int64
    assert tokens.images.min() == 0 and tokens.images.max() == 16
    assert np.array_equal(tokens.labels, images.labels)  # the same split
    batches = planned_batches(tokens, 32, train=True, augment=True, seed=3)
    x, y = batches.batch(2, 1)
    order = batches.plan(2).order[32:64]
    assert np.array_equal(x, tokens.images[order]) and np.array_equal(y, tokens.labels[order])


# -- the preset end to end, real trainers ------------------------------------------------------------

def _load_ms_checkpoint(path):
    from msport.checkpoints import load_ms_checkpoint

    return {k: v.asnumpy() for k, v in load_ms_checkpoint(path).items()}


@pytest.mark.slow
def test_the_presets_four_arms_train_end_to_end_and_the_paired_arm_starts_from_torchs_draw(tmp_path, capsys,
                                                                                         monkeypatch):
    import torch

    with open(PRESET) as fh:
        preset = yaml.safe_load(fh)
    # the preset's own arms; one short epoch (3 steps of 512), no warm-up, eager MindSpore (no compile)
    preset.update(seeds=[0], output_dir=str(tmp_path / "out"))
    preset["train"].update(epochs=1, warmup_epochs=0, batch_size=512, mode="pynative")
    monkeypatch.chdir(ROOT)  # the arms' models are module:callable specs of this checkout
    assert main(["reproduce", "--config", _write(tmp_path, preset)]) == 0
    console = capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["arm"] for r in results["runs"]] == ["torch", "ms_naive", "ms_parity", "ms_paired"]
    assert all(0 <= r["best_val_acc"] <= 100 and len(r["val_acc"]) == 1 for r in results["runs"])
    paired = next(c for c in results["comparisons"] if c["name"] == "ms_paired - torch" and c["metric"] == "best")
    assert paired["paired"]["seeds"] == [0] and "per seed (paired)" in console
    runs = tmp_path / "out" / "runs"
    torch_start = torch.load(runs / "torch-seed0" / "initial.pth", weights_only=True)
    paired_start = _load_ms_checkpoint(runs / "ms_paired-seed0" / "initial.ckpt")
    parity_start = _load_ms_checkpoint(runs / "ms_parity-seed0" / "initial.ckpt")
    for torch_name, ms_name in (("token.weight", "token.embedding_table"),
                                ("layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_weight"),
                                ("classifier.weight", "classifier.weight")):
        assert np.array_equal(paired_start[ms_name], torch_start[torch_name].numpy())  # converted, not redrawn
        assert not np.allclose(parity_start[ms_name], torch_start[torch_name].numpy())  # its own draw
    assert load_resolved(str(runs / "ms_naive-seed0" / "config.yaml")).ms_recipe == "mindspore"
    naive_state = _load_ms_checkpoint(runs / "ms_naive-seed0" / "resume-1.ckpt")
    assert any(k.startswith("adam_m.") for k in naive_state)  # nn.AdamWeightDecay's moments, not msport's
    assert not any(k.startswith("adam_m.") for k in _load_ms_checkpoint(runs / "ms_parity-seed0" / "resume-1.ckpt"))
