"""msport port: generated twins of exported torch models, their weights, parity, and what cannot be ported.

Small inputs and tiny configs keep it CPU-cheap; the model tables are bench/port_*.py's job.
"""

import copy
import gc
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision

from msport import cli, resolve
from msport._mindspore import ms, nn
from msport.checkpoints import load_ms_checkpoint
from msport.convert import load_torch_weights_into_ms
from msport.port import TraceFailed, UnsupportedModel, port, register_layer, register_op, unregister_layer, \
    unregister_op
from msport.port.build import import_source
from msport.tolerances import PORT_OUTPUT_NORM_REL, norm_rel


def _input(shape, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _run(cell, *arrays, graph=False):
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    try:
        return cell(*[ms.Tensor(np.asarray(a)) for a in arrays])
    finally:
        ms.set_context(mode=mode)


def _check(result):
    report = result.report
    assert report["within_tolerance"], report["outputs"]
    assert all(r["norm_rel"] <= PORT_OUTPUT_NORM_REL for r in report["outputs"])
    return report


class WritesItsWeights(torch.nn.Module):
    """Rescales a layer's weight in place on its first eval call, as transformers' RWKV does."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 4)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        with torch.no_grad():
            self.fc.weight.div_(2.0)
        self.calls.add_(1)
        return self.fc(x) * 3


def test_a_forward_that_writes_its_own_tensors_returns_the_users_outputs_only():
    # the graph returns the written tensors before the user's outputs: the port once returned fc.weight
    model = WritesItsWeights()
    result = port(model, _input((2, 6)))
    assert result.report["within_tolerance"] and result.report["worst_output"]["shape"] == [2, 4]
    assert any("writes to fc.weight, calls" in change for change in result.changes)


class Structure(torch.nn.Module):
    def remember(self, x):  # a method, not a forward: no module call records it
        self.batch = x.shape[0]  # the port's dynamic dimension: a symbolic size while exporting
        return x


class RemembersItsLength(torch.nn.Module):
    """A submodule stores a size on itself in forward, as transformers' Funnel stores its sequence length."""

    def __init__(self):
        super().__init__()
        self.structure = Structure()
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(self.structure.remember(x))


def test_what_a_forward_stores_on_the_model_during_the_export_does_not_stay_there():
    # a symbolic size left on the model made the check's deepcopy fail ("Cannot access data pointer")
    model = RemembersItsLength()
    result = port(model, _input((2, 5, 6)))
    assert result.report["within_tolerance"] and not hasattr(model.structure, "batch")
    copy.deepcopy(model)


class SplitConvs(torch.nn.Module):
    """res2net's pattern: chunks of a torch.split read by registered layers. The split's base was written
    in place, so export re-slices each chunk inside the call of the layer that reads it."""

    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(2, 2, 3, padding=1, groups=2) for _ in range(2))

    def forward(self, x):
        chunks = torch.split(torch.relu_(x * 2.0), 2, 1)  # split after an in-place op, as in res2net
        return torch.cat([conv(chunk) for conv, chunk in zip(self.convs, chunks)], 1)


def test_a_split_chunk_a_layer_reads_stays_outside_the_layer_call(tmp_path):
    result = port(SplitConvs().eval(), _input((2, 4, 5, 5)), workdir=str(tmp_path))
    _check(result)
    assert "self.convs[0](" in result.source and "split" in result.source


# --- torchvision and the hand-written zoo ----------------------------------------------------------

def test_ported_reference_resnet50_equals_the_hand_written_one(tmp_path):
    torch.manual_seed(0)
    torch_model = resolve.torch_model("resnet50").eval()
    x = _input((2, 3, 32, 32))
    result = port(torch_model, x, name="resnet50", check=False, workdir=str(tmp_path))
    hand = resolve.ms_model("resnet50")
    assert [p.name for p in result.cell.get_parameters()] == [p.name for p in hand.get_parameters()]
    load_torch_weights_into_ms(hand, torch_model.state_dict())
    hand.set_train(False)
    result.cell.set_train(False)
    ported = result.cell(ms.Tensor(x.numpy())).asnumpy()
    assert np.abs(ported - hand(ms.Tensor(x.numpy())).asnumpy()).max() <= 1e-6


