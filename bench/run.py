"""Run Ordo's benchmarks, print a table and write ``bench/results/<name>-<timestamp>.json`` + ``latest.json``.

    python -m bench.run              # full: ingest 128 images x 3 rounds; search at 10k and 100k vectors
    python -m bench.run --quick      # CI smoke (< 2 min): 24 images x 1 round; search at 10k, 100 queries
    python -m bench.run --only search

Benchmarks (see their module docstrings for the method):

* ``bench.ingest_throughput``: `ordo up` end to end (upload → searchable) vs a bare decode+embed loop,
  same model (random-weight CLIP ViT-B/32 on CPU) and images; target ratio >= 0.9.
* ``bench.distributed_bench``: 1 vs 2 ``ordo worker`` processes on Redis/SeaweedFS (ratio), queue overhead
  per batch with the tiny model, bucket-watcher latency from put to searchable.
* ``bench.ordo_lite_bench``: ordo-lite (the offline model) upload → searchable through a scratch stack, and
  text queries/s, vs CLIP ViT-B/32's compute in the same run; target >= 40 img/s on this 2-core CPU.
* ``bench.processing_bench``: cost per image of object detection and OCR, and ingest throughput through the
  embedding pipeline with the image processor off / objects / text / both vs no processor (ratios).
* ``bench.analysis_bench``: clustering (DBSCAN auto-eps) + t-SNE map of synthetic 512-d vectors at the
  ``--sizes`` vs a naive scikit-learn pipeline in the same run (extrapolated above 10k); target at 100k:
  <= 120 s and >= 10x faster; peak memory per step.
* ``bench.concurrency_bench``: 1 vs 50 concurrent SearchText clients, ordo-lite at 100k vectors (target: >= 3x the
  single-client throughput, p99 <= 500 ms, 0 errors).
* ``bench.soak``: a 10 s version of ``make soak`` (50 gRPC + 20 REST search clients, 8 uploaders; 0 errors).
* ``bench.cpu_speed_bench`` (issue 18): per model (ordo-lite, CLIP ViT-B/32), the tuned setting, the bare loop and
  the bare model vs upload → searchable through ``ordo up`` (target ratio >= 0.9), the same with a second busy
  Ordo process, and text-query latency. Not in ``--quick``.
* ``bench.scale_bench`` (issue 18, only with ``--only scale``): 1M clustered vectors in the embedded index: upsert
  rate, HNSW build, search p50/p99 with and without filters, recall, memory, disk, real photos upserted into it.
* ``bench.map_bench`` (issue 16): the web UI's map in Chromium while panning at 100k points: whole map,
  zoomed with dots only (baseline) and zoomed with thumbnails from the texture atlas (ratio); target >= 30 fps.
* ``bench.queue_bench`` (issue 12): the embedded queue (``ordo-sqlite://``) against kombu's ``filesystem://``,
  ``sqla+sqlite://`` and Redis: tasks/s enqueue→ack and what a SIGKILL between take and ack loses.
* ``bench.search_latency``: SearchText over gRPC at 10k/100k vectors (target at 100k: p50 <= 15 ms,
  p99 <= 40 ms, text encoder included), with a breakdown and an exact numpy baseline + recall@10.

Exit status: 0 when every benchmark ran (targets missed are reported, not fatal, unless ``--strict``),
1 when one could not run, 2 with ``--strict`` when a target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchError, git_commit, log, machine_info

RESULTS_DIR = REPO_ROOT / "bench" / "results"


# Every benchmark, in the order a full run takes them (``--only`` picks one).
BENCHES = (
    "ingest",
    "search",
    "distributed",
    "processing",
    "ordo-lite",
    "analysis",
    "concurrency",
    "soak",
    "cpu-speed",
    "scale",
    "robustness",
    "map",
    "queue",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke version for CI (< 2 min)")
    parser.add_argument(
        "--only",
        choices=BENCHES,
        help="run one benchmark",
    )
    parser.add_argument(
        "--images", type=int, help="ingest: images to embed (default 128; --quick 24); cpu-speed: per round (96)"
    )
    parser.add_argument(
        "--rounds", type=int, help="ingest: alternating rounds per side (default 3; --quick 1); cpu-speed: best of (2)"
    )
    parser.add_argument("--sizes", help="search, analysis: comma-separated sizes (default 10000,100000; --quick 10000)")
    parser.add_argument("--queries", type=int, help="search: timed queries per size (default 300; --quick 100)")
    parser.add_argument("--rebuild", action="store_true", help="search: rebuild cached indexes")
    parser.add_argument(
        "--scale-size", type=int, default=1_000_000, help="scale: vectors in the embedded index (only with --only)"
    )
    parser.add_argument(
        "--rebuild-sizes", help="robustness: vectors to rebuild (default 100000; --quick 5000; 0 skips)"
    )
    parser.add_argument(
        "--pending", type=int, help="robustness: pending images to recover (default 10000; --quick 1000; 0 skips)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dirs (and stack logs)")
    parser.add_argument("--name", help="result file prefix (default: full / quick, plus the --only part)")
    parser.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    args = parser.parse_args(argv)
    # cpu-speed's own defaults: 96 photos per round, best of 2 (the stack needs a fresh set per round)
    args.cpu_images = args.images or (24 if args.quick else 96)
    args.cpu_rounds = args.rounds or (1 if args.quick else 2)
    args.images = args.images or (24 if args.quick else 128)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.queries = args.queries or (100 if args.quick else 300)
    sizes = args.sizes or ("10000" if args.quick else "10000,100000")
    try:
        args.sizes = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes: not a list of integers: {sizes!r}")
    if not args.sizes or min(args.sizes) < 100:
        parser.error("--sizes: every size must be >= 100")
    if args.images < 1 or args.rounds < 1 or args.queries < 1:
        parser.error("--images, --rounds and --queries must be positive")
    args.rebuild_sizes = [int(x) for x in (args.rebuild_sizes or ("5000" if args.quick else "100000")).split(",")]
    if args.pending is None:  # 0 skips the recovery measurement
        args.pending = 1000 if args.quick else 10_000
    args.name = args.name or ("quick" if args.quick else "full") + (f"-{args.only}" if args.only else "")
    return args


# ------------------------------------------------------------------------------------------ table
def _targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    ingest = results.get("ingest")
    if ingest and "ratio" in ingest:
        out.append(
            {
                "name": "ingest ratio (pipeline / bare loop)",
                "target": f">= {ingest['target_ratio']}",
                "value": ingest["ratio"],
                "passed": ingest["passed"],
            }
        )
    processing = results.get("processing")
    if processing and "target" in processing:
        out.append(processing["target"])
    if results.get("ordo_lite"):
        out.append(results["ordo_lite"]["target"])
    for key in ("concurrency", "soak"):
        if results.get(key):
            out.append(results[key]["target"])
    if results.get("robustness"):
        out.extend(r["target"] for r in results["robustness"]["rebuild"].values())
    if results.get("analysis"):
        from bench.analysis_bench import target_rows

        out.extend(target_rows(results["analysis"]))
    if results.get("cpu_speed"):
        from bench.cpu_speed_bench import target_rows as cpu_targets

        out.extend(cpu_targets(results["cpu_speed"]))
    search = results.get("search")
    if search and "targets" in search:
        t = search["targets"]
        where = f"@{t['at_vectors']:,}" + ("" if t["at_vectors"] == t["defined_at"] else " (defined at 100k)")
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
            out.append(
                {
                    "name": f"SearchText {label} {where}",
                    "target": f"<= {t[key]['target']} ms",
                    "value": t[key]["value"],
                    "passed": t[key]["passed"],
                }
            )
    mapped = results.get("map")
    if mapped:
        fps = min(mapped["whole_dots"]["fps"] or 0, mapped["zoomed_thumbnails"]["fps"] or 0)
        out.append(
            {
                "name": "map pan fps @100k (whole map / thumbnails, the lower)",
                "target": f">= {mapped['target_fps']:.0f}",
                "value": fps,
                "passed": mapped["passed"],
            }
        )
    return out


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, metric, value) rows for the printed table."""
    rows: list[tuple[str, str, str]] = []
    ingest = results.get("ingest")
    if ingest and "ratio" in ingest:
        cfg = ingest["config"]
        b, p = ingest["baseline"], ingest["pipeline"]
        sec = f"ingest ({cfg['images']} imgs, batch {cfg['model_batch_size']}, best of {cfg['rounds']})"
        rows.append((sec, "bare loop img/s", f"{b['best']['images_per_s']:.2f}  (rounds {b['noise']['images_per_s']})"))
        rows.append((sec, "pipeline img/s", f"{p['best']['images_per_s']:.2f}  (rounds {p['noise']['images_per_s']})"))
        rows.append((sec, "ratio (target >= 0.9)", f"{ingest['ratio']:.3f}  (per round {ingest['round_ratios']})"))
        best = p["best"]
        rows.append(
            (
                sec,
                "pipeline wall split",
                f"{best['wall_s']:.2f} s = upload RPC {best['upload_rpc_s']:.2f} s + drain "
                f"{best['after_upload_s']:.2f} s; not embedding {best['wall_minus_embed_s']:.2f} s",
            )
        )
        rows.append(
            (
                sec,
                "bare loop split",
                f"read+decode {b['best']['read_decode_s']:.2f} s, embed {b['best']['embed_s']:.2f} s",
            )
        )
        for st in best["stage_timings"]:
            rows.append((sec, f"stage {st['stage']}", f"{st['seconds']:.3f} s  ({st['ms_per_item']} ms/item)"))
        rows.append(
            (
                sec,
                "machine speed per round",
                f"bare loop {[r['machine_gflops'] for r in b['rounds']]}, "
                f"pipeline {[r['machine_gflops'] for r in p['rounds']]} GFLOP/s (matmul probe)",
            )
        )
        d = ingest["diagnostics"]
        rows.append(
            (
                sec,
                "extra CPU/img in pipeline",
                f"{d['pipeline_extra_cpu_ms_per_image']:.1f} ms = {d['extra_vs_embed_pct']}% of embed "
                f"(probe+sha {d['upload_probe_sha256_ms']}, decode@{d['pipeline_decode_side']} "
                f"{d['pipeline_decode_ms']} vs @{d['baseline_max_side']} {d['baseline_decode_ms']}, "
                f"thumb {d['thumbnail_ms']})",
            )
        )
    search = results.get("search")
    if search and "sizes" in search:
        for n, s in search["sizes"].items():
            sec = f"search @{int(n):,}"
            g, ix, br = s["grpc_search_text"], s["index"], s["p50_breakdown_ms"]
            rows.append(
                (
                    sec,
                    "SearchText gRPC p50/p90/p99/mean",
                    f"{g['p50_ms']:.1f} / {g['p90_ms']:.1f} / {g['p99_ms']:.1f} / {g['mean_ms']:.1f} ms (n={g['n']})",
                )
            )
            rows.append(
                (
                    sec,
                    "p50 breakdown",
                    f"encoder {br['text_encoder']:.1f} + index {br['index_search']:.2f} + core rest "
                    f"{br['core_rest']:.1f} (= in-process {br['search_core_in_process']:.1f}) + gRPC/server "
                    f"{br['grpc_and_server']:.1f} ms (rpc floor {br['rpc_floor']:.2f})",
                )
            )
            enc, core = s["text_encoder"], s["search_core_in_process"]
            precision = {True: "int8", False: "fp32"}.get(enc.get("int8_text_tower"), "?")
            rows.append(
                (sec, f"text encoder alone p50/p99 ({precision})", f"{enc['p50_ms']:.1f} / {enc['p99_ms']:.1f} ms")
            )
            rows.append((sec, "SearchCore in-process p50/p99", f"{core['p50_ms']:.1f} / {core['p99_ms']:.1f} ms"))
            rows.append(
                (sec, "machine speed per block", f"{s['machine_speed_gflops_per_block']} GFLOP/s (matmul probe)")
            )
            rows.append(
                (
                    sec,
                    f"index alone p50/p99 (ef {ix['hnsw_ef']})",
                    f"{ix['raw_search']['p50_ms']:.2f} / {ix['raw_search']['p99_ms']:.2f} ms "
                    f"({ix['indexed_vectors']:,} in HNSW)",
                )
            )
            plain = s["build"].get("search_before_optimize")
            if plain:
                rows.append(
                    (sec, "index before optimize() p50/p99", f"{plain['p50_ms']:.2f} / {plain['p99_ms']:.2f} ms")
                )
            rows.append((sec, "numpy exact p50", f"{ix['numpy_exact']['p50_ms']:.2f} ms/query"))
            rows.append((sec, "HNSW recall@10 vs exact", f"{ix['recall_at_10']:.3f} (min {ix['recall_at_10_min']})"))
            b = s["build"]
            rows.append(
                (
                    sec,
                    "index build" + (" (cached)" if b["cached"] else ""),
                    f"upsert {b['upsert_s']:.1f} s + optimize {b['optimize_s']:.1f} s "
                    f"(points {b['prepare_points_s']:.1f} s); {b['disk_mb']} MB",
                )
            )
    if results.get("processing"):
        from bench.processing_bench import rows as processing_rows

        rows.extend(processing_rows(results["processing"]))
    dist = results.get("distributed")
    if dist and "ratio_2_vs_1" in dist:
        sec = f"distributed ({dist['config']['images']} imgs, 1 torch thread/worker)"
        for key in ("one_worker", "two_workers"):
            r = dist[key]
            rows.append((sec, f"{r['workers']} worker(s) img/s", f"{r['images_per_s']:.2f}  ({r['wall_s']:.1f} s)"))
        rows.append((sec, "ratio 2 vs 1 workers", f"{dist['ratio_2_vs_1']:.3f}"))
        q = dist["queue_overhead"]
        rows.append(
            (
                sec,
                "queue overhead per batch (tiny model)",
                f"{q['overhead_per_batch_ms']:.1f} ms (wall {q['wall_per_batch_ms']:.1f} - stages "
                f"{q['stages_per_batch_ms']:.1f} ms, {q['batches']} batches)",
            )
        )
        w = dist["watcher_latency"]
        rows.append(
            (
                sec,
                "watcher put → searchable",
                f"median {w['median_s']:.2f} s, max {w['max_s']:.2f} s (poll {w['poll_interval_s']} s)",
            )
        )
    lite = results.get("ordo_lite")
    if lite:
        sec = "ordo-lite (vs CLIP ViT-B/32 compute)"
        for r in lite.get("compute", []):
            rows.append((sec, f"{r['model']} decode + tower + head img/s", f"{r['images_per_s']:.1f}  (best of 3)"))
        for r in lite["rows"]:
            rate = f"{r['images_per_s']:.1f}  ({r['images']} imgs, {r['wall_s']:.1f} s)"
            rows.append((sec, f"{r['model']} through a stack img/s", rate))
            rows.append((sec, f"{r['model']} text queries/s", f"{r['text_queries_per_s']:.1f}"))
        rows.append((sec, "ratio ordo-lite / CLIP B/32", f"{lite['ratio_vs_clip_b32']:.2f}"))
    if results.get("analysis"):
        from bench.analysis_bench import table_rows

        rows.extend(table_rows(results["analysis"]))
        if results["analysis"].get("default"):
            from bench.default_clustering_bench import table_rows as default_rows

            rows.extend(default_rows(results["analysis"]["default"]))
    conc = results.get("concurrency")
    if conc:
        sec = f"concurrency @{conc['config']['vectors']:,} (ordo-lite, {conc['config']['seconds']:.0f} s each)"
        for key in ("single", "concurrent"):
            r = conc[key]
            rows.append(
                (
                    sec,
                    f"{r['clients']} client(s) req/s, p50/p99",
                    f"{r['req_per_s']}  ({r.get('p50_ms')} / {r.get('p99_ms')} ms, {r['errors']} errors)",
                )
            )
        rows.append((sec, "ratio (target >= 3)", f"{conc['ratio']}  (load avg {conc['load_avg_1m']})"))
    soak = results.get("soak")
    if soak:
        sec = f"soak ({soak['config']['seconds']:.0f} s, ordo-lite)"
        for name, r in soak["clients"].items():
            rows.append(
                (
                    sec,
                    f"{name} x{r['clients']}: req/s, p50/p95/p99",
                    f"{r['req_per_s']}  ({r.get('p50_ms')} / {r.get('p95_ms')} / {r.get('p99_ms')} ms, "
                    f"{r['requests']} requests, {r['errors']} errors)",
                )
            )
        rows.append(
            (sec, "load average before / after", f"{soak['load_avg_1m']['before']} / {soak['load_avg_1m']['after']}")
        )
    if results.get("cpu_speed"):
        from bench.cpu_speed_bench import table_rows as cpu_rows

        rows.extend(cpu_rows(results["cpu_speed"]))
    if results.get("scale"):
        from bench.scale_bench import table_rows as scale_rows

        rows.extend(scale_rows(results["scale"]))
    if results.get("robustness"):
        from bench.robustness_bench import table_rows as robustness_rows

        rows.extend(robustness_rows(results["robustness"]))
    if results.get("map"):
        from bench.map_bench import table_rows as map_rows

        rows.extend(map_rows(results["map"]))
    if results.get("queue"):
        from bench.queue_bench import table_rows as queue_rows

        rows.extend(queue_rows(results["queue"]))
    for name, err in results.get("errors", {}).items():
        rows.append((name, "ERROR", err.splitlines()[0][:200] if err else "?"))
    return rows


