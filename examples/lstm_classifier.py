"""An LSTM sequence classifier in torch, its MindSpore port, and the port checked by msport.

    python examples/lstm_classifier.py [--trap embedding-init|dropout-keep-prob]

The torch model: ``nn.Embedding`` (torch's default N(0, 1) draw), a bidirectional 2-layer
``nn.LSTM`` (batch_first), mean over time, ``nn.Dropout`` and ``nn.Linear``. The port is written
from msport's factories under the same names; LSTM parameter names, gate order and init are the
same in both frameworks, the Embedding's weight is MindSpore's ``embedding_table``. The script
converts the weights, shows both forward passes agree, and runs ``audit`` (nothing flagged).
``--trap embedding-init`` uses MindSpore's own ``nn.Embedding``, whose Normal(0.01) draw is 100x
smaller than torch's; ``--trap dropout-keep-prob`` writes the keep probability (0.8) as ``p``.
From the command line::

    msport audit --torch examples.lstm_classifier:build_torch --ms examples.lstm_classifier:build_ms \\
                 --example examples.lstm_classifier:example_input
"""

import argparse

import numpy as np
import torch
from torch import nn as tnn

VOCAB, EMBED, HIDDEN, CLASSES, DROPOUT = 50, 16, 24, 3, 0.2
TRAPS = ("embedding-init", "dropout-keep-prob")


class TorchLSTMClassifier(tnn.Module):
    def __init__(self, vocab=VOCAB, embed=EMBED, hidden=HIDDEN, classes=CLASSES, dropout=DROPOUT):
        super().__init__()
        self.embedding = tnn.Embedding(vocab, embed)
        self.lstm = tnn.LSTM(embed, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.dropout = tnn.Dropout(dropout)
        self.fc = tnn.Linear(2 * hidden, classes)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(self.dropout(out.mean(dim=1)))


def build_torch(seed=0):
    torch.manual_seed(seed)
    return TorchLSTMClassifier()


def example_input(batch=4, length=12, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, length)).astype(np.int64)


def _ms_class():
    from msport import layers as L
    from msport._mindspore import nn, ops

    class LSTMClassifier(nn.Cell):
        def __init__(self, vocab=VOCAB, embed=EMBED, hidden=HIDDEN, classes=CLASSES, dropout=DROPOUT, trap=None):
            super().__init__()
            self.embedding = nn.Embedding(vocab, embed) if trap == "embedding-init" else L.embedding(vocab, embed)
            self.lstm = L.lstm(embed, hidden, num_layers=2, batch_first=True, bidirectional=True)
            self.dropout = nn.Dropout(p=1 - dropout) if trap == "dropout-keep-prob" else L.dropout(dropout)
            self.fc = L.dense(2 * hidden, classes)

        def construct(self, tokens):
            out, _ = self.lstm(self.embedding(tokens))
            return self.fc(self.dropout(ops.mean(out, 1)))

    return LSTMClassifier


def build_ms(seed=0, trap=None):
    from msport._mindspore import ms

    if trap is not None and trap not in TRAPS:
        raise ValueError(f"unknown trap {trap!r}: choose one of {', '.join(TRAPS)}")
    ms.set_seed(seed)
    return _ms_class()(trap=trap)


def trapped_pair(trap, seed=0):
    """The torch model and a port with ``trap``, holding torch's converted weights except where the trap is
    the initial draw itself (the raw Embedding keeps MindSpore's Normal(0.01))."""
    from mindspore.common.initializer import Normal, initializer

    from msport.convert import load_torch_weights_into_ms

    reference, ported = build_torch(seed), build_ms(seed, trap=trap)
    load_torch_weights_into_ms(ported, reference.state_dict())
    if trap == "embedding-init":
        table = ported.embedding.embedding_table
        table.set_data(initializer(Normal(0.01), table.shape, table.dtype))
    return reference, ported


def main(argv=None):
    from msport._mindspore import ms
    from msport.diagnose import audit, layer_diff
    from msport.tolerances import MODEL_FORWARD_EVAL_MAX_REL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trap", choices=TRAPS)
    args = parser.parse_args(argv)

    tokens = example_input()
    torch_model, ms_model = trapped_pair(None)
    torch_model.eval()
    ms_model.set_train(False)
    with torch.no_grad():
        want = torch_model(torch.from_numpy(tokens)).numpy()
    got = ms_model(ms.Tensor(tokens)).asnumpy()
    error = float(np.abs(want - got).max() / np.abs(want).max())
    verdict = "agree" if error <= MODEL_FORWARD_EVAL_MAX_REL else "DIFFER"
    print(f"converted weights, forward outputs: max|torch - ms| / max|torch| = {error:.2e} "
          f"(tolerance MODEL_FORWARD_EVAL_MAX_REL {MODEL_FORWARD_EVAL_MAX_REL:g}): {verdict}")

    result = audit(build_torch(), build_ms(trap=args.trap), inputs=tokens)
    print(f"audit ({'trap ' + args.trap if args.trap else 'correct port'}): {len(result.flagged)} flagged")
    for record in result.flagged[:6]:
        print(f"  {record['check']:<10} {record['name']:<24} {record['reason']}")
    if args.trap:
        train = args.trap == "dropout-keep-prob"  # dropout acts only in train mode
        diff = layer_diff(*trapped_pair(args.trap), tokens, train_mode=train)
        print(f"layer-diff ({'train' if train else 'eval'} mode): first_divergence = "
              f"{diff.summary['first_divergence']}")
    return 1 if verdict != "agree" else 0


if __name__ == "__main__":
    raise SystemExit(main())
