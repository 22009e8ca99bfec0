"""A small Transformer encoder classifier of scikit-learn's digits read as 64 pixel tokens, three ways.

The models of ``configs/reproduce_digits_transformer.yaml`` (``msport reproduce``'s second preset):

``build_torch``
    the reference, from torch's own ``nn.Embedding`` (tokens and positions), ``nn.TransformerEncoderLayer``
    (post-norm, exact GELU), ``nn.LayerNorm`` and ``nn.Linear``, at torch's defaults;
``build_ms_naive``
    the port a careful person writes from MindSpore's documentation: ``nn.Embedding``, ``nn.MultiheadAttention``,
    ``nn.Dense``, ``nn.LayerNorm`` and ``nn.GELU`` at *their* defaults (Embedding Normal(0.01) where torch draws
    N(0, 1); LayerNorm epsilon 1e-7 where torch's is 1e-5; GELU's tanh approximation where torch's is exact);
``build_ms``
    the port built with msport: the registry's factories (torch's signatures, defaults and initialisers) under
    torch's parameter names, so a torch checkpoint of :func:`build_torch` converts into it by the registry's rules.

Each token is a pixel value 0..16 (the data source ``digits_tokens``); a learned position embedding tells the
encoder where each pixel sits. Each builder takes ``num_classes`` as the trainers pass it.
"""

import numpy as np
import torch
from torch import nn as tnn

VOCAB, LENGTH = 17, 64          # pixel values 0..16 of the 8x8 digits, row by row
D_MODEL, HEADS, FEEDFORWARD, LAYERS, DROPOUT = 32, 4, 64, 2, 0.1


# --- torch: the reference -------------------------------------------------------------------------

class TorchDigitsTransformer(tnn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.token = tnn.Embedding(VOCAB, D_MODEL)
        self.position = tnn.Embedding(LENGTH, D_MODEL)
        self.layers = tnn.ModuleList([tnn.TransformerEncoderLayer(D_MODEL, HEADS, FEEDFORWARD, DROPOUT,
                                                                  activation="gelu", batch_first=True)
                                      for _ in range(LAYERS)])
        self.norm = tnn.LayerNorm(D_MODEL)
        self.classifier = tnn.Linear(D_MODEL, num_classes)
        self.register_buffer("positions", torch.arange(LENGTH), persistent=False)

    def forward(self, tokens):
        x = self.token(tokens) + self.position(self.positions[:tokens.shape[1]])
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.norm(x).mean(dim=1))


def build_torch(num_classes=10):
    return TorchDigitsTransformer(num_classes)


# --- MindSpore: the port from MindSpore's docs, and the port built with msport ----------------------

def _positions():
    from msport._mindspore import ms

    return ms.Tensor(np.arange(LENGTH), ms.int32)


def build_ms_naive(num_classes=10):
    """MindSpore's own layers at MindSpore's defaults: what its API pages lead a porter to write."""
    from msport._mindspore import nn, ops

    class NaiveEncoderLayer(nn.Cell):
        def __init__(self):
            super().__init__()
            self.self_attn = nn.MultiheadAttention(D_MODEL, HEADS, dropout=DROPOUT, batch_first=True)
            self.linear1 = nn.Dense(D_MODEL, FEEDFORWARD)
            self.linear2 = nn.Dense(FEEDFORWARD, D_MODEL)
            self.norm1 = nn.LayerNorm((D_MODEL,))
            self.norm2 = nn.LayerNorm((D_MODEL,))
            self.activation = nn.GELU()
            self.dropout, self.dropout1, self.dropout2 = (nn.Dropout(p=DROPOUT) for _ in range(3))

        def construct(self, x):
            attended = self.self_attn(x, x, x, need_weights=False)[0]
            x = self.norm1(x + self.dropout1(attended))
            fed = self.linear2(self.dropout(self.activation(self.linear1(x))))
            return self.norm2(x + self.dropout2(fed))

    class NaiveDigitsTransformer(nn.Cell):
        def __init__(self):
            super().__init__()
            self.token = nn.Embedding(VOCAB, D_MODEL)
            self.position = nn.Embedding(LENGTH, D_MODEL)
            self.layers = nn.CellList([NaiveEncoderLayer() for _ in range(LAYERS)])
            self.norm = nn.LayerNorm((D_MODEL,))
            self.classifier = nn.Dense(D_MODEL, num_classes)
            self.positions = _positions()

        def construct(self, tokens):
            x = self.token(tokens) + self.position(self.positions[:tokens.shape[1]])
            for layer in self.layers:
                x = layer(x)
            return self.classifier(ops.mean(self.norm(x), 1))

    return NaiveDigitsTransformer()


def build_ms(num_classes=10):
    """The port from msport's factories: torch's defaults and initialisers, torch's parameter names."""
    from msport import layers as L
    from msport._mindspore import nn, ops

    from examples.transformer_classifier import ms_encoder_layer_class

    EncoderLayer = ms_encoder_layer_class()

    class DigitsTransformer(nn.Cell):
        def __init__(self):
            super().__init__()
            self.token = L.embedding(VOCAB, D_MODEL)
            self.position = L.embedding(LENGTH, D_MODEL)
            self.layers = nn.CellList([EncoderLayer(D_MODEL, HEADS, FEEDFORWARD, DROPOUT, activation="gelu")
                                       for _ in range(LAYERS)])
            self.norm = L.layer_norm(D_MODEL)
            self.classifier = L.dense(D_MODEL, num_classes)
            self.positions = _positions()

        def construct(self, tokens):
            x = self.token(tokens) + self.position(self.positions[:tokens.shape[1]])
            for layer in self.layers:
                x = layer(x)
            return self.classifier(ops.mean(self.norm(x), 1))

    return DigitsTransformer()
