"""Porting your own model with msport's factories: a small text classifier, torch and MindSpore.

Run: .venv/bin/python examples/port_your_own_model.py

The MindSpore twin is written once, by hand, with msport.layers: each factory takes torch's own
signature and defaults, so the port reads like the original and keeps torch's attribute names
(weight conversion then needs no name map). The script copies the torch weights across and
prints the largest logit difference, then shows what apply_init reports for a port built from
MindSpore's raw layers.
"""

import numpy as np
import torch

from msport import layers as L
from msport._mindspore import ms, nn, ops
from msport.convert import load_torch_weights_into_ms


class TorchTextClassifier(torch.nn.Module):
    def __init__(self, vocab=500, dim=32, classes=4):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim, padding_idx=0)
        self.conv = torch.nn.Conv1d(dim, dim, 5, padding=2)
        self.norm = torch.nn.LayerNorm(dim)
        self.lstm = torch.nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.drop = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(2 * dim, classes)

    def forward(self, tokens):
        x = self.embed(tokens)                                       # (batch, length, dim)
        x = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        x, _ = self.lstm(self.norm(x))
        return self.head(self.drop(x.mean(dim=1)))


class MSTextClassifier(nn.Cell):
    def __init__(self, vocab=500, dim=32, classes=4):
        super().__init__()
        self.embed = L.embedding(vocab, dim, padding_idx=0)        # N(0, 1), not MindSpore's Normal(0.01)
        self.conv = L.conv1d(dim, dim, 5, padding=2)                # symmetric padding and a bias, as torch
        self.norm = L.layer_norm(dim)                               # eps 1e-5, not MindSpore's 1e-7
        self.lstm = L.lstm(dim, dim, batch_first=True, bidirectional=True)
        self.drop = L.dropout(0.1)                                  # p, not keep_prob
        self.head = L.dense(2 * dim, classes)

    def construct(self, tokens):
        x = self.embed(tokens)
        x = ops.relu(self.conv(x.transpose(0, 2, 1))).transpose(0, 2, 1)
        x, _ = self.lstm(self.norm(x))
        return self.head(self.drop(x.mean(axis=1)))


class RawMSTextClassifier(nn.Cell):
    """The same port written with MindSpore's own defaults, the way ports usually start."""

    def __init__(self, vocab=500, dim=32, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, dim, 5)
        self.norm = nn.LayerNorm((dim,))
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(p=0.1)
        self.head = nn.Dense(2 * dim, classes)


def main():
    torch.manual_seed(0)
    torch_model = TorchTextClassifier().eval()
    ms_model = MSTextClassifier()
    ms_model.set_train(False)
    report = load_torch_weights_into_ms(ms_model, torch_model.state_dict())
    tokens = np.random.default_rng(0).integers(0, 500, size=(3, 17))
    want = torch_model(torch.from_numpy(tokens)).detach().numpy()
    got = ms_model(ms.Tensor(tokens, ms.int32)).asnumpy()
    print(f"{report.lines()[0]}; logits max |torch - MindSpore| = {np.abs(want - got).max():.1e}")
    print(L.apply_init(RawMSTextClassifier(), "torch"))
    return float(np.abs(want - got).max())


if __name__ == "__main__":
    main()
