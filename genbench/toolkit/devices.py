"""How much work to hand a device at once: evaluation batches sized from free CUDA memory, and CPU threads
for worker processes.

On the CPU every size stays what the caller asked for, so CPU results do not change. On CUDA a batch that
is too small leaves the GPU waiting on Python between kernel launches; one that is too large runs out of
memory. The free memory (``torch.cuda.mem_get_info``) divided by a caller's estimate of the bytes one item
needs gives a batch that keeps the GPU busy with room to spare.
"""

from __future__ import annotations

import os

import torch

#: Share of the free device memory that one evaluation batch may plan to use; estimates are rough, and the
#: caching allocator, cuDNN workspaces and the model itself need the rest.
EVAL_MEMORY_FRACTION = 0.4
#: No batch beyond this many items: past a few thousand images a GPU is busy anyway, and batches stay short
#: enough to show progress.
MAX_EVAL_BATCH = 4096


def free_device_memory(device: torch.device) -> int:
    """Bytes free on a CUDA device (the driver's count, which includes what other processes use)."""
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def eval_batch_size(device: torch.device, per_item_bytes: int, default: int) -> int:
    """``default`` on the CPU; on CUDA as many items as fit in EVAL_MEMORY_FRACTION of the free memory.

    The CUDA size is at least ``default`` when memory allows it and never more than MAX_EVAL_BATCH; with
    little memory free it may be smaller than ``default``, down to one item, rather than run out of memory.
    """
    if device.type != "cuda":
        return default
    fitting = int(EVAL_MEMORY_FRACTION * free_device_memory(device)) // max(per_item_bytes, 1)
    return max(1, min(max(MAX_EVAL_BATCH, default), fitting))


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor (noise drawn by a seeded CPU generator, say) moved to ``device`` without a wait.

    A copy from ordinary (pageable) host memory to a GPU makes the host wait until the GPU has finished its
    queued work, once per training step; from pinned memory with ``non_blocking`` the copy is queued instead.
    The values are the same either way; on the CPU this is ``tensor.to(device)``.
    """
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def worker_threads(workers: int, cores: int | None = None) -> int:
    """CPU threads for each of ``workers`` processes on this machine, so that together they do not use more
    cores than there are, nor more threads than this process was allowed (OMP_NUM_THREADS, say)."""
    cores = cores or available_cores()
    return max(1, min(torch.get_num_threads(), cores // max(workers, 1)))


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
