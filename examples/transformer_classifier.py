"""A Transformer-encoder text classifier in torch, its MindSpore port, and the port checked by msport.

    python examples/transformer_classifier.py [--trap layernorm-eps|embedding-init|dropout-keep-prob]

The torch model is built from torch's own ``nn.Embedding``, ``nn.TransformerEncoderLayer``
(self-attention, feed-forward, two LayerNorms, three Dropouts inside) and ``nn.Linear``. The port
re-implements the encoder layer from msport's factories (which take torch's signatures and
defaults) under torch's parameter names, so ``layers.0.self_attn.in_proj_weight`` or
``layers.0.norm1.weight`` convert by the registry's rules. The script converts the torch weights,
shows both forward passes agree, and runs ``audit``, which flags nothing on the correct port.
With ``--trap`` it builds the port a porter might have written instead, and shows how ``audit``
and ``layer-diff`` name the mistake. The same from the command line::

    msport audit --torch examples.transformer_classifier:build_torch \\
                 --ms examples.transformer_classifier:build_ms \\
                 --example examples.transformer_classifier:example_input

Like many text models, the embedding is drawn N(0, 0.02^2) rather than torch's default N(0, 1): the
activations entering the first LayerNorm are then small, which is where MindSpore's LayerNorm
epsilon of 1e-7 (torch's is 1e-5) changes the output.
"""

import argparse

import numpy as np
import torch
from torch import nn as tnn

VOCAB, D_MODEL, HEADS, FEEDFORWARD, LAYERS, CLASSES, DROPOUT = 100, 32, 4, 64, 2, 4, 0.1
EMBEDDING_STD = 0.02
TRAPS = ("layernorm-eps", "embedding-init", "dropout-keep-prob")


# --- torch: the model as its author wrote it ------------------------------------------------------

class TorchTextClassifier(tnn.Module):
    def __init__(self, vocab=VOCAB, d_model=D_MODEL, heads=HEADS, feedforward=FEEDFORWARD, layers=LAYERS,
                 classes=CLASSES, dropout=DROPOUT):
        super().__init__()
        self.embedding = tnn.Embedding(vocab, d_model)
        tnn.init.normal_(self.embedding.weight, std=EMBEDDING_STD)
        self.layers = tnn.ModuleList([
            tnn.TransformerEncoderLayer(d_model, heads, feedforward, dropout, batch_first=True)
            for _ in range(layers)])
        self.dropout = tnn.Dropout(dropout)
        self.classifier = tnn.Linear(d_model, classes)

    def forward(self, tokens):
        x = self.embedding(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.dropout(x.mean(dim=1)))


def build_torch(seed=0):
    torch.manual_seed(seed)
    return TorchTextClassifier()


def example_input(batch=4, length=16, seed=0):
    """Token ids (int64), as the model takes them."""
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, length)).astype(np.int64)


# --- MindSpore: the port, from msport's factories ----------------------------------------------------

def ms_encoder_layer_class():
    """The port of ``torch.nn.TransformerEncoderLayer`` (post-norm, batch_first) under torch's names, from
    msport's factories; ``activation`` relu or gelu (torch's exact GELU), ``trap`` as in :data:`TRAPS`."""
    from msport import layers as L
    from msport._mindspore import nn

    class EncoderLayer(nn.Cell):
        """torch.nn.TransformerEncoderLayer (post-norm, batch_first) under torch's names."""

        def __init__(self, d_model, heads, feedforward, dropout, trap=None, activation="relu"):
            super().__init__()
            self.self_attn = L.multihead_attention(d_model, heads, dropout=dropout, batch_first=True)
            self.linear1 = L.dense(d_model, feedforward)
            self.dropout = L.dropout(dropout)
            self.linear2 = L.dense(feedforward, d_model)
            if trap == "layernorm-eps":  # MindSpore's own LayerNorm: epsilon 1e-7
                self.norm1 = nn.LayerNorm((d_model,))
                self.norm2 = nn.LayerNorm((d_model,))
            else:
                self.norm1 = L.layer_norm(d_model)
                self.norm2 = L.layer_norm(d_model)
            self.dropout1 = L.dropout(dropout)
            self.dropout2 = L.dropout(dropout)
            self.activation = L.gelu() if activation == "gelu" else nn.ReLU()

        def construct(self, x):
            attended = self.self_attn(x, x, x, need_weights=False)[0]
            x = self.norm1(x + self.dropout1(attended))
            fed = self.linear2(self.dropout(self.activation(self.linear1(x))))
            return self.norm2(x + self.dropout2(fed))

    return EncoderLayer


def _ms_classes():
    from mindspore.common.initializer import Normal, initializer

    from msport import layers as L
    from msport._mindspore import nn, ops

    EncoderLayer = ms_encoder_layer_class()

    class TextClassifier(nn.Cell):
        def __init__(self, vocab=VOCAB, d_model=D_MODEL, heads=HEADS, feedforward=FEEDFORWARD, layers=LAYERS,
                     classes=CLASSES, dropout=DROPOUT, trap=None):
            super().__init__()
            if trap == "embedding-init":  # MindSpore's own Embedding, left at its Normal(0.01) draw
                self.embedding = nn.Embedding(vocab, d_model)
            else:
                self.embedding = L.embedding(vocab, d_model)
                table = self.embedding.embedding_table
                table.set_data(initializer(Normal(EMBEDDING_STD), table.shape, table.dtype))
            self.layers = nn.CellList([EncoderLayer(d_model, heads, feedforward, dropout, trap)
                                       for _ in range(layers)])
            # the trap: keep_prob's number (0.9) written as p
            self.dropout = nn.Dropout(p=1 - dropout) if trap == "dropout-keep-prob" else L.dropout(dropout)
            self.classifier = L.dense(d_model, classes)

        def construct(self, tokens):
            x = self.embedding(tokens)
            for layer in self.layers:
                x = layer(x)
            return self.classifier(self.dropout(ops.mean(x, 1)))

    return TextClassifier