def print_table(results: dict[str, Any]) -> None:
    rows = _rows(results)
    targets = results.get("targets", [])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for sec, metric, value in rows:
            print(f"{sec:<45} {metric:<34} {value}")
        for t in targets:
            print(f"TARGET {t['name']:<45} {t['target']:<10} {t['value']:<10} {'PASS' if t['passed'] else 'FAIL'}")
        return
    console = Console(width=max(140, Console().width))
    table = Table(title=f"Ordo benchmarks ({results['name']})", show_lines=False)
    for col in ("benchmark", "metric", "value"):
        table.add_column(col, overflow="fold")
    last = None
    for sec, metric, value in rows:
        table.add_row(sec if sec != last else "", metric, value, end_section=False)
        last = sec
    console.print(table)
    if targets:
        tt = Table(title="targets")
        for col in ("target", "wanted", "measured", "result"):
            tt.add_column(col)
        for t in targets:
            tt.add_row(
                t["name"], t["target"], str(t["value"]), "[green]PASS[/green]" if t["passed"] else "[red]FAIL[/red]"
            )
        console.print(tt)
    m = results["machine"]
    console.print(
        f"machine: {m['cpu_count']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), Python {m['python']}, "
        f"load avg at start {m.get('load_avg_1m')}; commit {results['git'].get('commit')}; "
        f"{results['duration_s']:.0f} s"
    )


