"""Every registered layer type, against real torch: forward, init, conversion, apply_init.

One row per configuration in ``CASES``; adding a layer type to msport/registry.py means adding
a row here. Shapes are small and odd on purpose (non-square kernels, stride 2 on odd sizes,
groups > 1, dilation), so a convention that differs anywhere shows.
"""

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import stats

from msport import registry
from msport._mindspore import ms, nn
from msport.convert import layer_map, mindspore_to_torch, ms_param_shapes, torch_state_shapes, torch_to_mindspore
from msport.layers import apply_init, build
from msport.tolerances import INIT_KS_ALPHA, LAYER_FORWARD_MAX_REL, TANH_FORWARD_MAX_REL, max_rel


@dataclass
class Case:
    name: str
    args: tuple
    kwargs: dict
    inputs: tuple          # input shapes; an int dtype marks token ids
    train: bool = False    # also compare a train-mode step (BatchNorm: running statistics too)
    tol: float = LAYER_FORWARD_MAX_REL

    @property
    def id(self):
        parts = [str(a) for a in self.args] + [f"{k}={v}" for k, v in self.kwargs.items()]
        return f"{self.name}({','.join(parts)})".replace(" ", "")


CASES = [
    Case("Conv1d", (4, 6, 3), dict(stride=2, padding=1, groups=2), ((2, 4, 11),)),
    Case("Conv1d", (4, 6, 3), dict(padding="same", dilation=2), ((2, 4, 10),)),
    Case("Conv2d", (4, 6, (3, 5)), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), ((2, 4, 9, 11),)),
    Case("Conv2d", (3, 8, 4), dict(padding="same"), ((2, 3, 9, 10),)),
    Case("Conv2d", (4, 6, 1), dict(bias=False), ((2, 4, 5, 7),)),
    Case("Conv3d", (2, 4, (3, 1, 3)), dict(stride=(2, 1, 1), padding=(1, 0, 1)), ((2, 2, 5, 6, 7),)),
    Case("ConvTranspose1d", (4, 6, 3), dict(stride=2, padding=1), ((2, 4, 7),)),
    Case("ConvTranspose1d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1), ((2, 4, 7),)),
    Case("ConvTranspose2d", (4, 6, (3, 5)), dict(stride=2, padding=(1, 2), output_padding=1), ((2, 4, 5, 6),)),
    Case("ConvTranspose2d", (4, 6, 3), dict(groups=2), ((2, 4, 5, 5),)),
    Case("ConvTranspose3d", (2, 4, 3), dict(stride=2, padding=1, output_padding=1), ((1, 2, 3, 4, 5),)),
    Case("Linear", (7, 5), {}, ((3, 7),)),
    Case("Linear", (7, 5), dict(bias=False), ((2, 3, 7),)),
    Case("BatchNorm1d", (6,), {}, ((5, 6, 7),), train=True),
    Case("BatchNorm2d", (6,), dict(momentum=0.3, eps=1e-3), ((4, 6, 5, 7),), train=True),
    Case("BatchNorm3d", (3,), {}, ((2, 3, 4, 5, 3),), train=True),
    Case("LayerNorm", ((5, 7),), {}, ((2, 3, 5, 7),)),
    Case("LayerNorm", (8,), dict(elementwise_affine=False), ((2, 3, 8),)),
    Case("LayerNorm", (8,), dict(bias=False, eps=1e-6), ((2, 3, 8),)),
    Case("GroupNorm", (3, 6), {}, ((2, 6, 5, 5),)),
    Case("InstanceNorm1d", (6,), dict(affine=True), ((2, 6, 9),)),
    Case("InstanceNorm2d", (6,), dict(affine=True), ((2, 6, 5, 5),)),
    Case("InstanceNorm2d", (6,), {}, ((2, 6, 5, 5),)),
    Case("Embedding", (20, 6), dict(padding_idx=3), (("int", 2, 7),)),
    Case("LSTM", (5, 4), dict(num_layers=2, bidirectional=True, batch_first=True), ((2, 7, 5),), tol=TANH_FORWARD_MAX_REL),
    Case("GRU", (5, 4), {}, ((7, 2, 5),), tol=TANH_FORWARD_MAX_REL),
    Case("RNN", (5, 4), dict(nonlinearity="relu", num_layers=2), ((7, 2, 5),), tol=TANH_FORWARD_MAX_REL),
    Case("MultiheadAttention", (8, 2), dict(batch_first=True), ((2, 5, 8), (2, 5, 8), (2, 5, 8))),
    Case("PReLU", (6,), {}, ((2, 6, 5, 5),)),
    Case("Dropout", (0.3,), {}, ((2, 3, 4),)),
    Case("MaxPool1d", (3, 2, 1), {}, ((2, 3, 11),)),
    Case("MaxPool2d", (3, 2, 1), dict(ceil_mode=True), ((2, 3, 10, 11),)),
    Case("MaxPool2d", ((2, 3),), dict(stride=(2, 1)), ((2, 3, 9, 8),)),
    Case("AvgPool1d", (3, 2, 1), dict(count_include_pad=False), ((2, 3, 11),)),
    Case("AvgPool2d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False), ((2, 3, 10, 11),)),
    Case("AvgPool2d", ((2, 3),), {}, ((2, 3, 9, 8),)),
    Case("AdaptiveAvgPool2d", ((3, 2),), {}, ((2, 3, 9, 8),)),
    Case("AdaptiveAvgPool1d", (3,), {}, ((2, 3, 9),)),
    Case("ReLU", (), {}, ((2, 3, 4, 5),)),
    Case("ReLU6", (), {}, ((2, 3, 4, 5),)),
    Case("SiLU", (), {}, ((2, 3, 4, 5),)),
    Case("Sigmoid", (), {}, ((2, 3, 4, 5),)),
    Case("Tanh", (), {}, ((2, 3, 4, 5),), tol=TANH_FORWARD_MAX_REL),
    Case("GELU", (), {}, ((2, 3, 4, 5),)),
    Case("GELU", (), dict(approximate="tanh"), ((2, 3, 4, 5),)),
    Case("Hardswish", (), {}, ((2, 3, 4, 5),)),
    Case("Hardsigmoid", (), {}, ((2, 3, 4, 5),)),
    Case("LeakyReLU", (0.2,), {}, ((2, 3, 4, 5),)),
    Case("Softmax", (), dict(dim=1), ((2, 3, 4, 5),)),
    Case("Flatten", (), {}, ((2, 3, 4, 5),)),
    Case("Identity", (), {}, ((2, 3, 4, 5),)),
]
IDS = [c.id for c in CASES]


class TorchHolder(torch.nn.Module):
    """Gives the layer the name ``layer``, as it would have inside a model."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer


class MSHolder(nn.Cell):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer


def _inputs(case, rng):
    arrays = []
    for shape in case.inputs:
        if shape[0] == "int":
            arrays.append(rng.integers(0, case.args[0], size=shape[1:]).astype(np.int64))
        else:
            arrays.append((rng.standard_normal(shape) * 2).astype(np.float32))
    return arrays


def _pair(case, seed=0):
    torch.manual_seed(seed)
    ms.set_seed(seed)
    torch_layer = getattr(torch.nn, case.name)(*case.args, **case.kwargs)
    ms_layer = build(case.name, *case.args, **case.kwargs)
    return TorchHolder(torch_layer), MSHolder(ms_layer)


def _copy_torch_into_ms(torch_holder, ms_holder):
    params, _ = torch_to_mindspore(torch_holder.state_dict(), ms_param_shapes(ms_holder), layer_map(ms_holder))
    for p in ms_holder.get_parameters():
        p.set_data(ms.Tensor(params[p.name]))


def _output(value, entry):
    if isinstance(value, (tuple, list)):
        value = value[entry.output_index or 0]
    return value.detach().numpy() if hasattr(value, "detach") else value.asnumpy()




@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_equals_torch_with_converted_weights(case, rng):
    entry = registry.entry(case.name)
    torch_holder, ms_holder = _pair(case)
    _copy_torch_into_ms(torch_holder, ms_holder)
    arrays = _inputs(case, rng)
    for train in (False, True) if case.train else (False,):
        torch_holder.train(train)
        ms_holder.set_train(train)
        want = _output(torch_holder.layer(*[torch.from_numpy(a) for a in arrays]), entry)
        got = _output(ms_holder.layer(*[ms.Tensor(a) for a in arrays]), entry)
        assert got.shape == want.shape, f"{case.id}: shape {got.shape} vs torch {want.shape}"
        diff = max_rel(want, got)
        assert diff <= case.tol, f"{case.id} train={train}: max rel diff {diff:.2e}"
    if case.train:  # the running statistics each framework updated in that train step
        back, _ = mindspore_to_torch(OrderedDict((p.name, p.asnumpy()) for p in ms_holder.get_parameters()),
                                     layers=layer_map(ms_holder))
        for key in ("layer.running_mean", "layer.running_var"):
            want = torch_holder.state_dict()[key].numpy()
            assert max_rel(want, back[key]) <= LAYER_FORWARD_MAX_REL, f"{case.id}: {key}"


PARAMETERISED = [c for c in CASES if registry.entry(c.name).params]


@pytest.mark.parametrize("case", PARAMETERISED, ids=[c.id for c in PARAMETERISED])
def test_conversion_round_trip_is_bit_exact(case):
    torch_holder, ms_holder = _pair(case, seed=1)
    state = OrderedDict((k, v.numpy()) for k, v in torch_holder.state_dict().items())
    layers = layer_map(ms_holder)
    params, _ = torch_to_mindspore(state, ms_param_shapes(ms_holder), layers)
    back, _ = mindspore_to_torch(params, torch_state_shapes(torch_holder.layer and torch_holder), layers=layers)
    assert list(back) == list(state)
    for key, value in state.items():
        assert back[key].shape == value.shape and back[key].tobytes() == value.tobytes(), f"{case.id}: {key}"
    # and the other way: MindSpore's own draw -> torch -> MindSpore
    ms_state = OrderedDict((p.name, p.asnumpy().copy()) for p in ms_holder.get_parameters())
    to_torch, _ = mindspore_to_torch(ms_state, torch_state_shapes(torch_holder), layers=layers)
    again, _ = torch_to_mindspore(to_torch, ms_param_shapes(ms_holder), layers)
    for key, value in ms_state.items():
        assert again[key].tobytes() == value.tobytes(), f"{case.id}: {key}"


def _drawn(holder_params, torch_params, case):
    """Pairs (name, MindSpore draw, torch draw) in torch naming."""
    for key, value in torch_params.items():
        if key.endswith("num_batches_tracked"):
            continue
        yield key, holder_params[key], value


def _assert_like_torch(case, ms_holder, seed=2):
    torch.manual_seed(seed)
    torch_layer = TorchHolder(getattr(torch.nn, case.name)(*case.args, **case.kwargs))
    theirs = OrderedDict((k, v.detach().numpy()) for k, v in torch_layer.state_dict().items())
    mine, _ = mindspore_to_torch(OrderedDict((p.name, p.asnumpy()) for p in ms_holder.get_parameters()),
                                 torch_state_shapes(torch_layer), layers=layer_map(ms_holder))
    for key, drawn, reference in _drawn(mine, theirs, case):
        drawn, reference = drawn.ravel(), reference.ravel()
        if np.all(reference == reference[0]):
            assert np.all(drawn == reference[0]), f"{case.id}: {key} should be constant {reference[0]}"
            continue
        if case.name == "Embedding":  # torch zeroes the padding row after its N(0, 1) draw: compare the rest
            row = case.kwargs["padding_idx"] * case.args[1]
            width = case.args[1]
            assert not drawn[row:row + width].any(), f"{case.id}: padding row not zero"
            drawn = np.delete(drawn, np.s_[row:row + width])
            reference = np.delete(reference, np.s_[row:row + width])
        bound = np.abs(reference).max()
        p_value = stats.ks_2samp(drawn, reference).pvalue
        assert p_value > INIT_KS_ALPHA, f"{case.id}: {key} KS p={p_value:.2e} against torch's own draw"
        if "Embedding" != case.name:  # every other non-constant torch default is a bounded uniform
            spec_bound = max(bound, 1e-12) * 1.0001
            assert np.abs(drawn).max() <= spec_bound * 1.2, f"{case.id}: {key} exceeds torch's bound"


# KS needs samples: a bigger configuration of each parameterised type for the init tests.
INIT_CASES = [
    Case("Conv1d", (16, 32, 5), {}, ()), Case("Conv2d", (8, 32, 3), {}, ()), Case("Conv3d", (4, 16, 3), {}, ()),
    Case("ConvTranspose1d", (16, 32, 5), {}, ()), Case("ConvTranspose2d", (8, 32, 3), dict(groups=2), ()),
    Case("ConvTranspose3d", (4, 16, 3), {}, ()), Case("Linear", (64, 48), {}, ()),
    Case("BatchNorm1d", (16,), {}, ()), Case("BatchNorm2d", (16,), {}, ()), Case("BatchNorm3d", (16,), {}, ()),
    Case("LayerNorm", (16,), {}, ()), Case("GroupNorm", (4, 16), {}, ()), Case("InstanceNorm1d", (16,), dict(affine=True), ()),
    Case("InstanceNorm2d", (16,), dict(affine=True), ()),
    Case("Embedding", (300, 16), dict(padding_idx=3), ()), Case("LSTM", (24, 32), dict(num_layers=2), ()),
    Case("GRU", (24, 32), dict(bidirectional=True), ()), Case("RNN", (24, 32), {}, ()),
    Case("MultiheadAttention", (32, 4), {}, ()), Case("PReLU", (16,), {}, ()),
]


@pytest.mark.parametrize("case", INIT_CASES, ids=[c.id for c in INIT_CASES])
def test_factory_draws_what_torch_draws(case):
    ms.set_seed(5)
    _assert_like_torch(case, MSHolder(build(case.name, *case.args, **case.kwargs)))


@pytest.mark.parametrize("case", INIT_CASES, ids=[c.id for c in INIT_CASES])
def test_apply_init_brings_raw_mindspore_defaults_to_torch(case):
    entry = registry.entry(case.name)
    raw = MSHolder(registry.ms_class(entry)(**entry.build(registry.bind(entry, case.args, case.kwargs))))
    ms.set_seed(6)
    report = apply_init(raw, "torch")
    # InstanceNorm2d is built as a GroupNorm, which is what a MindSpore cell says it is
    assert report.redrawn[registry.entry_for_ms(raw.layer).name] == 1 and not report.unknown
    _assert_like_torch(case, raw)


def test_embedding_std_goes_from_mindspores_001_to_torchs_1():
    raw = MSHolder(nn.Embedding(1000, 32))
    assert abs(raw.layer.embedding_table.asnumpy().std() - 0.01) < 0.001
    apply_init(raw, "torch")
    assert abs(raw.layer.embedding_table.asnumpy().std() - 1.0) < 0.02


def test_every_registered_type_has_a_forward_row():
    # losses are called on (input, target): their rows are in tests/test_losses.py
    assert {e.name for e in registry.entries() if not e.loss} == {c.name for c in CASES}


def test_factory_signatures_are_torchs():
    import inspect

    for e in registry.entries():
        theirs = inspect.signature(getattr(torch.nn, e.torch_class).__init__).parameters
        for name, default in e.signature:
            if name in theirs:  # LSTM/GRU/RNN take *args in torch: their defaults are checked by the rows
                assert theirs[name].default == default or default is registry.REQUIRED, f"{e.name}.{name}"


@pytest.mark.parametrize("name,args,kwargs,missing", [
    ("Conv2d", (3, 4, 3), dict(padding_mode="reflect"), "padding_mode='reflect'"),
    ("Conv1d", (3, 4, 4), dict(padding="same"), "asymmetric padding"),
    ("LSTM", (3, 4), dict(proj_size=2), "proj_size"),
    ("BatchNorm2d", (4,), dict(momentum=None), "momentum=None"),
    ("Embedding", (10, 4), dict(max_norm=1.0), "max_norm"),
    ("ConvTranspose1d", (3, 4, 3), dict(stride=2, output_padding=1), "output_padding"),
    ("InstanceNorm2d", (4,), dict(track_running_stats=True), "track_running_stats"),
])
def test_what_mindspore_cannot_express_is_an_error_naming_it(name, args, kwargs, missing):
    with pytest.raises(registry.UnsupportedLayer, match=missing.replace("(", r"\(").replace(")", r"\)")):
        build(name, *args, **kwargs)


def test_an_unknown_layer_type_is_named():
    with pytest.raises(registry.UnknownLayer, match="'Transformer'"):
        registry.entry("Transformer")


def test_layer_norm_without_affine_keeps_mindspores_gamma_fixed():
    layer = build("LayerNorm", 8, elementwise_affine=False)
    assert not layer.gamma.requires_grad and not layer.beta.requires_grad


def test_msports_own_cells_compile_in_graph_mode(rng):
    # the cells msport adds where a MindSpore layer alone cannot do what torch does must also run as a graph
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.up = build("ConvTranspose2d", 3, 4, 3, stride=2, padding=1, output_padding=1)
            self.norm = build("LayerNorm", (10, 12))

        def construct(self, x):
            return self.norm(self.up(x))

    net = Net()
    x = ms.Tensor(rng.standard_normal((2, 3, 5, 6)).astype(np.float32))
    eager = net(x).asnumpy()
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        graph = net(x).asnumpy()
    finally:
        ms.set_context(mode=previous)
    assert graph.shape == (2, 4, 10, 12)
    assert max_rel(eager, graph) <= LAYER_FORWARD_MAX_REL


def test_docs_table_is_the_registry():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / registry.DOCS_PAGE).read_text()
    assert registry.docs_table_section(page) == registry.markdown_table(), \
        "docs/layers.md is out of date: run `python -m msport.registry`"


def test_the_readmes_own_port_example_gives_torchs_logits():
    import runpy
    from pathlib import Path

    example = runpy.run_path(str(Path(__file__).resolve().parent.parent / "examples" / "port_your_own_model.py"))
    assert example["main"]() <= LAYER_FORWARD_MAX_REL


def test_map_names_maps_without_arrays_by_layer_type_or_by_names_alone():
    from msport.convert import map_names

    torch_model = TorchHolder(torch.nn.Embedding(10, 4))
    names = list(torch_model.state_dict())
    assert map_names(names, "torch", layer_map(torch_model)) == {"layer.weight": "layer.embedding_table"}
    # names alone cannot tell an Embedding's weight from a Linear's: it keeps its name, and says nothing more
    assert map_names(names, "torch") == {"layer.weight": "layer.weight"}
    # the MindSpore side's names do tell
    assert map_names(["layer.embedding_table"], "mindspore") == {"layer.embedding_table": "layer.weight"}
    bn = ["bn.gamma", "bn.beta", "bn.moving_mean", "bn.moving_variance"]
    assert list(map_names(bn, "mindspore").values()) == ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]
    assert map_names(["bn.running_mean", "bn.num_batches_tracked"], "torch")["bn.num_batches_tracked"] is None
    conv1d = {"c.weight": (6, 4, 3), "c.bias": (6,)}
    assert map_names(list(conv1d), "torch", shapes=conv1d) == {"c.weight": "c.weight", "c.bias": "c.bias"}
