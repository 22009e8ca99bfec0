"""Bad input, as a hostile new user gives it: every case is one line on stderr, exit 2, nothing touched.

Each case runs the real ``msport`` command or trainer as a subprocess and checks: exit code 2,
stderr one line naming the problem, no traceback, every file that existed before byte-identical
afterwards, and no file or folder created. Cases that fail before a framework loads take well under a
second, those that load torch a few; the ones that load MindSpore or train are marked slow.
"""

import dataclasses
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from data_helpers import write_both_formats
from msport.errors import UserError
from msport.training.run import Run

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model", "resnet10_w16", "--batch-size", "64", "--epochs", "1", "--no-progress"]
MARKER = "pwned"  # what the malicious pickle would create in the working folder


class Evil:
    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


def _record_boundaries(data):
    """Offsets after each top-level record of a MindSpore .ckpt (protobuf field 1, length-delimited)."""
    offsets, i = [], 0
    while i < len(data):
        assert data[i] == 0x0A, "not a MindSpore checkpoint record"
        i += 1
        length = shift = 0
        while True:
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        i += length
        offsets.append(i)
    return offsets


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every bad (and one good) input file, written once for the whole module."""
    import reference_torch
    from msport._mindspore import ms
    from msport.convert import torch_to_mindspore
    from msport.checkpoints import save_ms_checkpoint

    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    state = reference_torch.create_model("resnet10_w16").state_dict()
    torch.save(state, root / "good.pth")
    raw = (root / "good.pth").read_bytes()
    (root / "truncated.pth").write_bytes(raw[: len(raw) // 2])
    (root / "empty.pth").write_bytes(b"")
    (root / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "evil.pth").write_bytes(pickle.dumps({"weight": Evil()}))
    torch.save(reference_torch.create_model("resnet18").state_dict(), root / "resnet18.pth")
    torch.save({"fc.weight": torch.zeros(1).expand(10**6, 10**6)}, root / "stride0.pth")  # 10^12 elements, 4 bytes
    torch.save({1: torch.zeros(2), "fc.weight": torch.zeros(2)}, root / "int_keys.pth")
    torch.save({}, root / "empty_dict.pth")
    params, _ = torch_to_mindspore(state)
    save_ms_checkpoint(params, root / "good.ckpt")
    data = (root / "good.ckpt").read_bytes()
    (root / "cut.ckpt").write_bytes(data[: _record_boundaries(data)[len(params) // 2]])
    # A checkpoint msport did not write (no integrity mark), cut after layer1.1.bn1's gamma and beta: its
    # sibling layer1.0.bn1 has moving statistics, so it is a BatchNorm cut short, not a LayerNorm.
    foreign, _ = torch_to_mindspore(reference_torch.create_model("resnet18").state_dict())
    foreign = {k: v for k, v in foreign.items() if not k.startswith("msport.")}
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in foreign.items()], str(root / "foreign.ckpt"))
    data = (root / "foreign.ckpt").read_bytes()
    cut = list(foreign).index("layer1.1.bn1.beta")
    (root / "foreign_cut.ckpt").write_bytes(data[: _record_boundaries(data)[cut]])
    np.save(root / "gray.npy", np.zeros((2, 1, 32, 32), np.float32))
    # Data sets: missing, truncated, wrong labels, wrong format.
    cifar = write_both_formats(root / "cifar_truncated", n_train=20, n_test=10)
    batch = cifar.python_dir / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:1000])
    cifar = write_both_formats(root / "cifar_labels", n_train=20, n_test=10)
    import shutil

    shutil.rmtree(cifar.python_dir)
    record = bytearray((cifar.binary_dir / "data_batch_1.bin").read_bytes())
    record[0] = 12  # the first record's label byte
    (cifar.binary_dir / "data_batch_1.bin").write_bytes(bytes(record))
    text = root / "cifar_text" / "cifar-10-batches-py"
    text.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"):
        (text / name).write_text("these are not pickles\n")
    # Run folders whose resume file was cut short or replaced by something else.
    from msport.training.config import TrainConfig, save_resolved

    for name, content in (("run_cut", raw[: len(raw) // 3]), ("run_replaced", raw)):
        (root / name).mkdir()
        save_resolved(TrainConfig(model="resnet10_w16", batch_size=64, epochs=2, progress=False,
                                  output_dir=str(root / name)), root / name / "config.yaml")
        (root / name / "resume-1.pth").write_bytes(content)
    # A finished torch run (its config.yaml marked as torch's), a checkpoint file where the folder goes,
    # and a user's own environment.json.
    done = root / "torch_done"
    (done / "checkpoint").mkdir(parents=True)
    save_resolved(TrainConfig(model="resnet10_w16", batch_size=64, epochs=1, progress=False, output_dir=str(done)),
                  done / "config.yaml", "torch")
    (done / "checkpoint" / "1_50.00_resnet10_w16.pth").write_bytes(raw)
    (done / "resume-1.pth").write_bytes(raw)
    (root / "checkpoint_file").mkdir()
    (root / "checkpoint_file" / "checkpoint").write_bytes(b"my notes, not a folder")
    (root / "env_mine").mkdir()
    (root / "env_mine" / "environment.json").write_text('{"my": "machine"}\n')
    # A user's own models: a builder that raises, a forward returning a dict, a model that rejects the data.
    (root / "mine.py").write_text(
        "import torch\n"
        "def boom(num_classes=10):\n    raise RuntimeError('my builder is broken')\n"
        "class Dict(torch.nn.Module):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(3 * 32 * 32, num_classes)\n"
        "    def forward(self, x):\n        return {'logits': self.fc(x.flatten(1))}\n"
        "class Shape(torch.nn.Module):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(100, num_classes)\n    def forward(self, x):\n        return self.fc(x)\n")
    (root / "mine_ms.py").write_text(
        "from msport._mindspore import nn\n"
        "class Shape(nn.Cell):\n    def __init__(self, num_classes=10):\n        super().__init__()\n"
        "        self.fc = nn.Dense(100, num_classes)\n    def construct(self, x):\n        return self.fc(x)\n")
    # A finished reproduction (one torch run) whose report meets a full disk.
    from msport.reproduce.config import load_config, plan_runs

    (root / "reproduce_done.yaml").write_text(yaml.safe_dump({"seeds": [0], "arms": ["torch"],
                                                              "output_dir": str(root / "rep"),
                                                              "train": {"model": "resnet10_w16", "epochs": 1}}))
    folder = plan_runs(load_config(str(root / "reproduce_done.yaml")))[0].folder()
    os.makedirs(folder.checkpoint_dir)
    save_resolved(folder.cfg, folder.config_file)
    folder.log_epoch({"epoch": 1, "train_loss": 1.0, "train_acc": 50.0, "val_loss": 1.0, "val_acc": 50.0, "lr": 0.1,
                      "seconds": 1.0, "images_per_second": 100.0})
    (Path(folder.checkpoint_dir) / "1_50.00_resnet10_w16.pth").write_bytes(b"weights")
    folder.record_checkpoint(1, 50.0, "1_50.00_resnet10_w16.pth")
    Path(folder.resume_path(1)).write_bytes(b"state")
    # Config files.
    (root / "lr_abc.yaml").write_text("model: resnet10_w16\nlr: abc\n")
    (root / "batch_float.yaml").write_text("batch_size: 2.5\n")
    (root / "unknown_key.yaml").write_text("learning_rate: 0.1\n")
    (root / "a_list.yaml").write_text("- lr\n- 0.1\n")
    (root / "bad_yaml.yaml").write_text("lr: [0.1\n")
    (root / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01garbage")
    (root / "reproduce_model.yaml").write_text("seeds: [0]\ntrain: {model: resnet999, data: digits}\n")
    (root / "reproduce_types.yaml").write_text("seeds: [0]\ntrain: {epochs: two}\n")
    (root / "reproduce_seeds.yaml").write_text("seeds: [-1]\ntrain: {model: resnet10_w16}\n")
    return root


def _snapshot(*folders):
    out = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            out[dirpath] = None
            for name in filenames:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as fh:
                    out[path] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _msport(*args):
    return [sys.executable, "-m", "msport", *args]


def _trainer(script, *args):
    return [sys.executable, str(REPO / script), *args]


def _torch(*args):
    return _trainer("train_torch.py", *TINY, *args)


SLOW = pytest.mark.slow
# (id, argv from (inputs folder F, working folder W), what the line must name[, env, marks])
CASES = [
    # -- checkpoints ---------------------------------------------------------------------------------
    ("convert-truncated-pth", lambda F, W: _msport("convert", F / "truncated.pth", W / "o.ckpt"), "not a loadable torch"),
    ("convert-empty-pth", lambda F, W: _msport("convert", F / "empty.pth", W / "o.ckpt"), "empty.pth: not a loadable"),
    ("convert-random-bytes", lambda F, W: _msport("convert", F / "random.pth", W / "o.ckpt"), "not a loadable torch"),
    ("convert-malicious-pickle", lambda F, W: _msport("convert", F / "evil.pth", W / "o.ckpt"), "not a loadable torch"),
    ("convert-non-string-keys", lambda F, W: _msport("convert", F / "int_keys.pth", W / "o.ckpt"), "int key 1"),
    ("convert-empty-state-dict", lambda F, W: _msport("convert", F / "empty_dict.pth", W / "o.ckpt"), "holds no tensors"),
    ("convert-stride-0-tensor", lambda F, W: _msport("convert", F / "stride0.pth", W / "o.ckpt"),
     "an expand()ed tensor"),
    ("convert-wrong-architecture", lambda F, W: _msport("convert", F / "resnet18.pth", W / "o.ckpt", "--model",
                                                        "resnet10_w16"), "do not fit the MindSpore model", None, SLOW),
    ("convert-cut-msport-ckpt", lambda F, W: _msport("convert", F / "cut.ckpt", W / "o.pth"), "is incomplete: msport wrote", None, SLOW),
    ("convert-cut-foreign-ckpt", lambda F, W: _msport("convert", F / "foreign_cut.ckpt", W / "o.pth"),
     "BatchNorm layer1.1.bn1 lacks moving_mean", None, SLOW),
    ("convert-ckpt-as-pth", lambda F, W: _msport("convert", F / "random.pth", W / "o.pth"), "would both hold torch names"),
    ("convert-missing-source", lambda F, W: _msport("convert", F / "nothing.pth", W / "o.ckpt"), "no such checkpoint"),
    ("convert-unknown-model", lambda F, W: _msport("convert", F / "good.pth", W / "o.ckpt", "--model", "resnet999"),
     "unknown model 'resnet999'"),
    ("convert-existing-output", lambda F, W: _msport("convert", F / "good.pth", W / "notes.ckpt"), "exists; pass --overwrite"),
    ("convert-output-folder-missing", lambda F, W: _msport("convert", F / "good.pth", W / "no" / "o.ckpt"),
     "does not exist"),
    ("convert-disk-full", lambda F, W: _msport("convert", F / "good.pth", W / "o.ckpt"), "no space left on",
     {"MSPORT_FAULT": "enospc:o.ckpt"}, SLOW),
    ("compare-ckpt-empty", lambda F, W: _msport("compare-ckpt", F / "empty.pth", F / "good.pth"), "empty.pth"),
    ("compare-ckpt-int-keys", lambda F, W: _msport("compare-ckpt", F / "int_keys.pth", F / "good.pth"), "int key 1"),
    ("compare-ckpt-stride-0-tensor", lambda F, W: _msport("compare-ckpt", F / "stride0.pth", F / "good.pth"),
     "an expand()ed tensor"),
    ("compare-ckpt-json-is-an-input", lambda F, W: _msport("compare-ckpt", F / "good.pth", F / "good.ckpt", "--json",
                                                           F / "good.pth"), "is also an input"),
    ("compare-ckpt-report-exists", lambda F, W: _msport("compare-ckpt", F / "good.pth", F / "good.ckpt", "--json",
                                                        W / "r.json", "--report", W / "notes.ckpt"), "notes.ckpt"),
    ("compare-ckpt-negative-rtol", lambda F, W: _msport("compare-ckpt", F / "good.pth", F / "good.ckpt", "--rtol",
                                                        "-1"), "--rtol"),
    ("compare-ckpt-nan-atol", lambda F, W: _msport("compare-ckpt", F / "good.pth", F / "good.ckpt", "--atol",
                                                   "nan"), "--atol"),
    ("layer-diff-wrong-architecture", lambda F, W: _msport("layer-diff", "--model", "resnet10_w16", "--torch-weights",
                                                           F / "resnet18.pth"), "shape mismatch conv1.weight", None, SLOW),
    ("layer-diff-gray-input", lambda F, W: _msport("layer-diff", "--model", "resnet10_w16", "--input", F / "gray.npy"),
     "1 channel(s)", None, SLOW),
    ("layer-diff-json-unwritable", lambda F, W: _msport("layer-diff", "--model", "resnet10_w16", "--batch-size", "2",
                                                        "--json", W / "notes.ckpt" / "l.json"), "notes.ckpt", None, SLOW),
    ("init-from-empty-pth", lambda F, W: _torch("--init-from", F / "empty.pth", "--output-dir", W / "run"),
     "empty.pth: not a loadable", None, SLOW),
    ("init-from-wrong-architecture", lambda F, W: _torch("--init-from", F / "resnet18.pth", "--output-dir", W / "run"),
     "shape mismatch conv1.weight (64, 3, 3, 3) vs (16, 3, 3, 3)", None, SLOW),
    ("init-from-malicious-pickle", lambda F, W: _torch("--init-from", F / "evil.pth", "--output-dir", W / "run"),
     "not a loadable torch", None, SLOW),
    ("init-from-cut-ckpt", lambda F, W: _trainer("train_ms.py", *TINY, "--init-from", F / "cut.ckpt",
                                                 "--output-dir", W / "run"), "is incomplete", None, SLOW),
    # -- data ------------------------------------------------------------------------------------------
    ("data-missing", lambda F, W: _torch("--data", "cifar10", "--data-dir", W / "nowhere", "--output-dir", W / "run"),
     "nowhere", None, SLOW),
    ("data-truncated", lambda F, W: _torch("--data", "cifar10", "--data-dir", F / "cifar_truncated",
                                           "--output-dir", W / "run"), "data_batch_1", None, SLOW),
    ("data-wrong-labels", lambda F, W: _torch("--data", "cifar10", "--data-dir", F / "cifar_labels",
                                              "--output-dir", W / "run"), "label", None, SLOW),
    ("data-wrong-format", lambda F, W: _torch("--data", "cifar10", "--data-dir", F / "cifar_text",
                                              "--output-dir", W / "run"), "not a readable CIFAR-10", None, SLOW),
    ("data-cifar-without-dir", lambda F, W: _torch("--data", "cifar10", "--output-dir", W / "run"), "needs --data-dir"),
    # -- config ----------------------------------------------------------------------------------------
    ("yaml-wrong-type", lambda F, W: _torch("--config", F / "lr_abc.yaml", "--output-dir", W / "run"),
     "lr must be a number, got 'abc'"),
    ("yaml-float-batch", lambda F, W: _trainer("train_torch.py", "--config", F / "batch_float.yaml",
                                               "--output-dir", W / "run"),
     "batch_size must be an integer, got 2.5"),
    ("yaml-unknown-key", lambda F, W: _torch("--config", F / "unknown_key.yaml"), "unknown key(s) learning_rate"),
    ("yaml-not-a-mapping", lambda F, W: _torch("--config", F / "a_list.yaml"), "must be a mapping"),
    ("yaml-syntax", lambda F, W: _torch("--config", F / "bad_yaml.yaml"), "not valid YAML"),
    ("yaml-binary", lambda F, W: _torch("--config", F / "binary.yaml"), "binary.yaml"),
    ("yaml-missing", lambda F, W: _torch("--config", W / "none.yaml"), "none.yaml not found"),
    ("set-bad-yaml", lambda F, W: _torch("--set", "lr=[", "--output-dir", W / "run"), "is not a YAML value"),
    ("set-wrong-type", lambda F, W: _trainer("train_torch.py", "--set", "epochs=abc", "--output-dir", W / "run"),
     "epochs must be an integer, got 'abc'"),
    ("set-unknown-key", lambda F, W: _torch("--set", "learning_rate=0.1"), "expected KEY=VALUE"),
    ("num-classes-zero", lambda F, W: _torch("--num-classes", "0", "--output-dir", W / "run"), "num_classes must be"),
    ("num-classes-below-data", lambda F, W: _torch("--num-classes", "5", "--output-dir", W / "run"),
     "num_classes must be at least 10 for data digits"),
    ("momentum-negative", lambda F, W: _torch("--momentum", "-1", "--output-dir", W / "run"), "momentum must be at least 0"),
    ("momentum-one", lambda F, W: _torch("--momentum", "1", "--output-dir", W / "run"), "momentum must be below 1"),
    ("lr-zero", lambda F, W: _torch("--lr", "0"), "lr must be above 0"),
    ("epochs-zero", lambda F, W: _torch("--epochs", "0"), "epochs must be at least 1"),
    ("warmup-past-epochs", lambda F, W: _torch("--warmup-epochs", "1"), "warmup_epochs must be below epochs"),
    ("milestones-unordered", lambda F, W: _torch("--schedule", "multistep", "--milestones", "5", "3"),
     "milestones must be increasing"),
    ("threads-zero", lambda F, W: _torch("--threads", "0"), "threads must be at least 1"),
    ("seed-negative", lambda F, W: _torch("--seed", "-1"), "seed must be at least 0"),
    ("init-from-missing", lambda F, W: _torch("--init-from", W / "none.pth"), "none.pth: no such file"),
    ("model-unknown-torch", lambda F, W: _torch("--model", "resnet999", "--output-dir", W / "run"),
     "unknown model 'resnet999'", None, SLOW),
    ("model-unknown-mindspore", lambda F, W: _trainer("train_ms.py", *TINY, "--model", "resnet999",
                                                      "--output-dir", W / "run"), "unknown model 'resnet999'", None, SLOW),
    ("model-unknown-parity-train", lambda F, W: _msport("parity-train", "--model", "resnet999"),
     "unknown model 'resnet999'", None, SLOW),
    ("device-unknown", lambda F, W: _torch("--device", "tpu", "--output-dir", W / "run"), "runs on cpu or cuda",
     None, SLOW),
    ("reproduce-unknown-model", lambda F, W: _msport("reproduce", "--config", F / "reproduce_model.yaml",
                                                     "--output-dir", W / "rep"), "unknown model 'resnet999'"),
    ("reproduce-wrong-type", lambda F, W: _msport("reproduce", "--config", F / "reproduce_types.yaml",
                                                  "--output-dir", W / "rep"), "epochs must be an integer"),
    ("reproduce-negative-seed", lambda F, W: _msport("reproduce", "--config", F / "reproduce_seeds.yaml",
                                                     "--output-dir", W / "rep"), "seeds must be a list"),
    # -- flags -----------------------------------------------------------------------------------------
    ("flag-not-an-int", lambda F, W: _torch("--epochs", "abc"), "invalid int value: 'abc'"),
    ("flag-unknown", lambda F, W: _torch("--bogus"), "unrecognized arguments: --bogus"),
    ("flag-bad-choice", lambda F, W: _torch("--schedule", "sawtooth"), "invalid choice: 'sawtooth'"),
    ("flag-of-the-other-framework", lambda F, W: _torch("--init", "legacy"), "unrecognized arguments: --init"),
    ("flag-msport-command", lambda F, W: _msport("convrt"), "invalid choice: 'convrt'"),
    ("flag-parity-train-epochs", lambda F, W: _msport("parity-train", "--epochs", "3"), "unrecognized arguments"),
    # -- run folders -----------------------------------------------------------------------------------
    ("users-own-config-yaml", lambda F, W: _torch("--output-dir", W / "mine"), "was not written by msport"),
    ("resume-file-cut", lambda F, W: _torch("--epochs", "2", "--resume", "--output-dir", F / "run_cut"),
     "resume-1.pth is not this run's resume file", None, SLOW),
    ("resume-file-replaced", lambda F, W: _torch("--epochs", "2", "--resume", "--output-dir", F / "run_replaced"),
     "resume-1.pth is not this run's resume file", None, SLOW),
    ("reproduce-report-disk-full", lambda F, W: _msport("reproduce", "--config", F / "reproduce_done.yaml"),
     "no space left on", {"MSPORT_FAULT": "enospc:results.json"}),
    ("resume-nothing", lambda F, W: _torch("--output-dir", W / "run", "--resume"), "holds no run to continue"),
    ("other-framework-finished-run", lambda F, W: _trainer("train_ms.py", *TINY, "--output-dir", F / "torch_done"),
     "holds a torch run, and the mindspore trainer never restarts"),
    ("other-framework-resume", lambda F, W: _trainer("train_ms.py", *TINY, "--resume", "--output-dir",
                                                     F / "torch_done"), "holds a torch run"),
    ("checkpoint-is-a-file", lambda F, W: _torch("--output-dir", F / "checkpoint_file"), "exists and is not a folder"),
    ("users-environment-json", lambda F, W: _torch("--output-dir", F / "env_mine"),
     "holds environment.json but no config.yaml"),
    ("set-lr-inf", lambda F, W: _torch("--set", "lr=.inf", "--output-dir", W / "run"), "lr must be a finite number"),
    # -- the user's own code: one line, and no run folder left behind ------------------------------------
    ("user-builder-raises", lambda F, W: _torch("--model", f"{F / 'mine.py'}:boom", "--output-dir", W / "run"),
     "failed: RuntimeError: my builder is broken"),
    ("user-forward-returns-dict", lambda F, W: _torch("--model", f"{F / 'mine.py'}:Dict", "--output-dir", W / "run"),
     "its forward returned a dict; the trainers need the logits"),
    ("user-model-rejects-the-data", lambda F, W: _torch("--model", f"{F / 'mine.py'}:Shape", "--output-dir",
                                                        W / "run"), "its forward on a batch of shape (64, 3, 32, 32)"),
    ("user-ms-model-rejects-the-data", lambda F, W: _trainer("train_ms.py", *TINY, "--model", f"{F / 'mine_ms.py'}:Shape",
                                                             "--output-dir", W / "run"), "its forward on a batch of shape",
     None, SLOW),
]


def _entry_point(argv):
    """``msport`` or the trainer script an argv runs."""
    return "msport" if list(argv[1:3]) == ["-m", "msport"] else Path(argv[1]).name


def _params():
    """Every case; one per entry point, the slow ones and those with a fault injected run as a real process,
    the rest in-process (a subprocess costs seconds of start-up each, and checks nothing more)."""
    seen = set()
    probe = Path("F"), Path("W")
    for name, argv, message, *rest in CASES:
        env, marks = (rest[0] if rest else None), rest[1:]
        entry = _entry_point(argv(*probe))
        subprocess_case = entry not in seen or env is not None or SLOW in marks
        seen.add(entry)
        yield pytest.param(argv, message, env, subprocess_case, id=name, marks=marks)


def _run_in_process(command, capfd, monkeypatch):
    """``(exit code, stderr)`` of an msport command or a trainer's ``main`` called in this process."""
    import importlib.util

    entry, args = _entry_point(command), command[3:] if _entry_point(command) == "msport" else command[2:]
    if entry == "msport":
        from msport.cli import main
    else:
        spec = importlib.util.spec_from_file_location(f"_bad_input_{Path(entry).stem}", REPO / entry)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        main = module.main
    capfd.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    return code, capfd.readouterr().err


