"""Reproduce a port's accuracy gap over several seeds and say which gaps are real.

The MindSpore accuracy-debugging guide's CIFAR-10 case study compared one run per
arm (PyTorch 92.58%, MindSpore with MindSpore 1.x defaults 91.96%, MindSpore with
PyTorch defaults 92.98%), but
CIFAR ResNets vary by 0.1-0.5 points from seed to seed, so one run cannot call
a 0.4-point gap. ``msport reproduce`` trains each arm for N seeds through the
real trainers and reports means, spreads and confidence intervals.

* :mod:`~msport.reproduce.config`: the reproduce config, its arms (the case study's four, or a config's
  own: a trainer and the TrainConfig keys it sets, optionally starting from another arm's initial
  weights), the plan of runs and what each run folder holds (finished, interrupted, new).
* :mod:`~msport.reproduce.launch`: how runs start: several at once, several ranks each, shards
  across invocations; each run's command, environment and device slot.
* :mod:`~msport.reproduce.supervise`: one trainer process per run, supervised, skipping finished
  runs and resuming interrupted ones.
* :mod:`~msport.reproduce.stats`: mean, standard deviation, Welch's interval for
  a difference of means, the paired interval of per-seed differences, seeds needed.
* :mod:`~msport.reproduce.report`: results.json, results.md, val_acc.png and the
  console summary.

Importing this package starts neither framework: the trainers run in their own processes.
"""