def test_resnet18_source_reads_as_a_model_runs_in_graph_mode_and_any_batch(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    result = port(model, _input((2, 3, 32, 32)), name="resnet18", workdir=str(tmp_path))
    report = _check(result)
    assert report["first_divergence"] is None and report["layers_compared"] > 50
    assert any("BatchNorm running statistics" in n for n in report["prepared"])  # the check says what it changed
    source = result.source
    assert source.count("class ") == 1 and "class Resnet18(nn.Cell):" in source
    assert "conv2d(64, 64, 3, padding=1, bias=False)" in source and "exec(" not in source
    assert "layer1_0_conv1 = self.layer1[0].conv1(maxpool)" in source  # one call per layer, named by its path
    assert {"layer1.0.conv1.weight", "layer2.0.downsample.1.gamma", "fc.bias"} <= \
        {p.name for p in result.cell.get_parameters()}
    x = _input((3, 3, 32, 32), seed=4)  # a batch size the export did not see
    result.cell.set_train(False)
    with torch.no_grad():
        want = model(x).numpy()
    for graph in (False, True):
        assert norm_rel(want, _run(result.cell, x.numpy(), graph=graph).asnumpy()) <= PORT_OUTPUT_NORM_REL


# --- timm -----------------------------------------------------------------------------------------

TIMM = {  # the families issue 17 names: fx could trace none of these
    "vit_tiny_patch16_224": dict(img_size=32, patch_size=8, num_classes=10),
    "tf_efficientnet_b0": dict(num_classes=10),   # dynamic "same" padding: shape-dependent Python
    "mobilevitv2_050": dict(num_classes=10),      # a patch-resizing branch on shapes
}


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_family_ports_within_tolerance(name, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **TIMM[name]).eval()
    size = 32 if name.startswith("vit") else 64
    result = port(model, _input((2, 3, size, size)), name=name, workdir=str(tmp_path))
    _check(result)
    if name.startswith("vit"):  # a plain nn.Parameter starts, untrained, from torch's own value: not zero
        result.save(str(tmp_path / "out"))
        fresh = import_source(str(tmp_path / "out" / f"{name}_ms.py")).create()
        names = {p.name: p for p in fresh.get_parameters()}
        assert np.array_equal(names["cls_token"].asnumpy(), model.cls_token.detach().numpy())
        assert np.array_equal(names["pos_embed"].asnumpy(), model.pos_embed.detach().numpy())


# --- Hugging Face transformers ----------------------------------------------------------------------

def _hf(kind):
    transformers = pytest.importorskip("transformers")
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=128, intermediate_size=64)
    torch.manual_seed(0)
    if kind == "gpt2":
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=128))
    elif kind == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(num_key_value_heads=1, **tiny))
    else:
        model = transformers.BertForSequenceClassification(transformers.BertConfig(num_labels=3, **tiny))
    return model.eval()  # built in train mode: dropout would draw


def _tokens(batch=2, length=8, seed=0):
    rng = np.random.default_rng(seed)
    ids = torch.from_numpy(rng.integers(0, 128, (batch, length)))
    mask = torch.ones(batch, length, dtype=torch.int64)
    mask[1, length - 2:] = 0
    return ids, mask


@pytest.mark.parametrize("kind", ["bert", "llama", "gpt2"])
def test_transformers_model_with_its_default_config_ports(kind, tmp_path):
    model = _hf(kind)
    ids, mask = _tokens()
    result = port(model, ((), {"input_ids": ids, "attention_mask": mask}), name=kind, workdir=str(tmp_path))
    report = _check(result)
    assert result.inputs == ["input_ids", "attention_mask"]
    assert [r["output"] for r in report["outputs"]] == ["logits"]  # a ModelOutput comes back as a dict
    if kind != "bert":
        assert any("use_cache" in c for c in report["changes"]) and model.config.use_cache  # said, and undone
    if kind == "bert":  # an eval-mode export would drop dropout: the port keeps torch's layers (p=0.1)
        drops = [c for _, c in result.cell.cells_and_names() if type(c).__name__ == "Dropout"]
        assert drops and {round(float(c.p), 6) for c in drops} == {0.1}
        assert not any("dropout" in c for c in report["changes"]), report["changes"]
    out = _run(result.cell, *_tokens(batch=3, length=5, seed=1), graph=True)  # other batch and length
    ids, mask = _tokens(batch=3, length=5, seed=1)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask).logits.numpy()
    assert norm_rel(want, out["logits"].asnumpy()) <= PORT_OUTPUT_NORM_REL


