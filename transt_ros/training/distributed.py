"""Process-group setup for ``torchrun`` (env:// rendezvous) and the few collectives we use.

A single process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) runs without a process group.
Under ``torchrun`` each process reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; on CUDA it
uses ``cuda:LOCAL_RANK`` and NCCL, on CPU gloo. Rank 0 logs and writes checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:LOCAL_RANK when CUDA is available, else cpu; 'cuda' -> cuda:LOCAL_RANK."""
    if preference == 'auto':
        preference = 'cuda' if torch.cuda.is_available() else 'cpu'
    if preference == 'cuda':
        return torch.device('cuda', local_rank)
    return torch.device(preference)


def setup(device_preference: str = 'auto', backend: str = 'auto') -> DistContext:
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    device = resolve_device(device_preference, local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        if backend == 'auto':
            backend = 'nccl' if device.type == 'cuda' else 'gloo'
        dist.init_process_group(backend=backend, init_method='env://', rank=rank, world_size=world_size,
                                **({'device_id': device} if device.type == 'cuda' else {}))
    return DistContext(rank, world_size, local_rank, device)


def cleanup(context: DistContext) -> None:
    if context.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def all_gather_objects(obj) -> list:
    if dist.is_available() and dist.is_initialized():
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, obj)
        return gathered
    return [obj]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
