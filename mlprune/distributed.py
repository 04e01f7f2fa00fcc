"""Training on several processes under `torchrun` (DistributedDataParallel).

Every rank loads the same start model and draws the same seeded batch order; each trains on
its share of every global batch (`batch_size` stays the global batch, as in one process), and
DDP averages the gradients, so the ranks' weights stay equal. Rank 0 alone shows progress and
writes resume states and the stage's outputs: `train` returns on rank 0 only, once every rank
has finished.

torchrun tells a process its place through the environment (WORLD_SIZE, RANK, LOCAL_RANK);
one started without it is a world of one, and nothing here changes what it computes.
"""

from __future__ import annotations

import functools
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from mlprune.errors import ConfigError


def launched_processes() -> int:
    """How many processes torchrun started for this stage (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start(requested: bool, device: torch.device, trains: bool) -> torch.device:
    """Join torchrun's process group when this stage trains and `common.distributed` asks;
    returns the device this rank trains on (its own GPU on CUDA)."""
    processes = launched_processes()
    if processes == 1 or dist.is_initialized():
        return device
    if not trains:
        raise ConfigError(f"torchrun started {processes} processes for a stage that does not train; "
                          "run it with plain `python` (only the training stages are distributed)")
    if not requested:
        raise ConfigError(f"common.distributed: false, but torchrun started {processes} processes, which would "
                          "each train alone and write the same files; set it to true")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    if not is_main():
        _quiet()
    return device


def _quiet() -> None:
    """No progress bars and no messages (stdout) from ranks other than 0; their errors (stderr) still show."""
    tqdm.__init__ = functools.partialmethod(tqdm.__init__, disable=True)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def local_batch_size(batch_size: int, key: str) -> int:
    """This rank's share of a global batch; `key` names `batch_size` in params.yaml."""
    ranks = world_size()
    if batch_size % ranks:
        raise ConfigError(f"{key}.batch_size: {batch_size} does not split evenly over the {ranks} torchrun "
                          f"processes; use a multiple of {ranks}")
    return batch_size // ranks


def rank_share(batch: torch.Tensor) -> torch.Tensor:
    """This rank's indices of a global batch: every world_size-th one from its rank on, the
    split DistributedSampler(shuffle=False) makes of an already seeded order."""
    return batch[rank()::world_size()]


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` wrapped so that backward averages the gradients over the ranks (itself alone
    in a world of one). Rank 0's weights and buffers are broadcast at the start."""
    if not dist.is_initialized():
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the ranks (the per-epoch loss a history row reports)."""
    if not dist.is_initialized():
        return values
    names = list(values)  # the same order on every rank: the same model code made them
    summed = torch.tensor([values[name] for name in names], dtype=torch.float64)
    dist.all_reduce(summed)
    return {name: float(total) / world_size() for name, total in zip(names, summed.tolist(), strict=True)}


def finish_training() -> None:
    """Wait for every rank to finish training; then ranks other than 0 exit, so only rank 0
    goes on to write the stage's outputs."""
    if not dist.is_initialized():
        return
    dist.barrier()
    main = is_main()
    dist.destroy_process_group()
    if not main:
        sys.exit(0)
