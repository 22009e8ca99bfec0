"""Checkpoint files: every format read and written without a framework, dtypes kept, integrity checked."""

import json
import os
import struct
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from msport import checkpoints
from msport._mindspore import ms
from msport.checkpoints import CheckpointError, open_checkpoint, save_checkpoint
from msport.cli import main

REPO = Path(__file__).resolve().parents[1]


def _mixed_state():
    torch.manual_seed(0)
    return OrderedDict([
        ("emb.weight", torch.randn(16, 8).to(torch.bfloat16)),
        ("fc.weight", torch.randn(4, 8).to(torch.float16)),
        ("fc.bias", torch.randn(4)),
        ("bn.running_mean", torch.randn(4, dtype=torch.float64)),
        ("bn.num_batches_tracked", torch.tensor(7)),
        ("mask", torch.tensor([True, False, True])),
        ("ids", torch.arange(5, dtype=torch.int32)),
        ("t.weight", torch.randn(8, 4).t()),  # a non-contiguous view, saved as one
    ])


def _same(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and tuple(a[key].shape) == tuple(b[key].shape), key
        assert a[key].reshape(-1).contiguous().view(torch.uint8).equal(b[key].reshape(-1).contiguous().view(torch.uint8)), key


def test_every_dtype_survives_pth_ckpt_safetensors_and_back_bit_exactly(tmp_path):
    state = _mixed_state()
    torch.save(state, tmp_path / "a.pth")
    source = open_checkpoint(tmp_path / "a.pth")
    assert source.entries["emb.weight"].dtype == "bfloat16" and source.entries["fc.weight"].dtype == "float16"
    for name in ("b.ckpt", "b.safetensors"):
        save_checkpoint(source.entries, tmp_path / name, "mindspore")
        again = open_checkpoint(tmp_path / name)
        assert again.kind == "mindspore" and list(again.entries) == list(state)
        save_checkpoint(again.entries, tmp_path / f"{name}.pth", "torch")
        _same(state, torch.load(tmp_path / f"{name}.pth", weights_only=True))
    # MindSpore reads both files msport wrote, bfloat16 as bfloat16
    for name, fmt in (("b.ckpt", "ckpt"), ("b.safetensors", "safetensors")):
        params = ms.load_checkpoint(str(tmp_path / name), format=fmt)
        assert params["emb.weight"].dtype == ms.bfloat16 and params["fc.weight"].dtype == ms.float16
        want = state["emb.weight"].float().numpy()
        assert np.array_equal(params["emb.weight"].float().asnumpy(), want)


def test_hugging_face_safetensors_single_and_sharded(tmp_path):
    from safetensors.torch import save_file

    state = _mixed_state()
    state["t.weight"] = state["t.weight"].contiguous()
    save_file(dict(state), str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    single = open_checkpoint(tmp_path / "model.safetensors")
    assert single.kind == "torch" and set(single.entries) == set(state)
    names = list(state)
    save_file({k: state[k] for k in names[:3]}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({k: state[k] for k in names[3:]}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {"metadata": {}, "weight_map": {k: f"model-0000{1 + (i >= 3)}-of-00002.safetensors"
                                            for i, k in enumerate(names)}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    sharded = open_checkpoint(tmp_path / "model.safetensors.index.json")
    assert list(sharded.entries) == names
    for key, value in state.items():
        want = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
        assert np.array_equal(sharded.entries[key].numpy(), want), key
    del index["weight_map"][names[0]]
    (tmp_path / "bad.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="does not list"):
        open_checkpoint(tmp_path / "bad.safetensors.index.json")


def test_convert_safetensors_to_ckpt_and_mindspore_safetensors_back(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 3), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    state = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "m.safetensors"), metadata={"format": "pt"})
    assert main(["convert", str(tmp_path / "m.safetensors"), str(tmp_path / "m.ckpt")]) == 0
    ckpt = open_checkpoint(tmp_path / "m.ckpt")
    assert ckpt.entries["0.weight"].shape == (4, 3, 1, 3)  # MindSpore's Conv1d layout
    assert {e.dtype for e in ckpt.entries.values()} == {"bfloat16"} and "1.gamma" in ckpt.entries
    # MindSpore's (out, in, 1, k) could as well be a Conv2d's: only a model tells them apart coming back
    del state["0.weight"], state["0.bias"]
    save_file(state, str(tmp_path / "m.safetensors"), metadata={"format": "pt"})
    assert main(["convert", str(tmp_path / "m.safetensors"), str(tmp_path / "m.ckpt"), "--overwrite"]) == 0
    assert main(["convert", str(tmp_path / "m.ckpt"), str(tmp_path / "back.safetensors")]) == 0
    assert open_checkpoint(tmp_path / "back.safetensors").kind == "torch"
    back = load_file(str(tmp_path / "back.safetensors"))
    _same(OrderedDict(sorted(state.items())), OrderedDict(sorted(back.items())))
    capsys.readouterr()


def test_mindspores_own_files_are_read(tmp_path):
    data = [{"name": "conv.weight", "data": ms.Tensor(np.ones((2, 3, 3, 3), np.float32))},
            {"name": "bn.moving_mean", "data": ms.Tensor(np.zeros(2, np.float32))},
            {"name": "global_step", "data": ms.Tensor(np.array([5], np.int32))}]
    ms.save_checkpoint(data, str(tmp_path / "own.safetensors"), format="safetensors")
    ms.save_checkpoint(data, str(tmp_path / "own.ckpt"), crc_check=True)
    for name in ("own.safetensors", "own.ckpt"):
        found = open_checkpoint(tmp_path / name)
        assert found.kind == "mindspore" and found.record is None
        assert np.array_equal(found.entries["conv.weight"].numpy(), np.ones((2, 3, 3, 3), np.float32))
    raw = bytearray((tmp_path / "own.ckpt").read_bytes())
    raw[40] ^= 0xFF
    (tmp_path / "flipped.ckpt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):  # MindSpore's own crc_num, or the protobuf, gives it away
        open_checkpoint(tmp_path / "flipped.ckpt").arrays()


def test_integrity_of_safetensors_msport_wrote(tmp_path):
    save_checkpoint({"a": np.arange(1000, dtype=np.float32), "b": np.ones(3, np.int64)}, tmp_path / "m.safetensors",
                    "mindspore")
    assert open_checkpoint(tmp_path / "m.safetensors").record is not None
    raw = bytearray((tmp_path / "m.safetensors").read_bytes())
    raw[-40] ^= 0x01
    (tmp_path / "flipped.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="is damaged: its tensors do not match"):
        open_checkpoint(tmp_path / "flipped.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(bytes(raw[:-100]))
    with pytest.raises(CheckpointError, match="cut short or damaged"):
        open_checkpoint(tmp_path / "cut.safetensors")


def test_the_unpickler_builds_tensors_and_nothing_else(tmp_path):
    torch.save({"w": torch.zeros(2), "scale": np.float64(2.0)}, tmp_path / "numpy_scalar.pth")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        open_checkpoint(tmp_path / "numpy_scalar.pth")
    torch.save({"net": {"w": torch.ones(2)}, "acc": 93.5, "epoch": 3}, tmp_path / "wrapped.pth")
    assert list(open_checkpoint(tmp_path / "wrapped.pth").entries) == ["w"]  # pytorch-cifar's layout


def test_an_expanded_tensor_too_large_for_memory_is_refused_in_one_line(tmp_path):
    torch.save({"w": torch.zeros(1).expand(10**6, 10**6)}, tmp_path / "huge.pth")
    assert os.path.getsize(tmp_path / "huge.pth") < 10_000
    entry = open_checkpoint(tmp_path / "huge.pth").entries["w"]  # listing it is fine
    with pytest.raises(CheckpointError, match=r"needs 4\.0 TB in memory.*expand\(\)ed tensor"):
        entry.numpy()


def test_compare_ckpt_reads_pth_and_ckpt_without_a_framework(tmp_path):
    from msport.convert import torch_to_mindspore

    state = OrderedDict((k, v) for k, v in _mixed_state().items() if "." in k)  # names of layers, as models have
    torch.save(state, tmp_path / "a.pth")
    save_checkpoint(torch_to_mindspore(open_checkpoint(tmp_path / "a.pth").entries)[0], tmp_path / "b.ckpt")
    code = ("import sys; from msport.diagnose.compare_ckpt import compare_checkpoints; "
            f"r = compare_checkpoints({str(tmp_path / 'a.pth')!r}, {str(tmp_path / 'b.ckpt')!r}); "
            "print(r.summary['flagged'], r.summary['compared'], 'torch' in sys.modules, 'mindspore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.split()
    assert out == ["0", "5", "False", "False"]  # 6 tensors less the step counter


def test_a_file_of_the_first_msport_record_version_still_verifies(tmp_path):
    import hashlib

    arrays = OrderedDict([("a", np.arange(4, dtype=np.float32)), ("b", np.array(3, np.int64))])
    digest = hashlib.sha256()
    for name, array in sorted(arrays.items()):
        digest.update(f"{name}\0{array.dtype}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    record = np.array([2, *np.frombuffer(digest.digest(), dtype=np.int64)], dtype=np.int64)
    entries = [{"name": checkpoints.INTEGRITY_KEY, "data": ms.Tensor(record)}]
    entries += [{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()]
    ms.save_checkpoint(entries, str(tmp_path / "v1.ckpt"))
    assert list(open_checkpoint(tmp_path / "v1.ckpt").arrays()) == ["a", "b"]
    data = (tmp_path / "v1.ckpt").read_bytes()
    head = 2 + data[1]  # the first record: the integrity mark, then a and b
    (tmp_path / "cut.ckpt").write_bytes(data[:head + 2 + data[head + 1]])
    with pytest.raises(CheckpointError, match="is incomplete: msport wrote 2 tensors, the file holds 1"):
        open_checkpoint(tmp_path / "cut.ckpt")


def test_not_a_safetensors_file_is_one_line(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        open_checkpoint(tmp_path / "x.safetensors")


def test_a_tensor_over_the_slice_size_is_written_as_mindspore_writes_it(tmp_path, monkeypatch):
    from msport.checkpoints import ckpt

    monkeypatch.setattr(ckpt, "SLICE_BYTES", 1000)  # MindSpore's is 512 MB: the same records, smaller
    big = np.arange(1001, dtype=np.float32).reshape(7, 143)
    save_checkpoint({"big": big, "small": np.ones(3, np.float16)}, tmp_path / "s.ckpt")
    assert np.array_equal(open_checkpoint(tmp_path / "s.ckpt").entries["big"].numpy(), big)
    loaded = ms.load_checkpoint(str(tmp_path / "s.ckpt"))  # MindSpore joins the records of one tag
    assert np.array_equal(loaded["big"].asnumpy(), big) and loaded["small"].dtype == ms.float16
    pieces = open_checkpoint(tmp_path / "s.ckpt").entries
    assert len(pieces["big"].pieces) == 5
    save_checkpoint(pieces, tmp_path / "s.safetensors", "mindspore")  # streamed piece by piece
    assert np.array_equal(open_checkpoint(tmp_path / "s.safetensors").entries["big"].numpy(), big)