@pytest.mark.parametrize("argv,message,env,subprocess_case", list(_params()))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(argv, message, env, subprocess_case, files, tmp_path,
                                                           capfd, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.ckpt").write_bytes(b"a file of the user's")
    (work / "mine").mkdir()
    (work / "mine" / "config.yaml").write_text("my own notes: msport must not overwrite them\n")
    before = _snapshot(files, work)
    command = [str(a) for a in argv(files, work)]
    if subprocess_case:
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
        code, stderr = result.returncode, result.stderr
    else:
        monkeypatch.chdir(work)
        code, stderr = _run_in_process(command, capfd, monkeypatch)
    lines = stderr.strip().splitlines()
    assert code == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr[-3000:]
    assert message in lines[0], lines[0]
    assert _snapshot(files, work) == before  # nothing changed, nothing created
    assert not (work / MARKER).exists()


def _unwritable_folder(tmp_path):
    """A folder this process cannot write into: a chmod 555 one, or, for root (whom chmod does not stop),
    sysfs, which the kernel keeps read-only for every user."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/sys/kernel")
    if not folder.is_dir():
        pytest.skip("running as root without sysfs: no folder here that root cannot write")
    return folder


def test_a_read_only_output_folder_is_one_line(files, tmp_path):
    folder = _unwritable_folder(tmp_path)
    before = sorted(os.listdir(folder))
    result = subprocess.run([str(a) for a in _msport("convert", files / "good.pth", folder / "o.ckpt")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot write" in result.stderr
    assert sorted(os.listdir(folder)) == before


# ---- in-process: messages a call can check without a subprocess (issue 21) ------------------------------

def _resolve(*argv):
    from msport.errors import OneLineParser
    from msport.training.config import TORCH, add_arguments, resolve

    return resolve(add_arguments(OneLineParser(prog="train_torch.py"), TORCH).parse_args([str(a) for a in argv]))


@pytest.mark.parametrize("argv,message", [
    (["--set", "lr=.inf"], "--set 'lr=.inf': lr must be a finite number, got inf"),
    (["--set", "weight_decay=.inf"], "--set 'weight_decay=.inf': weight_decay must be a finite number"),
    (["--lr", "nan"], "--lr: lr must be a finite number, got nan"),
    (["--set", "gamma=-.inf"], "gamma must be a finite number"),
    (["--momentum", "1"], "--momentum: momentum must be below 1"),
    (["--warmup-epochs", "20", "--epochs", "2"], "--warmup-epochs: warmup_epochs must be below epochs (2)"),
    (["--set", 'output_dir="runs/a\\0b"'], "output_dir holds a NUL character"),
    (["--set", 'init_from="w\\0.pth"'], "init_from holds a NUL character"),
    (["--init-from", "no/such.pth"], "--init-from: no/such.pth: no such file"),
    (["--seed", "4294967296"], "--seed: seed must be at most 4294967295"),  # numpy's seeds end there
])
def test_non_finite_and_out_of_range_values_name_their_flag(argv, message):
    with pytest.raises(UserError) as info:
        _resolve(*argv)
    assert message in str(info.value)


def test_range_errors_name_the_config_file_they_came_from(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: .inf\nmomentum: 2\n")
    with pytest.raises(UserError, match=r"config file .*c.yaml: lr must be a finite number"):
        _resolve("--config", tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text("momentum: 2\n")
    with pytest.raises(UserError, match=r"config file .*c.yaml: momentum must be below 1, got 2"):
        _resolve("--config", tmp_path / "c.yaml")


def test_a_billion_epochs_need_no_per_step_array():
    import tracemalloc

    from msport.training.config import TrainConfig
    from msport.training.schedule import per_step_lr

    tracemalloc.start()
    lrs = per_step_lr(TrainConfig(epochs=10 ** 9, schedule="cosine", lr=0.1, warmup_epochs=1), 12)
    first, last = lrs[0], lrs[len(lrs) - 1]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(lrs) == 12 * 10 ** 9 and peak < 1 << 20
    assert first == np.float32(0.1 / 12) and 0 <= last < np.float32(1e-6)


def test_checkpoint_names_from_a_model_spec_are_file_names():
    from msport.training import torch_side
    from msport.training.config import TrainConfig

    name = torch_side.checkpoint_name(TrainConfig(model="models/mine.py:SmallCNN"), 2, 12, 26.456)
    assert name == "2_26.46_models_mine.py_SmallCNN.pth" and os.sep not in name
    from msport.training.run import Run

    assert Run._checkpoint_epoch(name) == 2 and Run._checkpoint_epoch("1_50.00_a-5_b.pth") == 1
    assert Run._checkpoint_epoch("train_x-1_digits-3_12.ckpt") == 3


class _Logits(torch.nn.Module):
    def __init__(self, returns=None, features=3 * 32 * 32):
        super().__init__()
        self.fc, self.returns = torch.nn.Linear(features, 10), returns

    def forward(self, x):
        logits = self.fc(x.flatten(1))
        return {"dict": {"logits": logits}, "none": None, "short": logits[:, :4]}.get(self.returns, logits)


@pytest.mark.parametrize("model,message", [
    (_Logits("dict"), "its forward returned a dict; the trainers need the logits"),
    (_Logits("none"), "its forward returned None"),
    (_Logits("short"), "returned logits of shape (64, 4) for a batch of 64; the trainers need (batch, classes) "
                       "with at least 10 classes"),
    (_Logits(features=100), "its forward on a batch of shape (64, 3, 32, 32) (digits/val) failed: RuntimeError: "
                            "mat1 and mat2 shapes cannot be multiplied"),
])
def test_a_model_that_does_not_fit_the_data_is_one_line_before_the_run_folder(model, message):
    from msport.data import load_dataset
    from msport.training import torch_side
    from msport.training.config import TrainConfig
    from msport.training.loop import check_forward

    cfg = TrainConfig(model="mine.py:Net", batch_size=64)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    with pytest.raises(UserError) as info:
        check_forward(torch_side, model, load_dataset("digits", None, "val"), cfg, torch.device("cpu"))
    assert message in str(info.value) and str(info.value).startswith("--model mine.py:Net: ")
    assert torch.equal(torch.get_rng_state(), state) and model.training


def test_a_downloaded_data_dir_is_not_written_into_the_runs_config(tmp_path, monkeypatch):
    # issue 16, bug 7: a rerun of reproduce with download: true and no data_dir was refused as a mismatch
    from msport.reproduce.config import NEW, load_config, plan_runs, run_state
    from msport.training import data as training_data
    from msport.training.config import save_resolved

    def stand_in_for_the_network(root):  # what torchvision's download leaves: the python batches
        write_both_formats(root, n_train=20, n_test=10)

    monkeypatch.setattr(training_data, "download_cifar10", stand_in_for_the_network)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"seeds": [0], "arms": ["torch"], "output_dir": "out",
                                                     "train": {"data": "cifar10", "download": True}}))
    run = plan_runs(load_config("r.yaml"))[0]
    cfg = dataclasses.replace(run.config)
    train, _ = training_data.load_splits(cfg)
    assert len(train) == 20 and cfg.data_dir is None
    os.makedirs(run.path)
    save_resolved(cfg, os.path.join(run.path, "config.yaml"), "torch")  # what the trainer records
    assert run_state(run) == NEW


@SLOW
def test_a_ckpt_write_that_fails_for_real_is_one_line_naming_the_file_and_mindspore_says_nothing(files, tmp_path):
    # A real failed write (a file size limit: the kernel refuses the bytes, as a full disk does); MindSpore
    # logged its own "[CRITICAL] ... Maybe don't have the permission" line and the error named no file.
    script = ("import resource, signal, sys\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))\nfrom msport.cli import main\n"
              "sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "o.ckpt"
    result = subprocess.run([sys.executable, "-c", script, "convert", str(files / "good.pth"), str(out)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "CRITICAL" not in result.stderr and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("msport convert: error: ") and str(out) in lines[0], lines
    assert os.listdir(tmp_path) == []


def test_a_binary_name_map_is_one_line(tmp_path):
    from msport.diagnose.name_map import load_name_map

    (tmp_path / "map.txt").write_bytes(b"\xff\xfe\x00conv1.weight conv1.weight\x80\n")
    with pytest.raises(UserError, match=r"map.txt: not a text file"):
        load_name_map(str(tmp_path / "map.txt"))


@pytest.mark.parametrize("argv,message", [
    (["check-zoo", "--rtol", "nan"], "argument --rtol: expected a finite number >= 0, got 'nan'"),
    (["check-zoo", "--rtol", "-1"], "argument --rtol: expected a finite number >= 0, got '-1'"),
    (["check-zoo", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got '0'"),
    (["parity-train", "--loss-rtol", "inf"], "argument --loss-rtol: expected a finite number >= 0, got 'inf'"),
    (["parity-train", "--steps", "-3"], "argument --steps: expected an integer >= 1, got '-3'"),
])
def test_tolerance_and_count_flags_refuse_non_finite_and_negative_values(argv, message, capsys):
    from msport.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1 and message in lines[0]


def test_a_run_that_diverges_stops_in_one_line_and_commits_no_epoch_of_nan(tmp_path):
    # lr 1e30 is finite, so the config accepts it; the losses go to inf/nan within the first epoch,
    # which used to train on, exit 0 and save a "best" checkpoint of NaN weights.
    (tmp_path / "tiny.py").write_text("import torch\ndef build(num_classes=10):\n"
                                      "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, num_classes))\n")
    out = tmp_path / "run"
    result = subprocess.run([str(a) for a in _torch("--model", f"{tmp_path / 'tiny.py'}:build", "--lr", "1e30",
                                                    "--epochs", "2", "--threads", "1", "--output-dir", out)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "epoch 1: train loss nan" in lines[0] and "the run diverged" in lines[0], lines[0]
    assert not (out / "best.json").exists() and not (out / "metrics.csv").exists()
    assert os.listdir(out / "checkpoint") == [] and Run(str(out), None, "resume.pth").committed_epochs() == []
