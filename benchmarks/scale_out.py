"""Object storage and several machines, timed side by side on one machine (docs/scale_out.md).

Needs an S3 store named by the AWS variables and an existing bucket (``--store s3://isr/bench``
is a prefix in it), e.g. SeaweedFS on loopback as docs/scale_out.md starts it. On the demo
corpus (40 clips of 10 s, 640x360; rendered if absent) it times, as separate commands:

1. ``isr-lightning extract`` to a local folder (one machine);
2. the same to ``STORE/one`` (staged, then uploaded);
3. two ``isr-lightning extract --num_nodes 2 --node_rank R`` processes to ``STORE/two`` at once
   (two "machines" sharing this machine's cores);
4. a node failure: two ``python -m tests.multinode_fit`` nodes (gloo, loopback) training from
   ``STORE/one``; after ``--kill-after`` seconds node 1 is killed (SIGKILL) and the seconds until
   node 0 exits are reported with its exit status.

Run from the repository root: ``.venv/bin/python benchmarks/scale_out.py --store s3://isr/bench``
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isr_lightning.demo import DEFAULT_CACHE
from isr_lightning.synth import generate_corpus

REPO = Path(__file__).resolve().parents[1]
EXTRACT = [str(Path(sys.executable).with_name("isr-lightning")), "extract"]


def timed(*commands: list[str]) -> float:
    """Seconds until every command (started together) has exited 0."""
    start = time.perf_counter()
    running = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in commands]
    for command, process in zip(commands, running, strict=True):
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{err[-2000:]}")
    return time.perf_counter() - start


def node_failure(shards: str, run: str, kill_after: float) -> tuple[float, int]:
    """Seconds from killing node 1 until node 0 exits, and node 0's exit status."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nodes = []
    with tempfile.TemporaryDirectory() as out:
        for rank in range(2):
            env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(rank)}
            args = [sys.executable, "-m", "tests.multinode_fit", shards, run, out, "--steps", "100000"]
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            nodes.append(subprocess.Popen(args, cwd=REPO, env=env, **quiet))
        time.sleep(kill_after)
        nodes[1].kill()
        killed = time.perf_counter()
        code = nodes[0].wait(timeout=600)
        return time.perf_counter() - killed, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="an S3 prefix whose bucket exists")
    parser.add_argument("--kill-after", type=float, default=40.0)
    args = parser.parse_args()
    corpus = DEFAULT_CACHE / "demo-seed0" / "corpus-40"
    generate_corpus(corpus, num_clips=40, seed=0)
    size = ["--size", "[128,64]"]
    tag = time.strftime("%Y%m%d-%H%M%S")
    one, two = f"{args.store}/{tag}/one", f"{args.store}/{tag}/two"
    with tempfile.TemporaryDirectory() as tmp:
        local = timed([*EXTRACT, str(corpus), f"{tmp}/crops", *size])
    store = timed([*EXTRACT, str(corpus), one, *size])
    nodes = [[*EXTRACT, str(corpus), two, *size, "--num_nodes", "2", "--node_rank", str(r)] for r in (1, 0)]
    both = timed(*nodes)
    print("| extraction of the demo corpus (40 clips, 4800 frames, 128x64 crops) | seconds |")
    print("|---|---|")
    print(f"| one machine, local folder | {local:.1f} |")
    print(f"| one machine, to the store | {store:.1f} |")
    print(f"| two machines (processes on this machine's cores) to the store | {both:.1f} |")
    seconds, code = node_failure(one, f"{args.store}/{tag}/run", args.kill_after)
    print(f"node 1 killed after {args.kill_after:.0f} s: node 0 exited {seconds:.1f} s later, status {code}")


if __name__ == "__main__":
    main()
