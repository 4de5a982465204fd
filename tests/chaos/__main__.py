"""`make chaos`: many crash rounds against the real embedded stack, and a table of what was recovered.

    python -m tests.chaos --rounds 20 --images 500      # the big run (default)
    python -m tests.chaos --rounds 3 --images 60         # the CI size

Rounds cycle through the kill points (upload, queue, decode, embed, write, optimise, random) with seeds
1..N, then one model-switch round and one analysis round. Exit status 1 if any round lost or duplicated
anything or left a job open.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.chaos import harness
from tests.fixtures.datasets import DATASETS, dataset_records
from tests.fixtures.tiny_clip import build_tiny_clip


def _images(n: int) -> list[Path]:
    files = [
        DATASETS / "coco-captions-mini" / r["file"] for r in dataset_records("coco-captions-mini", "captions.jsonl")
    ]
    if n > len(files):  # more rounds than the mini set holds: Flickr8k's photos join
        extra = sorted((DATASETS / "flickr8k").rglob("*.jpg"))
        files += extra[: n - len(files)]
    if len(files) < n:
        sys.exit(f"only {len(files)} images under {DATASETS}; ask for fewer with --images")
    return files[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ordo-chaos-"))
    model = build_tiny_clip(work / "tiny-clip")
    files = _images(args.images)
    results: list[harness.RoundResult] = []
    started = time.monotonic()
    print(f"{args.rounds} rounds × {len(files)} images; load avg at start {os.getloadavg()[0]:.1f}", flush=True)
    # Rows are printed as rounds finish: a run cut short (a timeout) still shows what it did.
    print(
        f"{'round':>5}  {'kill point':<14} {'kill at':<12} {'killed':<6} {'acked':>6} {'recovered':>9} "
        f"{'assets':>7} {'vectors':>7} {'dup':>4} {'open jobs':>9} {'restart→quiet s':>15}  result",
        flush=True,
    )

    def row(r: harness.RoundResult) -> None:
        results.append(r)
        print(
            f"{r.seed:>5}  {r.point:<14} {r.kill_spec:<12} {r.killed!s:<6} {r.acknowledged:>6} {r.recovered:>9} "
            f"{r.final_assets:>7} {r.final_vectors:>7} {r.duplicates:>4} {r.jobs_open:>9} {r.recovery_s:>15.1f}  "
            + ("ok" if r.ok else "; ".join(r.problems)),
            flush=True,
        )

    def attempt(seed: int, point: str, run: Callable[[], harness.RoundResult]) -> None:
        """A round that raises (the stack would not start again, a call failed) is a failed row, not the
        end of the run."""
        try:
            row(run())
        except Exception as exc:
            row(harness.RoundResult(seed, point, False, 0, 0, 0, 0, -1, 0.0, [f"{type(exc).__name__}: {exc}"]))

    for seed in range(1, args.rounds + 1):
        point = harness.INGEST_POINTS[(seed - 1) % len(harness.INGEST_POINTS)]
        attempt(seed, point, lambda s=seed, p=point: harness.ingest_round(s, files, model, work, point=p))
    small = files[: min(len(files), 60)]
    attempt(args.rounds + 1, "switch", lambda: harness.switch_round(args.rounds + 1, small, model, work))
    attempt(args.rounds + 2, "analysis", lambda: harness.analysis_round(args.rounds + 2, small, model, work))
    failed = [r for r in results if not r.ok]
    print(
        f"\n{len(results)} rounds, {sum(r.killed for r in results)} killed, {len(failed)} failed; "
        f"{time.monotonic() - started:.0f} s; load avg {os.getloadavg()[0]:.1f}; data in {work}"
    )
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
