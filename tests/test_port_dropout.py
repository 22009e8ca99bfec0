"""A ported model keeps torch's dropout: the export runs in eval mode, where dropout is the identity and
the decomposition would drop it, so a port trained from scratch would train without it. The port
has it as the registry's Dropout layer (an ``nn.Dropout`` module) or as a dropout op that follows the
cell's training flag (``F.dropout``): eval matches torch exactly, ``set_train(True)`` drops out."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from msport.port import port


class Dropping(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 64)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return F.dropout(self.drop(self.fc(x)), 0.25, training=self.training) + 1.0


@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    torch.manual_seed(0)
    model = Dropping().eval()
    x = torch.randn(32, 64)
    return model, x, port(model, x, name="dropping", workdir=str(tmp_path_factory.mktemp("drop")))


def test_dropout_is_a_layer_and_eval_matches_torch(ported):
    from msport._mindspore import ms, nn

    model, x, result = ported
    assert result.report["within_tolerance"]
    assert isinstance(result.cell.drop, nn.Dropout) and abs(float(result.cell.drop.p) - 0.5) < 1e-6
    assert "support.dropout(" in result.source and "0.25" in result.source
    assert not any("dropout" in c for c in result.changes)
    result.cell.set_train(False)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(result.cell(ms.Tensor(x.numpy())).asnumpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("graph", [False, True])
def test_training_drops_out_at_torch_rates(ported, graph):
    from msport._mindspore import ms

    model, x, result = ported
    with torch.no_grad():
        pre = model.fc(x).numpy()  # before both dropouts
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    result.cell.set_train(True)
    try:
        got = result.cell(ms.Tensor(x.numpy())).asnumpy() - 1.0
    finally:
        result.cell.set_train(False)
        ms.set_context(mode=previous)
    kept = got != 0
    keep = 0.5 * 0.75  # both dropouts keep an element
    assert abs(kept.mean() - keep) < 0.03, kept.mean()
    np.testing.assert_allclose(got[kept], pre[kept] / keep, rtol=1e-4, atol=1e-5)  # survivors scaled as torch's
