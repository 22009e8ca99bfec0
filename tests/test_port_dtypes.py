"""Plain tensors of a port (parameters and buffers no registry layer holds) keep torch's dtype: a
bfloat16 positional table or float16 scale stays bfloat16 / float16 in the cell and in both
checkpoint files the port writes, and ``create(checkpoint)`` gives torch's output from them."""

import numpy as np
import torch

from msport.port import port


class Mixed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.pos = torch.nn.Parameter(torch.randn(4, 6, generator=g).to(torch.bfloat16))
        self.scale = torch.nn.Parameter(torch.randn(6, generator=g).to(torch.float16))
        self.register_buffer("bias", torch.randn(4, 6, generator=g).to(torch.bfloat16))
        self.register_buffer("norm", torch.tensor(2.5, dtype=torch.bfloat16))  # 0-d (recurrent_gemma's normalizer)

    def forward(self, x):
        return x + self.pos.float() * self.bias.float() * self.norm.float() + self.scale.float()


def test_bfloat16_and_float16_plain_tensors_stay_as_they_are(tmp_path):
    from msport._mindspore import ms
    from msport.checkpoints import open_checkpoint
    from msport.port.build import import_source

    model = Mixed()
    x = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(1))
    result = port(model, x, name="mixed", workdir=str(tmp_path / "work"))
    assert result.report["within_tolerance"]
    want = {"pos": "bfloat16", "scale": "float16", "bias": "bfloat16", "norm": "bfloat16"}
    assert {p.name: str(p.dtype).lower() for p in result.cell.get_parameters()} == want
    result.save(str(tmp_path / "out"))
    for name in ("mixed.ckpt", "mixed_init.ckpt"):
        assert {e.name: e.dtype for e in open_checkpoint(str(tmp_path / "out" / name)).entries.values()} == want
    cell = import_source(str(tmp_path / "out" / "mixed_ms.py")).create(str(tmp_path / "out" / "mixed.ckpt"))
    with torch.no_grad():
        np.testing.assert_array_equal(cell(ms.Tensor(x.numpy())).asnumpy(), model(x).numpy())
