"""Every entry of msport port's op table against torch: one case per entry, each ported and run.

A case is a torch function of one input tensor using the entry's op; it is traced, ported
(``check=False``: the outputs are compared here) and the MindSpore output must equal torch's
within :data:`msport.tolerances.LAYER_FORWARD_MAX_REL`. ``test_every_entry_has_a_case`` fails
when an entry is added without one. One model using every case also runs in GRAPH_MODE.
"""

import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models import swin_transformer as swin

from msport.port.ops import OPS
from msport.tolerances import LAYER_FORWARD_MAX_REL

SHAPE = (2, 3, 4, 6)
_STOCHASTIC_DEPTH = importlib.import_module("torchvision.ops.stochastic_depth")

CASES = {
    "add": [lambda x: x + x * 2, lambda x: torch.add(x, x, alpha=2)],
    "sub": [lambda x: x - 1.5, lambda x: torch.sub(x, x * 3, alpha=0.5)],
    "mul": [lambda x: x * x],
    "truediv": [lambda x: x / 3],
    "floordiv": [lambda x: x.reshape(x.shape[0], x.shape[3] // 2, -1)],
    "matmul": [lambda x: x @ x.transpose(-1, -2), lambda x: torch.matmul(x, x.transpose(-1, -2))],
    "neg": [lambda x: -x],
    "eq": [lambda x: x * (x.shape[1] == 3)],
    "ne": [lambda x: x * (x.shape[1] != 3)],
    "getitem": [lambda x: x[:, 1:3, ::2, 0], lambda x: x[..., None, -1], lambda x: x.chunk(2, 3)[1]],
    "getattr": [lambda x: x.reshape(x.ndim, -1)],
    "size": [lambda x: x.view(x.size(0), -1), lambda x: x.reshape(x.size()[1], -1)],
    "dim": [lambda x: x.reshape(x.dim(), -1)],
    "assert": [lambda x: (torch._assert(x.shape[1] == 3, "three channels"), x + 1)[1]],
    "contiguous": [lambda x: x.transpose(1, 2).contiguous()],
    "flatten": [lambda x: torch.flatten(x, 1), lambda x: x.flatten(), lambda x: x.flatten(1, 2)],
    "reshape": [lambda x: x.reshape(2, -1), lambda x: x.view(-1), lambda x: torch.reshape(x, (6, -1))],
    "permute": [lambda x: x.permute(0, 2, 3, 1), lambda x: torch.permute(x, (3, 1, 2, 0))],
    "transpose": [lambda x: torch.transpose(x, 1, 3), lambda x: x.swapaxes(0, 2), lambda x: x.transpose(-1, -2)],
    "cat": [lambda x: torch.cat([x, x * 2], dim=1), lambda x: torch.concat((x, x), -1)],
    "chunk": [lambda x: torch.chunk(x, 3, dim=3)[2], lambda x: x.chunk(2)[0]],
    "mean": [lambda x: x.mean([2, 3]), lambda x: x.mean(-1, keepdim=True), lambda x: torch.mean(x)],
    "softmax": [lambda x: F.softmax(x, dim=-1), lambda x: x.softmax(1), lambda x: torch.softmax(x, 2)],
    "relu": [lambda x: F.relu(x), lambda x: torch.relu(x), lambda x: F.relu(x, inplace=True)],
    "sigmoid": [lambda x: torch.sigmoid(x), lambda x: x.sigmoid()],
    "tanh": [lambda x: torch.tanh(x)],
    "gelu": [lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh")],
    "einsum": [lambda x: torch.einsum("bhid,bhjd->bhij", x, x),
               lambda x: torch.einsum("b h i d, b h i e -> b h d e", x, x),
               lambda x: torch.einsum("bhij,bhjd->bhid", x.transpose(-1, -2) @ x, x.transpose(-1, -2))],
    "expand": [lambda x: x[:, :1].expand(-1, 3, -1, -1), lambda x: x[:1].expand(2, 3, 4, 6)],
    "unsqueeze": [lambda x: x.unsqueeze(1), lambda x: torch.unsqueeze(x, -1)],
    "adaptive_avg_pool2d": [lambda x: F.adaptive_avg_pool2d(x, (2, 1)), lambda x: F.adaptive_avg_pool2d(x, 1)],
    "avg_pool2d": [lambda x: F.avg_pool2d(x, 2), lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                   lambda x: F.avg_pool2d(x, 3, 2, ceil_mode=True)],
    "max_pool2d": [lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 2),
                   lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True)],
    "layer_norm": [lambda x: F.layer_norm(x, (6,)), lambda x: F.layer_norm(x, (4, 6), eps=1e-6)],
    # through the defining module, where torch.fx.wrap made it a leaf (torchvision.ops.stochastic_depth is traced into)
    "stochastic_depth": [lambda x: _STOCHASTIC_DEPTH.stochastic_depth(x, 0.3, "row", False) * 2],
    "swin_patch_merging_pad": [lambda x: swin._patch_merging_pad(x)],  # (..., H 3, W 4, C 6): H padded
    "swin_relative_position_bias": [lambda x: swin._get_relative_position_bias(
        x.reshape(-1, 2)[:9], torch.tensor([(i * 5) % 9 for i in range(16)]), [2, 2])],
    "swin_shifted_window_attention": [lambda x: _window_attention(x, [1, 1]), lambda x: _window_attention(x, [0, 0])],
}


def _constant(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


def _window_attention(x, shift):
    """(1, 4, 4, 9) tokens, 3 heads, 2x2 windows; weights are constants of the traced graph."""
    return swin.shifted_window_attention(x.reshape(1, 4, 4, 9), _constant(27, 9), _constant(9, 9),
                                         _constant(1, 3, 4, 4), [2, 2], 3, shift, qkv_bias=_constant(27),
                                         proj_bias=_constant(9), training=False)


class OneOp(torch.nn.Module):
    def __init__(self, fns):
        super().__init__()
        self.fns = fns

    def forward(self, x):
        return tuple(fn(x) for fn in self.fns)


def _run_both(module, x, tmp_path):
    from msport._mindspore import ms
    from msport.port import port

    result = port(module, torch.from_numpy(x), check=False, workdir=str(tmp_path))
    expected = module(torch.from_numpy(x.copy()))
    got = result.cell(ms.Tensor(x))
    return result, expected, got


def _assert_close(expected, got, what):
    for i, (e, g) in enumerate(zip(expected, got)):
        e = e.detach().numpy() if hasattr(e, "detach") else np.asarray(e)
        g = g.asnumpy() if hasattr(g, "asnumpy") else np.asarray(g)
        assert e.shape == g.shape, f"{what}[{i}]: shape {g.shape}, torch {e.shape}"
        scale = max(float(np.abs(e).max()), 1e-30)
        rel = float(np.abs(e.astype(np.float64) - g.astype(np.float64)).max()) / scale
        assert rel <= LAYER_FORWARD_MAX_REL, f"{what}[{i}]: max rel diff {rel:.3g} > {LAYER_FORWARD_MAX_REL:g}"


def test_every_entry_has_a_case():
    missing = [op.name for op in OPS if op.name not in CASES]
    assert not missing, f"op-table entries without a test case: {missing}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_torch(name, tmp_path, rng):
    x = rng.standard_normal(SHAPE).astype(np.float32)
    result, expected, got = _run_both(OneOp(CASES[name]), x, tmp_path)
    _assert_close(expected, got, name)
    if name == "flatten":  # torch.flatten starts at dim 0, ops.flatten at 1: the default must be written out
        assert "start_dim=0" in result.source
    if name.startswith(("stochastic_depth", "swin_")):  # torchvision's leaf helpers, not traced into
        assert "support." in result.source


def test_every_case_in_graph_mode(tmp_path, rng):
    from msport._mindspore import ms
    from msport.port import port

    module = OneOp([fn for name in sorted(CASES) for fn in CASES[name]])
    x = rng.standard_normal(SHAPE).astype(np.float32)
    result = port(module, torch.from_numpy(x), check=False, workdir=str(tmp_path))
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        got = result.cell(ms.Tensor(x))
    finally:
        ms.set_context(mode=mode)
    # each torch function on its own copy: F.relu(inplace=True) would change the views other cases return
    expected = [fn(torch.from_numpy(x.copy())) for fn in module.fns]
    _assert_close(expected, got, "graph mode")


class Drop(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = torchvision.ops.StochasticDepth(0.5, "row")

    def forward(self, x):
        return self.drop(x)


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_stochastic_depth_follows_the_cells_training_flag(mode, tmp_path):
    from msport._mindspore import ms
    from msport.port import port

    x = np.ones((64, 3, 2, 2), np.float32)
    result = port(Drop().eval(), torch.from_numpy(x), check=False, workdir=str(tmp_path))
    assert "self.training" in result.source
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    try:
        result.cell.set_train(False)
        assert np.array_equal(result.cell(ms.Tensor(x)).asnumpy(), x)
        result.cell.set_train(True)
        rows = result.cell(ms.Tensor(x)).asnumpy().reshape(64, -1)
    finally:
        ms.set_context(mode=previous)
    kept = rows[:, 0] != 0
    assert 8 < kept.sum() < 56  # each sample dropped with probability 0.5
    assert np.allclose(rows[kept], 2.0) and np.all(rows[~kept] == 0)  # survivors scaled by 1 / (1 - p)


def test_importing_the_op_table_and_specs_leaves_mindspore_out():
    import subprocess
    import sys

    code = ("import sys, msport.port, msport.resolve; "
            "msport.resolve.torch_model('reference_torch.resnet:resnet10_w16'); "
            "print('mindspore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # a torch-only process (train_torch.py with a spec) never starts MindSpore
