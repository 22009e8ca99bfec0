"""Tolerances shared by the tests and the tools, each named for the metric it bounds.

``max_rel``: max|a - b| / max|a| over one tensor (scale-free).
"""

#: One registered layer's forward output, MindSpore against torch with the same weights, float32 on the CPU.
#: Each output element is a sum of at most a few hundred products here, so rounding stays within
#: ~1e-6 of the output's scale (measured: <= 4e-7 over tests/test_registry.py's rows); 1e-5 leaves 10x.
LAYER_FORWARD_MAX_REL = 1e-5

#: Significance level of a two-sample Kolmogorov-Smirnov test of an initial draw against torch's own.
INIT_KS_ALPHA = 1e-3

#: A ported model's logits against torch's, same weights, eval mode, float32 on the CPU: max |a - b|.
#: The goal ``msport port`` is held to (issue 13); the torchvision table in the README is measured by it.
PORT_LOGITS_MAX_ABS = 1e-4
