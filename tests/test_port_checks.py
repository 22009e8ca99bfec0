"""A check the port drops takes its inputs with it: Hugging Face's sequence classifiers assert
``torch.unique_consecutive(eos_mask.sum(1)).numel() == 1`` (every row has as many end tokens); the
unique op is data-dependent and has no GRAPH_MODE twin, but only the assert reads it, and GRAPH_MODE
cannot raise, so the port computes neither and ports the rest."""

import numpy as np
import torch

from msport.port import port


class Checked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, ids, x):
        torch._check(torch.unique_consecutive((ids == 2).sum(1)).numel() == 1, lambda: "uneven end tokens")
        return self.fc(x).masked_fill(ids[:, :3] > 1, 0.5), ids.masked_fill(ids > 2, 0)


def test_a_value_only_a_dropped_check_reads_is_not_ported(tmp_path):
    from msport._mindspore import ms

    ids = torch.tensor([[2, 1, 3, 0, 2, 1], [0, 2, 2, 3, 1, 1]])
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(0))
    program = torch.export.export(Checked(), (ids, x), strict=False)
    assert any("unique_consecutive" in str(n.target) for n in program.graph.nodes)
    result = port(Checked(), (ids, x), name="checked", workdir=str(tmp_path))
    assert result.report["within_tolerance"] and "unique" not in result.source
    out = result.cell(ms.Tensor(ids.numpy()), ms.Tensor(x.numpy()))
    assert np.array_equal(out[1].asnumpy(), Checked()(ids, x)[1].numpy())  # an integer masked_fill, on the CPU
