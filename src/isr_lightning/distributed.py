"""Collectives for losses over the global batch.

Everything here is a no-op in a single process, so the same loss code runs with and
without ``torch.distributed``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_sum", "gather_variable", "gather_variable_with_grad", "rank_and_world_size"]


def rank_and_world_size() -> tuple[int, int]:
    """Return ``(rank, world_size)``; ``(0, 1)`` when no process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient for the local slice.

    ``dist.all_gather`` alone returns tensors detached from the graph, so gradients of a loss
    over gathered embeddings would never reach the other ranks' encoders.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: Tensor) -> Tensor:  # type: ignore[override]
        world_size = dist.get_world_size()
        chunks = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(chunks, tensor.contiguous())
        return torch.stack(chunks)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[dist.get_rank()]


def _gather_sizes(num_rows: int, device: torch.device) -> list[int]:
    size = torch.tensor([num_rows], device=device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


def _pad_rows(tensor: Tensor, num_rows: int) -> Tensor:
    if tensor.shape[0] == num_rows:
        return tensor
    padding = tensor.new_zeros((num_rows - tensor.shape[0], *tensor.shape[1:]))
    return torch.cat([tensor, padding])


def gather_variable_with_grad(tensor: Tensor) -> tuple[Tensor, int]:
    """Concatenate every rank's rows, keeping the autograd graph across ranks.

    Ranks may hold different numbers of rows: they are padded to the largest count for the
    collective and the padding is removed afterwards. Every rank must call this function the
    same number of times, and every rank's loss must depend on the result, or the backward
    collective hangs.

    Args:
        tensor: ``(n_r, ...)`` rows of this rank.

    Returns:
        ``(sum_r n_r, ...)`` rows of all ranks in rank order, and the offset of this rank's
        first row in it. In a single process: ``(tensor, 0)``.
    """
    rank, world_size = rank_and_world_size()
    if world_size == 1:
        return tensor, 0
    sizes = _gather_sizes(tensor.shape[0], tensor.device)
    stacked = _AllGatherWithGrad.apply(_pad_rows(tensor, max(sizes)))
    gathered = torch.cat([stacked[r, : sizes[r]] for r in range(world_size)])
    return gathered, sum(sizes[:rank])


def gather_variable(tensor: Tensor) -> Tensor:
    """Concatenate every rank's rows without gradient (ids, labels, diagnostics).

    Args:
        tensor: ``(n_r, ...)`` rows of this rank.

    Returns:
        ``(sum_r n_r, ...)`` rows of all ranks in rank order.
    """
    _, world_size = rank_and_world_size()
    if world_size == 1:
        return tensor
    sizes = _gather_sizes(tensor.shape[0], tensor.device)
    chunks = [torch.empty_like(_pad_rows(tensor, max(sizes))) for _ in range(world_size)]
    dist.all_gather(chunks, _pad_rows(tensor, max(sizes)).contiguous())
    return torch.cat([chunk[:size] for chunk, size in zip(chunks, sizes, strict=True)])


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all ranks (detached copy; the input is left unchanged)."""
    total = tensor.detach().clone()
    if rank_and_world_size()[1] > 1:
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total
