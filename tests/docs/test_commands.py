"""Every ``isr-lightning`` and ``lightning`` command written in README.md and docs/ runs as written.

The commands are read from the code blocks of the pages, and each is run in a sandbox where the
paths the docs use stand for small real data (:data:`PLACEHOLDERS`): a folder of videos with
boxes, a Market-1501-layout benchmark, crop shards, a checkpoint with the demo's architecture.
Commands that train are shrunk (a few steps, one process); commands for GPUs and for datasets
that cannot exist here are parsed (``--print_config``), so a stale option or recipe name still
fails. A command the test cannot run says why in :data:`NOT_RUN`; a command in neither is run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
GPU_RECIPES = ("resnet50", "swin_b", "finetune_market", "finetune_msmt17")
NOT_RUN = {
    "--detector TorchvisionDetector --detector.weights fasterrcnn_resnet50_fpn.pth": "needs a detector weights file",
    "--model.weights swin_base_patch4_window7_224.pth": "needs the released ISR weights (no download here)",
    "s3://isr/": "needs an S3 server: tests/data/test_object_storage.py runs extract, fit and resume against one",
}
"""Command fragment -> why the test cannot run a command containing it."""


def doc_commands() -> list[tuple[str, str]]:
    """``(page:line, command)`` of every command line in the pages' code blocks (continuations joined)."""
    found = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        fence = False
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("```"):
                fence = not fence
                i += 1
                continue
            code = fence or line.startswith("    ")
            text = line.strip()
            start = i
            if code and re.match(r"^(isr-lightning|lightning) ", text):
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text[:-1].rstrip() + " " + lines[i].strip()
                text = re.sub(r"\s{2,}#.*$", "", text)  # a trailing comment
                found.append((f"{page.relative_to(ROOT)}:{start + 1}", text))
            i += 1
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data the docs' paths stand for (see :data:`PLACEHOLDERS`)."""
    import numpy as np
    from lightning.pytorch import Trainer

    from isr_lightning import ISRModule
    from isr_lightning.data.extract import extract_corpus
    from isr_lightning.lightning_cli import recipe_path
    from isr_lightning.synth import generate_benchmark, generate_corpus

    root = tmp_path_factory.mktemp("docs_sandbox")
    # people of a real size (the recipes drop boxes under 32 px): two 3-second clips at 640x360
    generate_corpus(root / "synth", num_clips=2, seconds=3, preview=False)
    (root / "videos").mkdir()
    for video in (root / "synth").glob("*.mp4"):
        shutil.copy(video, root / "videos" / video.name)
        shutil.copy(video.with_suffix(".det.txt"), root / "videos" / f"{video.stem}.txt")  # as `detect` names them
        shutil.copy(video.with_suffix(".gt.txt"), root / "videos" / f"{video.stem}.gt.txt")
    generate_benchmark(root / "market", num_identities=6, num_cameras=2, num_train_identities=8, preview=False)
    shutil.copytree(root / "market" / "query", root / "person_images")
    extract_corpus(str(root / "videos"), root / "crops", size=(128, 64))
    demo = yaml.safe_load(recipe_path("cpu_demo").read_text())["model"]["init_args"]
    model = ISRModule(backbone=demo["backbone"], embed_dim=demo["embed_dim"], image_size=tuple(demo["image_size"]))
    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    for ckpt in (
        "outputs/demo/isr.ckpt",
        "outputs/cpu_demo/checkpoints/last.ckpt",
        "outputs/swin_b/checkpoints/last.ckpt",
    ):
        (root / ckpt).parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(root / ckpt)
    rng = np.random.default_rng(0)
    np.savez(
        root / "features.npz",
        query_feats=rng.normal(size=(12, 8)).astype(np.float32),
        gallery_feats=rng.normal(size=(40, 8)).astype(np.float32),
        query_pids=np.arange(12) % 4,
        gallery_pids=np.arange(40) % 4,
        query_camids=np.zeros(12, dtype=np.int64),
        gallery_camids=np.ones(40, dtype=np.int64),
    )
    config = yaml.safe_load(recipe_path("cpu_demo").read_text())
    config["data"]["init_args"]["root"] = str(root / "videos")
    (root / "my.yaml").write_text(yaml.safe_dump(config))
    (root / "a.yaml").write_text(yaml.safe_dump(config))
    (root / "b.yaml").write_text("trainer:\n  max_steps: 10\n")
    shutil.copytree(ROOT / "examples", root / "examples")
    return root


