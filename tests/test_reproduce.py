"""msport reproduce: seed statistics, config checks, run-folder states, and real runs end to end."""

import csv
import dataclasses
import json
import math
import os
import statistics
import textwrap

import numpy as np
import pytest
import yaml
from scipy import stats as scipy_stats

import msport
from msport.cli import main
from msport.errors import UserError
from msport.reproduce import config as reproduce_config, launch as reproduce_launch, supervise as reproduce_supervise
from msport.reproduce.report import build_results, markdown, write_report
from msport.reproduce.config import FINISHED, INTERRUPTED, NEW, RunOutcome, load_config, plan_runs, run_state
from msport.reproduce.stats import seeds_needed, summarize, welch_difference
from msport.training.config import save_resolved

TINY_TRAIN = {"model": "resnet10_w16", "data": "digits", "epochs": 1, "batch_size": 128, "num_workers": 1}


def _write_config(tmp_path, data, name="reproduce.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


# -- statistics ------------------------------------------------------------------------------

def test_summary_is_mean_and_sample_std():
    s = summarize([92.1, 92.6, 92.4])
    assert s.n == 3
    assert s.mean == pytest.approx(statistics.mean([92.1, 92.6, 92.4]))
    assert s.std == pytest.approx(statistics.stdev([92.1, 92.6, 92.4]))  # n - 1, not n


def test_welch_interval_matches_hand_computation_and_scipy():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.5]
    d = welch_difference(a, b)
    # By hand: variances 5/3 and 61/12; squared standard errors 5/12 and 61/36.
    se_a2, se_b2 = 5 / 12, 61 / 36
    df = (se_a2 + se_b2) ** 2 / (se_a2 ** 2 / 3 + se_b2 ** 2 / 2)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(se_a2 + se_b2)
    assert d.difference == pytest.approx(2.5 - 25 / 6)
    assert d.df == pytest.approx(df) and d.df == pytest.approx(2.98424, abs=1e-5)
    assert (d.ci_low, d.ci_high) == pytest.approx((d.difference - half, d.difference + half))
    ci = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (d.ci_low, d.ci_high) == pytest.approx((ci.low, ci.high))
    assert d.resolved is False


def test_welch_interval_resolves_a_clear_gap_either_way():
    higher, lower = [93.0, 93.2, 93.1], [92.0, 92.1, 91.9]
    assert welch_difference(higher, lower).resolved is True
    flipped = welch_difference(lower, higher)
    assert flipped.resolved is True and flipped.ci_high < 0


def test_one_run_per_arm_has_no_interval():
    d = welch_difference([92.98], [92.58])
    assert d.difference == pytest.approx(0.40)
    assert (d.ci_low, d.ci_high, d.df, d.pooled_std) == (None, None, None, None)
    assert d.resolved is None
    assert summarize([92.98]).std is None
    assert welch_difference([92.9, 93.1], [92.58]).resolved is None  # one side alone is enough to lack one


def test_no_spread_gives_a_point_interval():
    d = welch_difference([90.0, 90.0], [89.0, 89.0])
    assert (d.ci_low, d.ci_high) == (1.0, 1.0) and d.resolved is True


def test_seeds_needed_is_the_smallest_n_meeting_the_planning_formula():
    gap, std = 0.4, 0.3
    n = seeds_needed(gap, std)

    def margin(k):
        df = 2 * k - 2
        return (scipy_stats.t.ppf(0.975, df) + scipy_stats.t.ppf(0.8, df)) * std * math.sqrt(2 / k)

    assert margin(n) <= gap < margin(n - 1)
    # The normal approximation 2 (z_.975 + z_.8)^2 std^2 / gap^2 = 8.8 is a lower bound with t quantiles.
    assert 9 <= n <= 12
    assert seeds_needed(0.0, std) is None
    assert seeds_needed(2 * gap, std) < n


# -- configuration ---------------------------------------------------------------------------

