#!/bin/bash
# The seed-scale reproduction (3 arms x 6 seeds) on a SLURM cluster: a job array of 6 tasks, one
# node each, all writing into one shared output folder. Task I trains the runs at plan positions
# I, I+6, I+12 (msport reproduce --shard I/6), several at once on the node's GPUs (--parallel-runs);
# each task then writes the report of every run finished so far and lists the rest, so the last
# task to end leaves the complete results.md. Resubmitting the same array skips finished runs and
# resumes interrupted ones.
#
#   sbatch examples/slurm_reproduce.sh
#
# Adjust the partition, the GPU count and the environment to your cluster; set data_dir in the config,
# and fetch the data once before submitting (six tasks downloading into one folder would collide).
#SBATCH --job-name=msport-reproduce
#SBATCH --array=0-5
#SBATCH --nodes=1
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=16
#SBATCH --time=08:00:00
#SBATCH --output=slurm-%A_%a.out

set -euo pipefail
cd "${SLURM_SUBMIT_DIR}"
source .venv/bin/activate   # msport's environment: `make setup` made it

# 4 GPUs per node: 4 runs at once, one GPU each. For data parallel runs instead, e.g. 2 runs of
# 2 ranks each: --parallel-runs 2 --nproc-per-run 2 (torchrun / msrun start the ranks).
msport reproduce --config configs/reproduce_cifar10_resnet50.yaml \
    --output-dir runs/reproduce_cifar10_resnet50 \
    --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" \
    --parallel-runs 4
