"""Identity and triplet losses against independent references, in one process and on 2 DDP ranks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from isr_lightning.finetune.losses import BatchHardTripletLoss, LabelSmoothingCrossEntropy


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.4])
def test_label_smoothing_equals_torch_cross_entropy(epsilon: float) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 7, generator=generator, dtype=torch.float64) * 3
    targets = torch.randint(0, 7, (9,), generator=generator)
    got = LabelSmoothingCrossEntropy(epsilon)(logits, targets)
    expected = F.cross_entropy(logits, targets, label_smoothing=epsilon)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_label_smoothing_is_float32_under_bf16_autocast() -> None:
    logits = torch.randn(4, 5).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = LabelSmoothingCrossEntropy(0.1)(logits, torch.tensor([0, 1, 2, 3]))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, F.cross_entropy(logits.float(), torch.tensor([0, 1, 2, 3]), label_smoothing=0.1))


def brute_force_batch_hard(features: torch.Tensor, labels: list[int], margin: float | None) -> torch.Tensor:
    """One anchor at a time, distances by torch.norm of the difference."""
    terms = []
    for a in range(len(labels)):
        positives = [
            torch.norm(features[a] - features[p]) for p in range(len(labels)) if p != a and labels[p] == labels[a]
        ]
        negatives = [torch.norm(features[a] - features[n]) for n in range(len(labels)) if labels[n] != labels[a]]
        if not positives or not negatives:
            continue
        gap = max(positives) - min(negatives)
        terms.append(torch.log1p(torch.exp(gap)) if margin is None else torch.clamp(gap + margin, min=0))
    return torch.stack(terms).mean()


# identity 5 has one image: it is a negative for the others and has no term of its own
LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 2, 5]


@pytest.mark.parametrize("margin", [0.3, 2.0, None])
def test_batch_hard_triplet_equals_brute_force(margin: float | None) -> None:
    features = torch.randn(len(LABELS), 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = features.clone().requires_grad_(True)
    got = BatchHardTripletLoss(margin)(x, torch.tensor(LABELS))
    got.backward()
    y = features.clone().requires_grad_(True)
    expected = brute_force_batch_hard(y, LABELS, margin)
    expected.backward()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-8, atol=1e-10)
    assert got > 0


def test_batch_hard_triplet_without_positives_is_zero_and_attached() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    loss = BatchHardTripletLoss(0.3)(x, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert loss.item() == 0.0 and x.grad is not None and not x.grad.any()


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        LabelSmoothingCrossEntropy(1.0)
    with pytest.raises(ValueError, match="margin"):
        BatchHardTripletLoss(-0.1)


# ------------------------------------------------------------- 2-process gloo DDP


FEATURES = torch.randn(12, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
# rank 0 holds rows 0-5, rank 1 rows 6-11; identities 1 and 3 span both ranks, so anchors'
# hardest positives and negatives live on the other rank
ALL_LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 1, 3, 3, 4, 4, 3])


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    rows = slice(6 * rank, 6 * rank + 6)
    results = {}
    for margin in MARGINS:
        x = FEATURES[rows].clone().requires_grad_(True)
        loss = BatchHardTripletLoss(margin)(x, ALL_LABELS[rows])
        loss.backward()
        results[margin] = {"loss": loss.detach(), "grad": x.grad}
    torch.save(results, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MARGINS = (0.3, None)


def test_ddp_triplet_gradient_equals_single_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    saved = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for margin in MARGINS:
        ranks = [s[margin] for s in saved]
        x = FEATURES.clone().requires_grad_(True)
        full = BatchHardTripletLoss(margin)(x, ALL_LABELS)
        full.backward()
        # DDP averages the ranks' gradients; each rank's loss is scaled by the world size
        torch.testing.assert_close(sum(r["loss"] for r in ranks) / 2, full.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(torch.cat([r["grad"] for r in ranks]) / 2, x.grad, rtol=1e-10, atol=1e-12)
        # the search over both ranks matters here: rank 0 alone would give another loss
        alone = BatchHardTripletLoss(margin)(FEATURES[:6], ALL_LABELS[:6])
        assert not torch.isclose(alone, ranks[0]["loss"] / 2)
