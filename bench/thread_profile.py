"""Per-thread CPU of ``ordo up`` over one upload: where the stack's CPU per image goes (issue 18).

Starts a scratch stack (the model loaded as ``cpu-speed`` loads it), uploads a few photos to warm it, then for
each round reads every thread's CPU (``/proc/<pid>/task/*/stat``) before and after one upload of ``--images``
COCO photos, names the threads with ``py-spy dump`` when py-spy is installed (native threads keep their
``comm``), and prints ms of CPU per image per thread, the uploading client's and the stack's child processes'
(the index rebuild) CPU. Run it under ``/work/wt/cpu exclusive``; rows of one run compare, runs minutes apart
on a busy VM do not. ``python -m bench.thread_profile --model ordo-lite --images 96 --rounds 2``. To compare two
commits, alternate runs of this bench with ``PYTHONPATH=<checkout>/services`` naming each commit's checkout (the
scratch stack inherits it; the rate is upload start to the job's end, and the rate at which the upload was
acknowledged is printed beside it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import load_coco
from bench.cpu_speed_bench import _env, _stack_rate

CLK = os.sysconf("SC_CLK_TCK")


def _fields(stat: Path) -> list[str]:
    return stat.read_text().rsplit(")", 1)[1].split()


def threads(pid: int) -> dict[str, tuple[str, float, float]]:
    """Thread id → (comm, user CPU seconds, kernel CPU seconds) of every live thread of ``pid``."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            f = _fields(task / "stat")
            out[task.name] = ((task / "comm").read_text().strip(), int(f[11]) / CLK, int(f[12]) / CLK)
        except OSError:
            continue
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_fields(entry / "stat")[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def children_cpu(pid: int) -> float:
    """CPU seconds of ``pid``'s reaped children plus its live ones."""
    f = _fields(Path(f"/proc/{pid}/stat"))
    total = (int(f[13]) + int(f[14])) / CLK
    for kid in _children(pid):
        try:
            k = _fields(Path(f"/proc/{kid}/stat"))
            total += (int(k[11]) + int(k[12])) / CLK
        except OSError:
            continue
    return total


def python_names(pid: int) -> dict[str, str]:
    """Thread id → Python thread name (numbered suffixes dropped), from ``py-spy dump``; {} without py-spy."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return {}
    dump = subprocess.run([spy, "dump", "-p", str(pid), "--nonblocking"], capture_output=True, text=True).stdout
    names = {}
    for line in dump.splitlines():
        m = re.match(r'Thread (\S+) \([^)]*\): "([^"]*)"', line)
        if m:
            tid = m.group(1)
            names[str(int(tid, 16)) if tid.startswith("0x") else tid] = re.sub(r"[-_ ]?\d+$", "", m.group(2))
    return names


def main() -> None:
    from ordo.launch import scratch_stack

    parser = argparse.ArgumentParser(description="Per-thread CPU of ordo up over one upload.")
    parser.add_argument("--model", default="ordo-lite")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    files = load_coco().files
    with scratch_stack(args.model, env=_env(), timeout=900) as (client, _settings, _root):
        pid = _children(os.getpid())[0]
        _stack_rate(client, files[-8:])
        for rnd in range(args.rounds):
            batch = files[rnd * args.images : (rnd + 1) * args.images]
            before, kids_before, me_before = threads(pid), children_cpu(pid), os.times()
            rate = _stack_rate(client, batch)
            after, kids_after, me_after = threads(pid), children_cpu(pid), os.times()
            names = python_names(pid)
            rows: dict[str, float] = {}
            kernel: dict[str, float] = {}
            for tid, (comm, user, system) in after.items():
                _, user_before, system_before = before.get(tid, (comm, 0.0, 0.0))
                spent, spent_kernel = user + system - user_before - system_before, system - system_before
                if spent > 0.005:
                    name = names.get(tid, f"native:{comm}")
                    rows[name] = rows.get(name, 0.0) + spent
                    kernel[name] = kernel.get(name, 0.0) + spent_kernel
            n = len(batch)
            client_cpu = me_after.user - me_before.user + me_after.system - me_before.system
            print(
                f"round {rnd}: {rate['images_per_s']} img/s (upload acknowledged at {rate['acknowledged_per_s']}), "
                f"stack {1000 * sum(rows.values()) / n:.1f} ms CPU/img, "
                f"client {1000 * client_cpu / n:.1f}, child processes {1000 * (kids_after - kids_before) / n:.1f}"
            )
            for name, cpu in sorted(rows.items(), key=lambda r: -r[1]):
                print(f"   {name:28s} {1000 * cpu / n:6.1f} ms/img (kernel {1000 * kernel[name] / n:.1f})")


if __name__ == "__main__":
    main()
