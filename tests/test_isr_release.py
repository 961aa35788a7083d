"""Released ISR checkpoint (timm 0.4.12 Swin layout) -> current timm, with identical embeddings.

The reference is the real timm 0.4.12: it is installed with ``pip install --no-deps --target``
into the pytest cache (once; ~400 kB, pure Python) and run in a subprocess, so the two timm
versions never share a process. Set ``ISR_TIMM0412_PATH`` to an existing install to skip the
download; without the package registry the reference test skips, and the key-level tests
below still run.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from isr_lightning import ISRModule, load_isr_release
from isr_lightning.checkpoints import load_weights, read_state_dict, remap_isr_release_state_dict

# Tiny Swin with the architecture of timm0412_reference.ARCH (4 stages: every downsample moves).
SWIN = "swin_base_patch4_window7_224"
SWIN_KWARGS = {"embed_dim": 16, "depths": (2, 2, 2, 2), "num_heads": (1, 2, 2, 4)}
REFERENCE_SCRIPT = Path(__file__).with_name("timm0412_reference.py")


@pytest.fixture(scope="session")
def timm0412(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding timm 0.4.12 (for ``PYTHONPATH``), installed on first use."""
    if os.environ.get("ISR_TIMM0412_PATH"):
        return Path(os.environ["ISR_TIMM0412_PATH"])
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    target = cache.mkdir("timm-0.4.12") if cache is not None else tmp_path_factory.mktemp("timm-0.4.12")
    if not (target / "timm" / "version.py").is_file():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
        result = subprocess.run([*command, "timm==0.4.12"], capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            pytest.skip(f"could not install the timm 0.4.12 reference: {result.stderr.strip()[-300:]}")
    return target


@pytest.fixture(scope="session")
def release(timm0412: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``release.pth`` and ``reference.pt`` written by timm 0.4.12 (see timm0412_reference.py)."""
    out = tmp_path_factory.mktemp("release")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(timm0412), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, str(REFERENCE_SCRIPT), str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_release_embeddings_equal_timm_0412(release: Path) -> None:
    reference = torch.load(release / "reference.pt")
    assert reference["timm"] == "0.4.12"
    images, expected = reference["images"], reference["embeddings"]

    model = ISRModule.from_isr_release(release / "release.pth", backbone=SWIN, backbone_kwargs=SWIN_KWARGS)
    assert model.hparams.embed_dim == 24 and model.image_size == (224, 224)
    got = model.embed(images)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    # the three images give different embeddings: the check is not trivially satisfied
    assert (expected[0] - expected[1]).abs().max() > 1e-2

    # the same file through the constructor argument used by CLI recipes
    built = ISRModule(
        backbone=SWIN,
        backbone_kwargs=SWIN_KWARGS,
        image_size=(224, 224),
        embed_dim=24,
        weights=str(release / "release.pth"),
    )
    torch.testing.assert_close(built.embed(images), expected, rtol=0, atol=1e-5)
    assert "weights" not in built.hparams


def test_release_with_wrong_architecture_names_the_file(release: Path) -> None:
    other = {**SWIN_KWARGS, "depths": (2, 2, 4, 2)}
    with pytest.raises(ValueError, match=re.escape(str(release / "release.pth"))) as error:
        load_isr_release(release / "release.pth", backbone=SWIN, backbone_kwargs=other)
    assert "missing keys" in str(error.value)


# ------------------------------------------------- key-level checks (no reference needed)


def _old_layout(new_state_dict: dict[str, torch.Tensor], num_stages: int) -> dict[str, torch.Tensor]:
    """Inverse remap: current timm Swin keys -> timm 0.4.12 keys, buffers and head added."""
    old = {}
    for key, value in new_state_dict.items():
        match = re.match(r"layers\.(\d+)\.downsample\.(.*)", key)
        old[f"layers.{int(match[1]) - 1}.downsample.{match[2]}" if match else key] = value
    old["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(49, 49, dtype=torch.long)
    old["layers.0.blocks.1.attn_mask"] = torch.zeros(64, 49, 49)
    old["head.weight"], old["head.bias"] = torch.zeros(1000, 8 * 16), torch.zeros(1000)
    assert any(k.startswith(f"layers.{num_stages - 2}.downsample.") for k in old)
    return old


def test_remap_is_the_inverse_of_the_layout_change() -> None:
    module = ISRModule(backbone=SWIN, backbone_kwargs=SWIN_KWARGS, image_size=(224, 224), embed_dim=24)
    backbone = module.backbone.state_dict()
    release = {f"model.{k}": v for k, v in _old_layout(backbone, 4).items()}
    release.update({f"module.feat.{k}": v for k, v in module.projection.state_dict().items()})
    remapped, projection = remap_isr_release_state_dict(release)
    assert remapped.keys() == backbone.keys()
    assert all(torch.equal(remapped[k], backbone[k]) for k in backbone)
    assert projection.keys() == {"weight", "bias"}
    # a current-layout backbone passes through unchanged
    again, _ = remap_isr_release_state_dict(
        {**{f"model.{k}": v for k, v in backbone.items()}, "feat.weight": 0 * projection["weight"]}
    )
    assert again.keys() == backbone.keys()


def test_from_isr_release_reads_an_old_layout_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = ISRModule(backbone=SWIN, backbone_kwargs=SWIN_KWARGS, image_size=(224, 224), embed_dim=24)
    release = {f"model.{k}": v for k, v in _old_layout(source.backbone.state_dict(), 4).items()}
    release.update({f"feat.{k}": v for k, v in source.projection.state_dict().items()})
    torch.save({"state_dict": release}, tmp_path / "release.pth")

    model = ISRModule.from_isr_release(tmp_path / "release.pth", backbone=SWIN, backbone_kwargs=SWIN_KWARGS)
    assert type(model) is ISRModule and model.hparams.embed_dim == 24 and model.image_size == (224, 224)
    images = torch.randn(2, 3, 224, 224)
    torch.testing.assert_close(model.embed(images), source.embed(images), rtol=0, atol=0)
    # the public name kept from before the classmethod builds the same model
    again = load_isr_release(tmp_path / "release.pth", backbone=SWIN, backbone_kwargs=SWIN_KWARGS)
    torch.testing.assert_close(again.embed(images), source.embed(images), rtol=0, atol=0)
    # plain modules: the loader needs no model class
    backbone, projection = copy.deepcopy(source.backbone), torch.nn.Linear(8 * 16, 24)
    assert load_weights(backbone, projection, tmp_path / "release.pth") == "isr-release"
    torch.testing.assert_close(projection.weight, source.projection.weight, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not an ISR release"):
        torch.save({"backbone.x": torch.zeros(1)}, tmp_path / "other.pth")
        ISRModule.from_isr_release(tmp_path / "other.pth", backbone=SWIN, backbone_kwargs=SWIN_KWARGS)


def test_remap_rejects_other_layouts() -> None:
    with pytest.raises(ValueError, match="not an ISR release"):
        remap_isr_release_state_dict({"backbone.x": torch.zeros(1)})
    with pytest.raises(ValueError, match="absolute position"):
        remap_isr_release_state_dict({"model.absolute_pos_embed": torch.zeros(1), "feat.weight": torch.zeros(1)})


def test_missing_file_and_failed_download_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = ISRModule(backbone="test_vit", backbone_kwargs={"img_size": (32, 16), "patch_size": 8}, embed_dim=8)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pth"):
        load_weights(module.backbone, module.projection, tmp_path / "nowhere.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(RuntimeError, match=r"could not download weights from http://127\.0\.0\.1:9/isr\.pth"):
        read_state_dict("http://127.0.0.1:9/isr.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"garbage\.pth"):
        load_weights(module.backbone, module.projection, tmp_path / "garbage.pth")
