"""A ported model trains as its torch original: the same loss after a step from the same weights.

Tiny configs (hidden 32, 2 layers) keep each step CPU-cheap. The losses of the two frameworks must agree
to :data:`msport.tolerances.PARITY_LOSS_REL`, the tolerance ``msport parity-train`` holds a step to.
"""

import numpy as np
import pytest
import torch

from msport.port import port
from msport.tolerances import PARITY_LOSS_REL
from msport.training.step_parity import output_step_parity, train_step_parity

transformers = pytest.importorskip("transformers")


def _lm_losses(vocab):
    """Next-token cross-entropy on each side: logits (B, T, V) against the ids shifted by one."""
    from msport._mindspore import ops

    ids = np.random.default_rng(3).integers(0, vocab, (2, 8))
    target = torch.from_numpy(ids[:, 1:])

    def torch_loss(out):
        return torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, vocab), target.reshape(-1))

    def ms_loss(out):
        from msport._mindspore import ms

        logits = out["logits"][:, :-1]
        return ops.cross_entropy(ops.reshape(logits, (-1, vocab)), ms.Tensor(ids[:, 1:].reshape(-1)))

    return torch.from_numpy(ids), torch_loss, ms_loss


def _optimizer():
    """AdamW when msport.optim has it (torch's semantics), else plain SGD."""
    try:
        from msport.optim import AdamW  # noqa: F401
    except ImportError:
        return "sgd"
    return "adamw"


def _close(losses):
    for torch_loss, ms_loss in losses:
        assert abs(torch_loss - ms_loss) / abs(torch_loss) <= PARITY_LOSS_REL, losses


def test_ported_tiny_llama_takes_the_same_training_step(tmp_path):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=1, vocab_size=128, intermediate_size=64)
    model = transformers.LlamaForCausalLM(config)
    ids, torch_loss, ms_loss = _lm_losses(128)
    result = port(model, ((), {"input_ids": ids}), name="llama", check=False, workdir=str(tmp_path))
    _close(output_step_parity(model, result.cell, (), {"input_ids": ids}, torch_loss, ms_loss, steps=2,
                              lr=1e-2, optimizer=_optimizer()))


def test_ported_vit_takes_the_same_training_step(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, num_classes=10)
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    result = port(model, torch.from_numpy(x), name="vit", check=False, workdir=str(tmp_path))
    step = train_step_parity(model, result.cell, x, np.array([0, 3, 7, 3]))
    assert step["loss_rel_diff"] <= PARITY_LOSS_REL, step


def test_gpt2_tied_embedding_and_head_stay_one_tensor_through_training(tmp_path):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=128,
                                                                 resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    ids, torch_loss, ms_loss = _lm_losses(128)
    result = port(model, ((), {"input_ids": ids}), name="gpt2", check=False, workdir=str(tmp_path))
    cell = result.cell
    losses = output_step_parity(model, cell, (), {"input_ids": ids}, torch_loss, ms_loss, steps=5, lr=0.1)
    _close(losses)
    assert losses[-1][1] < losses[0][1]  # it learned
    assert cell.lm_head.weight is cell.transformer.wte.embedding_table
    assert model.lm_head.weight is model.transformer.wte.weight
    trained = cell.transformer.wte.embedding_table.asnumpy()
    assert np.abs(trained - model.transformer.wte.weight.detach().numpy()).max() <= 1e-4