def build_ms(seed=0, trap=None):
    from msport._mindspore import ms

    if trap is not None and trap not in TRAPS:
        raise ValueError(f"unknown trap {trap!r}: choose one of {', '.join(TRAPS)}")
    ms.set_seed(seed)
    return _ms_classes()(trap=trap)


def port_layernorm_eps():
    """The port with MindSpore's own nn.LayerNorm (epsilon 1e-7), for ``--ms``."""
    return build_ms(trap="layernorm-eps")


def port_embedding_init():
    """The port with MindSpore's own nn.Embedding (Normal(0.01)), for ``--ms``."""
    return build_ms(trap="embedding-init")


def port_dropout_keep_prob():
    """The port with the head's Dropout given keep_prob's number as p, for ``--ms``."""
    return build_ms(trap="dropout-keep-prob")


# --- the training recipe, for ``msport audit --recipe`` ---------------------------------------------

def _decay_groups(named, lr, weight_decay):
    """HF-style groups: no decay on biases and norm parameters (torch names weight/bias, MindSpore gamma/beta)."""
    no_decay = ("bias", "norm", "gamma", "beta")
    decay = [p for n, p in named if not any(k in n for k in no_decay)]
    rest = [p for n, p in named if any(k in n for k in no_decay)]
    return [{"params": decay, "lr": lr, "weight_decay": weight_decay}, {"params": rest, "lr": lr, "weight_decay": 0.0}]


def _torch_recipe(torch_model, lr=1e-3, weight_decay=0.01):
    opt = torch.optim.AdamW(_decay_groups(list(torch_model.named_parameters()), lr, weight_decay))
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=45)
    return {"torch_optimizer": opt, "torch_scheduler": torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], [5]),
            "torch_loss_fn": tnn.CrossEntropyLoss(label_smoothing=0.1)}


def recipe(torch_model, ms_model):
    """AdamW, linear warm-up then cosine, label smoothing 0.1, ported with msport: audit flags nothing."""
    from msport import optim
    from msport.layers import build
    from msport.optim import lr_scheduler

    opt = optim.AdamW(_decay_groups([(p.name, p) for p in ms_model.trainable_params()], 1e-3, 0.01))
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=45)
    return dict(_torch_recipe(torch_model), optimizer=opt, lr_schedule=lr_scheduler.SequentialLR(opt, [warmup, cosine], [5]),
                loss_fn=build("CrossEntropyLoss", label_smoothing=0.1))


def naive_recipe(torch_model, ms_model):
    """The same recipe as MindSpore's docs write it: nn.AdamWeightDecay, a cosine list without warm-up,
    nn.CrossEntropyLoss() without label smoothing. audit names each difference."""
    from msport._mindspore import nn

    lrs = nn.cosine_decay_lr(0.0, 1e-3, 50, 1, 50)
    groups = _decay_groups([(p.name, p) for p in ms_model.trainable_params()], 1e-3, 0.01)
    for group in groups:
        del group["lr"]  # a group's lr would replace the list
    opt = nn.AdamWeightDecay(groups, learning_rate=lrs)
    return dict(_torch_recipe(torch_model), optimizer=opt, loss_fn=nn.CrossEntropyLoss())


def batches(count=10, batch=8, length=16, seed=0):
    """Token batches for ``msport parity-train --data``: (int64 ids, int64 labels) numpy pairs."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, VOCAB, (batch, length)).astype(np.int64), rng.integers(0, CLASSES, batch).astype(np.int64))
            for _ in range(count)]


def adam_weight_decay(ms_model, weight_decay=0.01):
    """MindSpore's own AdamW look-alike, for ``parity-train --ms-optimizer``: no bias correction, eps 1e-6."""
    from msport._mindspore import nn

    return nn.AdamWeightDecay([{"params": ms_model.trainable_params(), "weight_decay": weight_decay}],
                              learning_rate=1e-3)


# --- the check ------------------------------------------------------------------------------------

def main(argv=None):
    from msport._mindspore import ms
    from msport.convert import load_torch_weights_into_ms
    from msport.diagnose import audit, layer_diff
    from msport.tolerances import MODEL_FORWARD_EVAL_MAX_REL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trap", choices=TRAPS)
    parser.add_argument("--length", type=int, default=16, help="sequence length (default %(default)s)")
    args = parser.parse_args(argv)

    tokens = example_input(length=args.length)
    torch_model = build_torch().eval()
    ms_model = build_ms()
    load_torch_weights_into_ms(ms_model, torch_model.state_dict())
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
        reference, ported = trapped_pair(args.trap)
        train = args.trap == "dropout-keep-prob"  # dropout acts only in train mode
        diff = layer_diff(reference, ported, tokens, train_mode=train)
        print(f"layer-diff ({'train' if train else 'eval'} mode): first_divergence = "
              f"{diff.summary['first_divergence']}")
    return 1 if verdict != "agree" else 0


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


if __name__ == "__main__":
    raise SystemExit(main())
