"""What the two trainers share: configuration, learning-rate schedule, run folders, metrics.

The framework halves live in :mod:`msport.training.torch_side` and
:mod:`msport.training.ms_side`; ``train_torch.py`` and ``train_ms.py`` read
straight down through the same sections calling one half each.
"""
