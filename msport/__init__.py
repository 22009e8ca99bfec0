"""msport: find and fix the accuracy gap of a PyTorch model ported to MindSpore.

Importing :mod:`msport` is cheap and framework-free; the MindSpore side is
imported by the modules that need it (see :mod:`msport._mindspore`), so a
torch-only process such as ``train_torch.py`` never loads MindSpore nor
inherits its CPU settings.
"""

__version__ = "0.1.0"