def placeholders(sandbox: Path) -> dict[str, str]:
    """Paths of the docs -> the sandbox's data."""
    return {
        "/data/videos": str(sandbox / "videos"),
        "/data/Market-1501-v15.09.15": str(sandbox / "market"),
        "/data/MSMT17_V1": str(sandbox / "market"),  # parsed only (a GPU recipe)
        "/data/crops": str(sandbox / "crops"),
        "/data/person_images": str(sandbox / "person_images"),
        "camera_check": str(sandbox / "market"),  # docs/own_camera.md's track benchmark (Market layout)
    }


def _is_gpu(args: list[str], cwd: Path) -> bool:
    configs = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--config", "-c")]
    for config in configs:
        if config in GPU_RECIPES:
            return True
        path = cwd / config
        if path.is_file() and (yaml.safe_load(path.read_text()) or {}).get("trainer", {}).get("accelerator") == "gpu":
            return True
    return False


SHRINK_FIT = [
    "--trainer.max_steps=2",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.strategy=auto",
    "--trainer.precision=32",
    "--model.init_args.pretrained=false",
    "--data.init_args.num_workers=0",
]


def shrunk(command: str, cwd: Path) -> tuple[list[str], str]:
    """The argument list to run for ``command`` in ``cwd``, and how (``run`` or ``parse``)."""
    args = shlex.split(command.split(" > ")[0])
    program, rest = args[0], args[1:]
    if rest[0] in ("fit", "validate", "test"):
        on_cpu = "--trainer.accelerator=cpu" in rest  # a GPU recipe shrunk to CPU by the docs themselves
        if (_is_gpu(rest, cwd) and not on_cpu) or "--print_config" in rest:
            return [program, *[a for a in rest if a != "--print_config"], "--print_config"], "parse"
        return [program, *rest, *SHRINK_FIT], "run"  # last: the docs' own step counts are shrunk too
    extra = {
        "demo": ["--minutes", "0.1", "--max_steps", "2", "--clips", "2", "--identities", "6"],
        "extract": ["--workers", "1"],
    }.get(rest[0], [])
    if rest[:2] == ["synth", "corpus"]:
        extra = ["--num_clips", "1", "--seconds", "1"]
    elif rest[:2] == ["synth", "benchmark"]:
        extra = ["--num_identities", "4", "--num_cameras", "2"]
    return [program, *rest, *extra], "run"


COMMANDS = doc_commands()


def test_the_pages_hold_the_commands_we_expect():
    # the reader finds commands in fenced and indented blocks, with continuation lines joined
    assert len(COMMANDS) > 30
    texts = [c for _, c in COMMANDS]
    assert any(c.startswith("isr-lightning predict --ckpt_path") and "--return_predictions false" in c for c in texts)
    assert all("\\" not in c and not re.search(r"\s#", c) for c in texts)
    # no synopsis left that a user cannot paste: brackets for optional flags, a|b alternatives
    assert not [c for c in texts if re.search(r"\[--|\w\|\w| \| ", c)]


@pytest.mark.slow
def test_every_documented_command_runs(sandbox: Path, tmp_path: Path):
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "ISR_LIGHTNING_CACHE": str(sandbox / "cache"),
    }
    env.pop("WANDB_API_KEY", None)
    swaps = placeholders(sandbox)
    done: dict[str, str] = {}
    runs = []
    for where, command in COMMANDS:
        reason = next((why for fragment, why in NOT_RUN.items() if fragment in command), None)
        if reason is not None:
            continue
        text = command
        for path, local in swaps.items():
            text = text.replace(path, local)
        if text in done:
            continue
        cwd = tmp_path / f"run{len(done)}"
        shutil.copytree(sandbox, cwd, ignore=shutil.ignore_patterns("synth", "videos", "market", "crops", "cache"))
        if text.split()[1:2] == ["extract"]:  # extract writes its output: a fresh folder
            text = text.replace(swaps["/data/crops"], str(cwd / "new_crops"))
        args, how = shrunk(text, cwd)
        done[text] = how
        runs.append((where, command, args, how, cwd))

    def run(where: str, command: str, args: list[str], how: str, cwd: Path) -> str | None:
        result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode == 0:
            return None
        return f"{where}: {command}\n  ran ({how}): {shlex.join(args)}\n  {result.stderr[-1500:]}"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # each command in its own folder
        failures = [f for f in pool.map(lambda r: run(*r), runs) if f is not None]
    assert not failures, "\n\n".join(failures)
    assert sum(how == "run" for how in done.values()) >= 15  # most commands really ran
