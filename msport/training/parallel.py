"""Data parallel training as the launchers start it: who this process is, and its share of a batch.

``torchrun --nproc-per-node N train_torch.py ...`` and ``msrun --worker_num N
--local_worker_num N train_ms.py ...`` start N copies of a trainer; each side
module joins its framework's process group and describes itself as a
:class:`World`. The rest of the trainer reads only that.

``--batch-size`` stays the global batch. Every rank builds the same planned
batch of the same ``(seed, epoch)`` plan and keeps its contiguous share of it
(:func:`shard_bounds`), so the ranks' shards put back together in rank order
are exactly the batch a single process trains on. Each rank's loss is its
samples' loss summed and divided by the *global* batch's size, times the
world size; the launchers' gradient averaging then gives the single-process
mean gradient even for an uneven last batch.
"""

import os
import socket
import sys
from dataclasses import dataclass

from msport.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        """Rank 0 alone writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self):
        return self.size > 1


SINGLE = World()


def torchrun_world():
    """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK); SINGLE without it."""
    if "WORLD_SIZE" not in os.environ:
        return SINGLE
    return World(int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))


def msrun_world():
    """The world msrun describes (MS_ROLE, RANK_ID, RANK_SIZE, DEVICE_ID); SINGLE without it."""
    if os.environ.get("MS_ROLE") != "MS_WORKER":
        return SINGLE
    size = int(os.environ.get("RANK_SIZE", os.environ.get("MS_WORKER_NUM", 1)))
    return World(int(os.environ.get("RANK_ID", 0)), size, int(os.environ.get("DEVICE_ID", 0)))


def check_batch_size(batch_size, world):
    """Each rank trains ``batch_size / world`` samples a step; a size the world does not divide is an error."""
    if batch_size % world.size:
        raise UserError(f"--batch-size {batch_size} is the global batch and {world.size} ranks do not divide it; "
                        f"use a multiple of {world.size}")
    return batch_size // world.size



# -- starting the launchers (msport reproduce --nproc-per-run, the tests, the benchmark) ----------

def launch_command(script, nproc, *, framework, port, log_dir):
    """argv that starts ``script`` on ``nproc`` ranks of this node through the framework's own launcher.

    torch: ``torchrun --nproc-per-node N --master-port P script``; MindSpore: ``msrun --worker_num N
    --local_worker_num N --master_port P --log_dir D --join True script``, whose ranks' output goes to
    ``D/worker_N.log``. Both run as ``python -m`` of this interpreter; msrun starts its workers with
    the ``python`` on PATH, so run it with :func:`launcher_env`.
    """
    if framework == "torch":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                "--master-addr", "127.0.0.1", "--master-port", str(port), script]
    return [sys.executable, "-m", "mindspore.parallel.cluster.run", "--worker_num", str(nproc),
            "--local_worker_num", str(nproc), "--master_port", str(port), "--log_dir", log_dir,
            "--join", "True", script]


def launcher_env(env=None):
    """``env`` (default: this process's) with this interpreter's folder first on PATH, for msrun's workers."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def free_port():
    """A TCP port nothing listens on now (the launchers' rendezvous on one node)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