# -------------------------------------------------------------------------------------------- main
def write_results(results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{results['name']}-{stamp}.json"
    text = json.dumps(results, indent=2, default=str) + "\n"
    path.write_text(text)
    latest = RESULTS_DIR / "latest.json"
    tmp = latest.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, latest)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "name": args.name,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(args).items()},
        "machine": machine_info(),
        "git": git_commit(),
        "errors": {},
    }
    # the 1M scale row builds for about an hour on 2 cores the first time: only with --only scale
    # cpu-speed tunes and runs four stacks (minutes): not part of the --quick smoke
    skipped = {"scale", "cpu-speed"} if args.quick else {"scale"}
    plan = [b for b in BENCHES if args.only == b or (args.only is None and b not in skipped)]
    for bench in plan:
        try:
            if bench == "cpu-speed":
                from bench import cpu_speed_bench

                results["cpu_speed"] = cpu_speed_bench.run(n_images=args.cpu_images, rounds=args.cpu_rounds)
            elif bench == "scale":
                from bench import scale_bench

                results["scale"] = scale_bench.run(n=args.scale_size, rebuild=args.rebuild)
            elif bench == "ordo-lite":
                from bench import ordo_lite_bench

                results["ordo_lite"] = ordo_lite_bench.run(n_images=24 if args.quick else 128)
            elif bench == "processing":
                from bench import processing_bench

                results["processing"] = processing_bench.run(
                    n_images=8 if args.quick else 16, n_receipts=4 if args.quick else 8, rounds=1 if args.quick else 2
                )
            elif bench == "distributed":
                from bench import distributed_bench

                results["distributed"] = distributed_bench.run(n_images=16 if args.quick else 48, keep=args.keep)
            elif bench == "analysis":
                from bench import analysis_bench

                # --quick: a 3k smoke of both sides (the naive t-SNE alone takes minutes at 10k)
                results["analysis"] = analysis_bench.run(sizes=[3_000] if args.quick else args.sizes)
                from bench import default_clustering_bench  # issue 15: the default (Leiden) at 100k and 1M

                results["analysis"]["default"] = default_clustering_bench.run(
                    (3_000,) if args.quick else (100_000, 1_000_000)
                )
            elif bench == "concurrency":
                from bench import concurrency_bench

                size = max(args.sizes) if not args.quick else 10_000
                results["concurrency"] = concurrency_bench.run(
                    size=size, seconds=8 if args.quick else 20, keep=args.keep
                )
            elif bench == "soak":
                from bench import soak

                results["soak"] = soak.run(seconds=10, keep=args.keep)
            elif bench == "robustness":
                from bench import robustness_bench

                results["robustness"] = robustness_bench.run(
                    rebuild_sizes=args.rebuild_sizes, pending=args.pending, keep=args.keep
                )
            elif bench == "map":
                from bench import map_bench

                results["map"] = map_bench.run(frames=90 if args.quick else 180)
            elif bench == "queue":
                from bench import queue_bench

                results["queue"] = queue_bench.run(n=300 if args.quick else 2000, keep=args.keep)
            elif bench == "ingest":
                from bench import ingest_throughput

                results["ingest"] = ingest_throughput.run(n_images=args.images, rounds=args.rounds, keep=args.keep)
            else:
                from bench import search_latency

                results["search"] = search_latency.run(
                    sizes=args.sizes, n_queries=args.queries, rebuild=args.rebuild, keep=args.keep
                )
        except KeyboardInterrupt:
            results["errors"][bench] = "interrupted"
            log(f"{bench}: interrupted")
            break
        except BenchError as exc:
            results["errors"][bench] = str(exc)
            log(f"{bench} could not run: {exc}")
        except Exception as exc:
            results["errors"][bench] = "".join(traceback.format_exception(exc))
            log(f"{bench} failed:\n{results['errors'][bench]}")
    results["targets"] = _targets(results)
    results["all_targets_passed"] = all(t["passed"] for t in results["targets"]) if results["targets"] else None
    results["duration_s"] = round(time.perf_counter() - started, 1)
    path = write_results(results)
    print_table(results)
    print(f"results: {path.relative_to(REPO_ROOT)} (and bench/results/latest.json)")
    if results["errors"]:
        return 1
    if args.strict and results["all_targets_passed"] is False:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