class Wrapped(torch.nn.Module):
    """A user's own module around a Hugging Face model: the config (and its cache flag) is the inner one's."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids):
        return self.inner(input_ids=input_ids)


def test_a_cache_flag_below_the_top_module_is_turned_off_too(tmp_path):
    inner = _hf("llama")
    result = port(Wrapped(inner).eval(), _tokens()[0], name="wrapped", workdir=str(tmp_path))
    report = _check(result)
    assert any("use_cache" in c for c in report["changes"]) and inner.config.use_cache  # said, and undone


def test_gpt2_tied_weights_are_one_parameter_and_buffers_are_carried(tmp_path):
    model = _hf("gpt2")
    assert model.lm_head.weight is model.transformer.wte.weight
    result = port(model, ((), {"input_ids": _tokens()[0]}), name="gpt2", check=False, workdir=str(tmp_path))
    cell = result.cell
    assert cell.lm_head.weight is cell.transformer.wte.embedding_table
    assert "lm_head.weight" not in {p.name for p in cell.get_parameters()}
    assert result.ties == {"lm_head.weight": "self.transformer.wte.embedding_table"}
    llama = port(_hf("llama"), ((), {"input_ids": _tokens()[0]}), name="llama", check=False,
                 workdir=str(tmp_path / "l"))
    llama.save(str(tmp_path / "out"))
    frequencies = {p.name: p for p in import_source(str(tmp_path / "out" / "llama_ms.py")).create().get_parameters()}
    inv_freq = frequencies["model.rotary_emb.inv_freq"]  # a buffer: carried, never trained or redrawn
    assert not inv_freq.requires_grad and np.array_equal(inv_freq.asnumpy(),
                                                          _hf("llama").model.rotary_emb.inv_freq.numpy())


def test_torch_transformer_encoder_and_decoder_stacks_port(tmp_path):
    torch.manual_seed(0)

    class Seq2Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True),
                                                       2, enable_nested_tensor=False)
            self.decoder = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(16, 2, 32, batch_first=True), 2)

        def forward(self, src, tgt):
            return self.decoder(tgt, self.encoder(src))

    result = port(Seq2Seq().eval(), (_input((2, 5, 16)), _input((2, 4, 16), seed=2)), workdir=str(tmp_path))
    _check(result)


# --- inputs, outputs, the command -------------------------------------------------------------------

class TwoHeads(torch.nn.Module):
    """Positional float and int inputs, a keyword bool mask; a tuple holding a dict."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 6)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x, ids, mask=None):
        h = self.embed(ids) + x
        h = h.masked_fill(~mask[..., None], 0.0)
        return self.fc(h).mean(1), {"tokens": h, "count": mask.sum(1)}


def test_any_inputs_and_outputs_keep_their_structure_and_dtypes(tmp_path):
    x, ids = _input((2, 4, 6)), torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    mask = ids != 0
    result = port(TwoHeads(), ((x, ids), {"mask": mask}), workdir=str(tmp_path))
    report = _check(result)
    assert [r["output"] for r in report["outputs"]] == ["[0]", "[1].tokens", "[1].count"]
    head, rest = _run(result.cell, x.numpy(), ids.numpy(), mask.numpy())
    assert set(rest) == {"tokens", "count"} and rest["count"].asnumpy().tolist() == [3, 2]