def test_config_applies_command_line_overrides(tmp_path):
    path = _write_config(tmp_path, {"seeds": [0, 1], "train": dict(TINY_TRAIN), "output_dir": "somewhere"})
    cfg = load_config(path, seeds=[3, 4, 5], epochs=7, output_dir=str(tmp_path / "out"), arms=["torch", "ms_parity"])
    assert cfg.seeds == [3, 4, 5] and cfg.train["epochs"] == 7 and cfg.arms == ["torch", "ms_parity"]
    assert cfg.output_dir == str(tmp_path / "out")
    runs = plan_runs(cfg)
    assert [(r.seed, r.arm.name) for r in runs][:2] == [(3, "torch"), (3, "ms_parity")]  # seed-major
    parity = runs[1].config
    assert (parity.init, parity.seed, parity.epochs, parity.progress) == ("torch", 3, 7, False)
    assert parity.output_dir == os.path.join(str(tmp_path / "out"), "runs", "ms_parity-seed3")


@pytest.mark.parametrize("data, message", [
    ({"seeds": [0], "train": {}, "epochs": 3}, "unknown key(s) epochs"),
    ({"seeds": [0], "train": {"epoch": 3}}, "train: unknown key(s) epoch"),
    ({"seeds": [0], "train": {"seed": 3}}, "seed set by reproduce for each run"),
    ({"seeds": [0], "train": {"weight_decay": "5e-4"}}, "weight_decay must be a number, got '5e-4'"),
    ({"seeds": [0], "train": {"schedule": "sawtooth"}}, "schedule 'sawtooth' unknown"),
    ({"seeds": [], "train": {}}, "seeds must be a list of integers"),
    ({"seeds": [1, 1], "train": {}}, "repeat a seed"),
    ({"seeds": [0], "train": {}, "arms": ["torch", "ms_fast"]}, "arms must be a list drawn from"),
    ({"train": {}}, "missing key seeds"),
])
def test_config_errors_are_one_line(tmp_path, data, message):
    with pytest.raises(UserError) as info:
        load_config(_write_config(tmp_path, data))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_command_reports_a_bad_config_as_one_line_and_exit_2(tmp_path, capsys):
    path = _write_config(tmp_path, {"seeds": [0], "train": {"modle": "resnet18"}})
    assert main(["reproduce", "--config", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("msport reproduce: error:") and "modle" in err and "\n" not in err


def test_trainers_missing_beside_the_package_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(msport, "__file__", str(tmp_path / "site-packages" / "msport" / "__init__.py"))
    with pytest.raises(UserError, match="run it from a checkout"):
        reproduce_config.find_trainers()


# -- run-folder states -----------------------------------------------------------------------

def _fake_epochs(run, epochs, resume_file=True):
    """What a trainer leaves once it has finished epochs up to ``epochs``."""
    folder = run.folder()
    os.makedirs(folder.checkpoint_dir, exist_ok=True)
    save_resolved(run.config, os.path.join(run.path, "config.yaml"))
    for epoch in range(len(folder.completed_epochs()) + 1, epochs + 1):
        folder.log_epoch({"epoch": epoch, "train_loss": 1.0, "train_acc": 50.0, "val_loss": 1.0,
                          "val_acc": 40.0 + epoch, "lr": 0.1, "seconds": 1.0, "images_per_second": 100.0})
        folder.record_checkpoint(epoch, 40.0 + epoch, f"{epoch}.ckpt")
    if resume_file:
        open(folder.resume_path(epochs), "w").close()
        folder.commit(epochs)


@pytest.fixture
def two_epoch_run(tmp_path):
    path = _write_config(tmp_path, {"seeds": [0], "arms": ["ms_legacy"], "train": dict(TINY_TRAIN, epochs=2),
                                    "output_dir": str(tmp_path / "out")})
    return plan_runs(load_config(path))[0]


def test_run_states_follow_the_trainers_files(two_epoch_run):
    assert run_state(two_epoch_run) == NEW
    _fake_epochs(two_epoch_run, 1)
    assert run_state(two_epoch_run) == INTERRUPTED
    _fake_epochs(two_epoch_run, 2)
    assert run_state(two_epoch_run) == FINISHED


def test_killed_in_first_epoch_restarts_from_scratch(two_epoch_run):
    _fake_epochs(two_epoch_run, 1, resume_file=False)  # metrics logged, killed before the resume file
    assert run_state(two_epoch_run) == NEW


def test_folder_trained_with_other_settings_is_refused(two_epoch_run):
    _fake_epochs(two_epoch_run, 2)
    other = dataclasses.replace(two_epoch_run, config=dataclasses.replace(two_epoch_run.config, lr=0.05, epochs=3))
    with pytest.raises(UserError) as info:
        run_state(other)
    message = str(info.value)
    assert two_epoch_run.path in message and "lr 0.1 (requested 0.05)" in message and "epochs 2" in message


# -- orchestration with stand-in trainers ----------------------------------------------------

FAKE_TRAINER = textwrap.dedent("""\
    # Stand-in for train_torch.py / train_ms.py: the real run folder, no framework, 10 ms per epoch.
    import argparse, os, signal, sys, time
    from msport.training.config import add_arguments, resolve
    from msport.training.run import Run

    cfg = resolve(add_arguments(argparse.ArgumentParser()).parse_args())
    run = Run.open(cfg.output_dir, cfg, "resume.pth" if "torch" in sys.argv[0] else "resume.ckpt")
    start = run.resume_epoch
    print(("resumed after epoch %d" % start) if cfg.resume else "fresh start", flush=True)
    print("threads %s started %.3f" % (os.environ.get("OMP_NUM_THREADS"), time.time()), flush=True)
    import ctypes
    sig = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(sig))  # PR_GET_PDEATHSIG: what reaches it when reproduce dies
    print("pdeathsig %d" % sig.value, flush=True)
    time.sleep(float(os.environ.get("FAKE_SECONDS", "0")))
    arm = cfg.init if sys.argv[0].endswith("train_ms.py") else "reference"
    offset = {"reference": 3.0, "torch": 2.0, "legacy": 0.0}[arm]
    for epoch in range(start + 1, cfg.epochs + 1):
        if os.environ.get("FAKE_FAIL_AT_EPOCH") == str(epoch):
            print("boom: simulated crash", file=sys.stderr)
            sys.exit(1)
        if os.environ.get("FAKE_KILL_AT_EPOCH") == str(epoch):
            os.kill(os.getpid(), signal.SIGTERM)
        acc = 80.0 + offset + epoch + 0.1 * cfg.seed
        run.log_epoch({"epoch": epoch, "train_loss": 1.0, "train_acc": acc, "val_loss": 1.0, "val_acc": acc,
                       "lr": 0.1, "seconds": 0.01, "images_per_second": 1.0})
        open(os.path.join(run.checkpoint_dir, "%d.ckpt" % epoch), "w").close()
        run.record_checkpoint(epoch, acc, "%d.ckpt" % epoch)
        open(run.resume_path(epoch), "w").close()
        run.commit(epoch)
    """)


@pytest.fixture
def fake_trainers(tmp_path, monkeypatch):
    folder = tmp_path / "fake_checkout"
    folder.mkdir()
    for script in ("train_torch.py", "train_ms.py"):
        (folder / script).write_text(FAKE_TRAINER)
    monkeypatch.setattr(reproduce_supervise, "find_trainers", lambda: str(folder))
    return folder


def test_failed_run_shows_its_log_then_rerun_resumes_it(tmp_path, fake_trainers, monkeypatch, capsys):
    out = tmp_path / "out"
    path = _write_config(tmp_path, {"seeds": [0, 1], "train": dict(TINY_TRAIN, epochs=3), "output_dir": str(out)})
    monkeypatch.setenv("FAKE_FAIL_AT_EPOCH", "3")
    assert main(["reproduce", "--config", path]) == 2
    captured = capsys.readouterr()
    log = os.path.join(str(out), "runs", "torch-seed0", "train.log")
    assert "boom: simulated crash" in captured.err  # the log's tail
    assert f"run torch seed 0 failed (exit 1); its log is {log}" in captured.err.strip().splitlines()[-1]
    assert not os.path.exists(out / "runs" / "ms_legacy-seed0")  # stopped at the first failure

    monkeypatch.delenv("FAKE_FAIL_AT_EPOCH")
    assert main(["reproduce", "--config", path]) == 0
    console = capsys.readouterr().out
    assert "[1/6] torch seed 0: resuming after epoch 2" in console
    with open(log) as fh:
        assert "resumed after epoch 2" in fh.read()
    results = json.loads((out / "results.json").read_text())
    torch_best = results["arms"]["torch"]["best"]
    assert torch_best["values"] == pytest.approx([86.0, 86.1])
    parity_vs_torch = next(c for c in results["comparisons"] if c["name"] == "ms_parity - torch"
                           and c["metric"] == "best")
    assert parity_vs_torch["difference"] == pytest.approx(-1.0)
    assert parity_vs_torch["resolved"] is True  # same spread in both arms, 1-point gap
    assert "resolved: torch is higher than ms_parity by 1.00 points" in console


def test_killed_run_is_reported_as_stopped_not_failed(tmp_path, fake_trainers, monkeypatch, capsys):
    path = _write_config(tmp_path, {"seeds": [0], "arms": ["ms_parity"], "train": dict(TINY_TRAIN, epochs=3),
                                    "output_dir": str(tmp_path / "out")})
    monkeypatch.setenv("FAKE_KILL_AT_EPOCH", "2")
    assert main(["reproduce", "--config", path]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "run ms_parity seed 0 was stopped by signal 15" in last and "rerun the same command" in last


def test_rerun_with_other_epochs_names_the_folder_and_trains_nothing(tmp_path, fake_trainers, capsys):
    out = tmp_path / "out"
    path = _write_config(tmp_path, {"seeds": [0], "arms": ["torch"], "train": TINY_TRAIN, "output_dir": str(out)})
    assert main(["reproduce", "--config", path]) == 0
    metrics = out / "runs" / "torch-seed0" / "metrics.csv"
    before = metrics.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["reproduce", "--config", path, "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert str(out / "runs" / "torch-seed0") in err and "epochs 1 (requested 2)" in err
    assert metrics.stat().st_mtime_ns == before


def _started(out, run):
    """(OMP_NUM_THREADS, start time) the stand-in trainer printed into its train.log."""
    line = next(l for l in (out / "runs" / run / "train.log").read_text().splitlines() if l.startswith("threads"))
    _, threads, _, started = line.split()
    return threads, float(started)


def test_parallel_runs_train_at_once_with_the_thread_count_of_a_serial_run(tmp_path, fake_trainers, monkeypatch,
                                                                          capsys):
    # torch's CPU sums round differently at another thread count: a run's count must not follow the placement
    from msport.training.config import default_threads

    monkeypatch.setenv("FAKE_SECONDS", "2")
    started = {}
    for parallel in ("2", "1"):
        out = tmp_path / f"out{parallel}"
        path = _write_config(tmp_path, {"seeds": [0, 1], "arms": ["torch"], "train": TINY_TRAIN, "output_dir": str(out)})
        assert main(["reproduce", "--config", path, "--parallel-runs", parallel]) == 0
        started[parallel] = [_started(out, "torch-seed0"), _started(out, "torch-seed1")]
        assert yaml.safe_load((out / "runs" / "torch-seed0" / "config.yaml").read_text())["threads"] == \
            default_threads()
    (threads0, start0), (threads1, start1) = started["2"]
    assert abs(start0 - start1) < 1.5  # the second started while the first slept
    assert threads0 == threads1 == started["1"][0][0] == str(default_threads())
    assert len(json.loads((tmp_path / "out2" / "results.json").read_text())["runs"]) == 2


def test_each_parallel_run_gets_its_own_devices():
    launch = reproduce_launch.Launch(parallel_runs=2, nproc_per_run=2)
    assert reproduce_launch.slot_env("cuda", 1, launch, {"PATH": ""})["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert reproduce_launch.slot_env("gpu", 0, launch, {"CUDA_VISIBLE_DEVICES": "4,5,6,7"})["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert reproduce_launch.slot_env("ascend", 1, launch, {})["ASCEND_RT_VISIBLE_DEVICES"] == "2,3"
    with pytest.raises(UserError, match="needs 4 devices"):
        reproduce_launch.slot_env("cuda", 1, launch, {"CUDA_VISIBLE_DEVICES": "0,1"})


@pytest.mark.parametrize("shard", ["2/2", "1", "a/b", "0/0"])
def test_bad_shard_is_a_one_line_error(tmp_path, fake_trainers, capsys, shard):
    path = _write_config(tmp_path, {"seeds": [0], "arms": ["torch"], "train": TINY_TRAIN,
                                    "output_dir": str(tmp_path / "out")})
    assert main(["reproduce", "--config", path, "--shard", shard]) == 2
    assert "--shard" in capsys.readouterr().err


def test_shards_share_one_folder_and_the_report_lists_what_is_missing(tmp_path, fake_trainers, capsys):
    out = tmp_path / "out"
    path = _write_config(tmp_path, {"seeds": [0, 1], "arms": ["torch", "ms_parity"], "train": TINY_TRAIN,
                                    "output_dir": str(out)})
    assert main(["reproduce", "--config", path, "--shard", "1/2"]) == 0  # plan positions 1 and 3
    console = capsys.readouterr().out
    assert sorted(os.listdir(out / "runs")) == ["ms_parity-seed0", "ms_parity-seed1"]
    assert "not finished yet, so not in the results: torch seed 0, torch seed 1" in console
    results = json.loads((out / "results.json").read_text())
    assert results["missing"] == ["torch seed 0", "torch seed 1"] and results["arms_run"] == ["ms_parity"]
    assert "Not finished yet, so not in these results: torch seed 0, torch seed 1" in (out / "results.md").read_text()

    assert main(["reproduce", "--config", path, "--shard", "0/2"]) == 0
    console = capsys.readouterr().out
    assert console.count("finished earlier") == 2 and "not finished yet" not in console
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 4 and results["missing"] == []


@pytest.mark.slow
def test_nproc_per_run_trains_each_run_through_torchrun(tmp_path, capsys):
    out = tmp_path / "out"
    train = dict(TINY_TRAIN, data="digits", batch_size=64)
    path = _write_config(tmp_path, {"seeds": [0], "arms": ["torch"], "train": train, "output_dir": str(out)})
    assert main(["reproduce", "--config", path, "--nproc-per-run", "2"]) == 0
    run = out / "runs" / "torch-seed0"
    assert yaml.safe_load((run / "config.yaml").read_text())["world_size"] == 2
    assert "torch.distributed.run --nproc-per-node 2" in (run / "train.log").read_text()


# -- report ----------------------------------------------------------------------------------

def _outcomes(best_by_arm):
    return [RunOutcome(arm, seed, f"/out/runs/{arm}-seed{seed}", [best - 1.0, best, best - 0.5], 2, best, 3.0)
            for arm, values in best_by_arm.items() for seed, best in enumerate(values)]


def _cfg(tmp_path, arms, seeds):
    return load_config(_write_config(tmp_path, {"seeds": seeds, "arms": arms, "train": TINY_TRAIN,
                                                "output_dir": "/out"}))


def test_report_sets_the_case_studys_numbers_beside_ours(tmp_path):
    best = {"torch": [97.0, 97.4], "ms_legacy": [95.0, 95.2], "ms_parity": [97.1, 97.5]}
    results = build_results(_cfg(tmp_path, list(best), [0, 1]), _outcomes(best))
    names = [(c["name"], c["metric"]) for c in results["comparisons"]]
    assert names == [(n, m) for n in ("ms_parity - torch", "ms_legacy - torch", "ms_parity - ms_legacy")
                     for m in ("best", "final")]
    case_study = {c["name"]: c["case_study"] for c in results["comparisons"]}
    assert case_study == {"ms_parity - torch": 0.40, "ms_legacy - torch": -0.62, "ms_parity - ms_legacy": 1.02}
    assert results["arms"]["ms_legacy"]["best"]["mean"] == pytest.approx(95.1)
    assert results["arms"]["ms_legacy"]["final"]["mean"] == pytest.approx(94.6)
    text = markdown(results)
    assert "the MindSpore accuracy-debugging guide's CIFAR-10 ResNet50, one run per arm, 200 epochs" in text
    # the project's own words ("the seed document", "the seed's before") are not the user's
    assert "seed document" not in text and "seed's" not in text
    assert "| ms_legacy | 2     | 95.10 ± 0.14" in text
    assert "**ms_parity - torch** (best epoch): not resolved at 2 seeds per arm" in text
    assert "**ms_legacy - torch** (best epoch): resolved: torch is higher than ms_legacy by 2.10 points" in text
    assert "Welch" in text and "scipy.stats.t" in text


def test_report_with_one_seed_says_an_interval_needs_two(tmp_path):
    best = {"torch": [92.58], "ms_parity": [92.98]}
    results = build_results(_cfg(tmp_path, list(best), [0]), _outcomes(best))
    (comparison, _) = results["comparisons"]
    assert comparison["ci_low"] is None and comparison["resolved"] is None
    assert comparison["verdict"].startswith("needs >= 2 seeds per arm")
    text = markdown(results)
    assert "92.58 (one run)" in text and "needs >= 2 seeds" in text


def test_report_files_are_written(tmp_path):
    best = {"torch": [97.0, 97.4], "ms_parity": [97.1, 97.5]}
    outcomes = _outcomes(best)
    paths = write_report(build_results(_cfg(tmp_path, list(best), [0, 1]), outcomes), outcomes, str(tmp_path / "r"))
    assert [os.path.basename(p) for p in paths] == ["results.json", "results.md", "val_acc.png"]
    with open(paths[2], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    results = json.loads(open(paths[0]).read())
    assert results["plot"] == "val_acc.png"
    assert results["environment"]["packages"]["numpy"] == np.__version__ and results["environment"]["cpu_count"]
    assert "environment.json" in results["determinism"] and "Reproducibility:" in open(paths[1]).read()


# -- end to end, real trainers ---------------------------------------------------------------

def _metrics(path):
    with open(os.path.join(path, "metrics.csv"), newline="") as fh:
        return [float(row["val_acc"]) for row in csv.DictReader(fh)]


@pytest.mark.slow
def test_reproduce_end_to_end_then_rerun_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "out"
    path = _write_config(tmp_path, {"seeds": [0, 1], "arms": ["torch", "ms_parity"], "train": TINY_TRAIN,
                                    "output_dir": str(out)})
    assert main(["reproduce", "--config", path]) == 0
    console = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 4
    for run in results["runs"]:
        curve = _metrics(run["path"])
        assert len(curve) == 1 and run["val_acc"] == pytest.approx(curve)
        # best.json keeps every digit, metrics.csv six significant ones
        assert run["best_val_acc"] == pytest.approx(max(curve), abs=1e-3)
        assert run["final_val_acc"] == pytest.approx(curve[-1])
        with open(os.path.join(run["path"], "train.log")) as fh:
            assert "best val acc" in fh.read()  # the trainer's own output went to its log
        framework = "torch" if run["arm"] == "torch" else "mindspore"
        assert run["environment"][0]["packages"][framework]  # what the trainer process itself ran on
    for arm in ("torch", "ms_parity"):
        values = [r["best_val_acc"] for r in results["runs"] if r["arm"] == arm]
        assert results["arms"][arm]["best"]["mean"] == pytest.approx(np.mean(values))
        assert results["arms"][arm]["best"]["std"] == pytest.approx(np.std(values, ddof=1))
    comparison = results["comparisons"][0]
    assert comparison["name"] == "ms_parity - torch" and comparison["ci_low"] < comparison["difference"]
    assert (out / "val_acc.png").stat().st_size > 10_000
    assert "| ms_parity - torch" in (out / "results.md").read_text()
    assert "| torch " in console and "wrote " in console  # the table is printed too

    finished = {r["path"]: os.stat(os.path.join(r["path"], "metrics.csv")).st_mtime_ns for r in results["runs"]}
    logs = {p: open(os.path.join(p, "train.log"), "rb").read() for p in finished}
    assert main(["reproduce", "--config", path]) == 0
    # nothing retrained: every trainer launch appends a line to its train.log
    assert {p: open(os.path.join(p, "train.log"), "rb").read() for p in finished} == logs
    assert capsys.readouterr().out.count("finished earlier") == 4
    assert {p: os.stat(os.path.join(p, "metrics.csv")).st_mtime_ns for p in finished} == finished
    assert json.loads((out / "results.json").read_text())["arms"] == results["arms"]


# -- supervision: the trainer's process (issue 16: bugs 4, 5; issue 21: 13) --------------------------------

def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_guarded_command_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(  # stands in for msport reproduce: starts the guarded command, then waits
        [sys.executable, "-c", "import subprocess, sys; from msport.reproduce.launch import guarded; "
         "child = subprocess.Popen(guarded([sys.executable, '-c', 'import time; time.sleep(600)'])); "
         "print(child.pid, flush=True); child.wait()"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(
            os.path.abspath(msport.__file__)))})
    child = int(parent.stdout.readline())
    time.sleep(0.5)
    with open(f"/proc/{child}/cmdline", "rb") as fh:  # the guard became the command: same pid
        assert b"time.sleep(600)" in fh.read()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while _alive(child) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_reproduce_starts_trainers_without_preexec_fn_and_they_still_die_with_it(tmp_path, fake_trainers,
                                                                                monkeypatch, capsys):
    import subprocess

    seen = []
    real = subprocess.Popen

    def recording(*args, **kwargs):
        seen.append(kwargs.get("preexec_fn"))
        return real(*args, **kwargs)

    monkeypatch.setattr(reproduce_supervise.subprocess, "Popen", recording)
    out = tmp_path / "out"
    path = _write_config(tmp_path, {"seeds": [0, 1], "arms": ["torch"], "train": TINY_TRAIN, "output_dir": str(out)})
    assert main(["reproduce", "--config", path, "--parallel-runs", "2"]) == 0
    assert len(seen) >= 2 and set(seen) == {None}  # CPython documents preexec_fn as unsafe in a process running threads
    log = (out / "runs" / "torch-seed0" / "train.log").read_text()
    assert "pdeathsig 15" in log.splitlines()  # armed by the guard process instead
    lines = capsys.readouterr().out.splitlines()  # not a terminal: a line per finished epoch, named by its run
    assert "  torch seed 0: epoch 1/1  val acc 84.00%  0.0s" in lines and any("torch seed 1: epoch 1/1" in l
                                                                           for l in lines)


def test_a_trainer_is_stopped_with_term_then_kill():
    import subprocess
    import sys

    polite = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                               "signal.signal(signal.SIGTERM, lambda *a: (print('passed on', flush=True), "
                               "sys.exit(3)))\nprint('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert polite.stdout.readline().strip() == "ready"
    reproduce_supervise.stop(polite, grace=30)
    assert polite.returncode == 3 and polite.stdout.read().strip() == "passed on"  # a launcher gets to forward it
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN)\nprint('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"
    reproduce_supervise.stop(stubborn, grace=0.5)
    assert stubborn.returncode == -9