def test_port_command_writes_model_weights_and_parity(tmp_path, capsys):
    out = tmp_path / "rn"
    args = ["port", "torchvision:resnet18", "--out", str(out), "--input-shape", "2,3,32,32"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "||ms - torch|| / ||torch||" in printed and "first divergent layer: none" in printed
    assert sorted(os.listdir(out)) == ["parity.json", "parity.md", "resnet18.ckpt", "resnet18_ms.py"]
    report = json.loads((out / "parity.json").read_text())
    assert report["within_tolerance"] and report["layers_compared"] > 50
    net = import_source(str(out / "resnet18_ms.py")).create(str(out / "resnet18.ckpt"))
    torch.manual_seed(0)  # the command's default --seed: the same random weights
    model = torchvision.models.resnet18().eval()
    x = _input((2, 3, 32, 32))
    net.set_train(False)
    with torch.no_grad():
        assert norm_rel(model(x).numpy(), net(ms.Tensor(x.numpy())).asnumpy()) <= PORT_OUTPUT_NORM_REL
    before = (out / "resnet18.ckpt").stat().st_mtime_ns
    assert cli.main(args) == 2  # never overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "resnet18.ckpt").stat().st_mtime_ns == before


MODELS_PY = '''
import numpy as np
import torch


class Branchy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class Odd(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        y = torch.nonzero(x > 0).float().sum()
        return self.fc(torch.cummax(x, 1)[0]) * y


class Tokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(16, 4)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids) * attention_mask[..., None]
        return self.fc(h.sum(1))


def tokens():
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    return (), {"input_ids": ids, "attention_mask": torch.ones(2, 3)}
'''


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    (tmp_path / "user_models.py").write_text(MODELS_PY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import user_models
    importlib.reload(user_models)
    yield user_models


def test_example_inputs_from_an_npz_or_a_callable(user_models, tmp_path, capsys):
    np.savez(tmp_path / "ex.npz", input_ids=np.array([[1, 2, 3], [4, 5, 6]]), attention_mask=np.ones((2, 3), np.float32))
    for example in (str(tmp_path / "ex.npz"), "user_models:tokens"):
        out = tmp_path / example.replace(":", "_").replace("/", "_")
        assert cli.main(["port", "user_models:Tokens", "--out", str(out), "--example", example]) == 0, \
            capsys.readouterr().err
        assert "inputs input_ids, attention_mask" in capsys.readouterr().out


def test_a_model_export_cannot_capture_names_the_users_line(user_models, tmp_path, capsys):
    code = cli.main(["port", "user_models:Branchy", "--out", str(tmp_path / "out"), "--input-shape", "2,4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "user_models.py:12 `if x.sum() > 0:`" in err and "--concrete-arg" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(TraceFailed):
        port(user_models.Branchy(), _input((2, 4)), check=False)


def test_a_parameter_free_model_is_refused_before_anything_is_written(tmp_path, capsys):
    # it once left <name>_ms.py behind, then refused the empty checkpoint
    code = cli.main(["port", "torch.nn:ReLU", "--out", str(tmp_path / "out"), "--input-shape", "2,3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no parameters or buffers" in err
    assert not (tmp_path / "out").exists()


def test_every_unsupported_op_is_listed_with_its_line_and_nothing_is_generated(user_models, tmp_path, capsys):
    with pytest.raises(UnsupportedModel) as info:
        port(user_models.Odd(), _input((2, 4)), check=False)
    found = {u.target for u in info.value.unsupported}
    assert {"aten.nonzero.default", "aten.cummax.default"} <= found
    assert all("user_models.py:" in u.where for u in info.value.unsupported)
    why = {u.target: u.why for u in info.value.unsupported}  # a Core ATen op left out for a reason says it
    assert why["aten.nonzero.default"] == "not in the op table (data-dependent output shape: GRAPH_MODE needs static shapes)"
    assert why["aten.cummax.default"] == "not in the op table"
    out = tmp_path / "odd"
    assert cli.main(["port", "user_models:Odd", "--out", str(out), "--input-shape", "2,4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "user_models.py:23 `y = torch.nonzero(x > 0).float().sum()`" in err
    assert sorted(os.listdir(out)) == ["unsupported.json", "unsupported.md"]


class ReflectPadded(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        return self.conv(x)


def test_a_layer_configuration_mindspore_cannot_compute_is_listed_with_the_registry_reason():
    with pytest.raises(UnsupportedModel) as info:
        port(ReflectPadded(), _input((2, 3, 4, 5)), check=False)
    assert "padding_mode='reflect'" in info.value.unsupported[0].why


# --- twins of one's own, and the generated file's namespace ------------------------------------------

class Scale(torch.nn.Module):
    """A user's layer: a learned per-channel scale."""

    def __init__(self, channels):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(channels, 1))

    def forward(self, x):
        return x * self.weight


class ScaleTwin(nn.Cell):
    def __init__(self, channels):
        super().__init__()
        self.gamma = ms.Parameter(ms.Tensor(np.zeros((channels, 1), np.float32)), name="gamma")

    def construct(self, x):
        return x * self.gamma


class UsesScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = Scale(3)
        self.fc = torch.nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(torch.special.erfcx(self.scale(x)))


def test_registered_twins_port_a_module_type_and_an_op(tmp_path):
    model = UsesScale()
    with pytest.raises(UnsupportedModel):
        port(model, _input((2, 3, 5)), check=False)
    twin = register_layer(Scale, ScaleTwin, args=lambda m: ((m.weight.shape[0],), {}), params={"weight": "gamma"})
    op = register_op("aten.special_erfcx.default", "ops.exp({self} * {self}) * ops.erfc({self})")
    try:
        result = port(model, _input((2, 3, 5)), workdir=str(tmp_path))
    finally:
        unregister_layer(twin.torch_type)
        unregister_op(op)
    assert "ScaleTwin(3)" in result.source and "ops.erfc(" in result.source
    assert "scale.gamma" in [p.name for p in result.cell.get_parameters()]
    _check(result)


HELPER = '''
from msport._mindspore import ops


def erf(x):
    return ops.erf(x)
'''


def test_a_value_never_shadows_the_function_that_computes_it(tmp_path, monkeypatch):
    """Issue 16 bug 3: a registered op importing ``erf`` made the generated code read ``erf = erf(x)``."""
    (tmp_path / "twin_helpers.py").write_text(HELPER)
    monkeypatch.syspath_prepend(str(tmp_path))

    class Erf(torch.nn.Module):
        def forward(self, x):
            return torch.erf(x)

    op = register_op("aten.erf.default", "erf({self})", imports=[("twin_helpers", "erf")])
    try:
        result = port(Erf(), _input((2, 3)), workdir=str(tmp_path / "w"))
    finally:
        unregister_op(op)
    assert "from twin_helpers import erf" in result.source and "erf = erf(" not in result.source
    _check(result)


def test_port_without_workdir_leaves_no_folder_behind(tmp_path):
    """Issue 16 bug 8: every library call without ``workdir`` left a msport_port_* folder in the temp dir."""
    code = ("import torch; from msport.port import port; "
            "r = port(torch.nn.Linear(3, 2), torch.ones(2, 3), check=False); "
            "import os; print(os.path.isdir(os.path.dirname(r.source_path)))")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip().endswith("True")  # there while the cell lives (GRAPH_MODE compiles from the file)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("msport_port_")]
    result = port(torch.nn.Linear(3, 2), torch.ones(2, 3), check=False)
    folder = os.path.dirname(result.source_path)
    del result
    gc.collect()
    assert not os.path.exists(folder)


# --- training a ported model ---------------------------------------------------------------------------

def test_trainers_build_a_ported_model_and_its_torch_spec(tmp_path, capsys):
    from msport.convert import load_file_into_ms

    spec = "reference_torch.resnet:resnet10_w16"
    assert cli.main(["port", spec, "--out", str(tmp_path / "p"), "--input-shape", "2,3,32,32"]) == 0
    torch.manual_seed(3)
    torch_model = resolve.torch_model(spec, num_classes=10)  # what train_torch.py --model SPEC builds
    cell = resolve.ms_model(f"port:{tmp_path / 'p'}", num_classes=10)  # what train_ms.py --model port:DIR builds
    torch.save(torch_model.state_dict(), tmp_path / "init.pth")
    load_file_into_ms(cell, str(tmp_path / "init.pth"))  # --init-from, as both trainers take it
    x = _input((2, 3, 32, 32))
    cell.set_train(False)
    with torch.no_grad():
        assert norm_rel(torch_model.eval()(x).numpy(), cell(ms.Tensor(x.numpy())).asnumpy()) <= PORT_OUTPUT_NORM_REL
    with pytest.raises(ValueError, match="num_classes=7"):
        resolve.ms_model(f"port:{tmp_path / 'p'}", num_classes=7)
    with pytest.raises(ValueError, match="expected one <name>_ms.py"):
        resolve.ms_model(f"port:{tmp_path}", num_classes=10)


def test_saved_checkpoint_holds_every_parameter_once(tmp_path):
    result = port(_hf("gpt2"), ((), {"input_ids": _tokens()[0]}), name="gpt2", check=False,
                  workdir=str(tmp_path / "w"))
    paths = result.save(str(tmp_path / "out"))
    assert [os.path.basename(p) for p in paths] == ["gpt2_ms.py", "gpt2.ckpt", "gpt2_init.ckpt"]
    names = set(load_ms_checkpoint(str(tmp_path / "out" / "gpt2.ckpt")))
    assert names == {p.name for p in result.cell.get_parameters()} and "lm_head.weight" not in names
    net = import_source(str(tmp_path / "out" / "gpt2_ms.py")).create(str(tmp_path / "out" / "gpt2.ckpt"))
    assert net.lm_head.weight is net.transformer.wte.embedding_table
