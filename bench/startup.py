"""What does starting opsloop cost, next to a bare slack-bolt app?

    python -m bench.startup [--runs N] [--json PATH]

Two commands, each run N times as fresh processes, alternating so that a neighbour's burst
hits both alike: `opsloop --help` (the console script: settings, the CLI, everything its
imports load) and a bare slack-bolt app that only builds its `AsyncApp` (the floor any Bolt bot
pays). For each: wall time from spawn to exit, and peak resident memory (the child's own
`ru_maxrss`, read with wait4, so nothing else in the machine counts). Printed as medians,
p90 and the ratio opsloop / bare. Also the number of modules `opsloop --help` imported and
whether it imported an SDK (python-gitlab, docker) that no configured system needs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench._common import REPO, opsloop_argv

# The floor: import slack-bolt and build the app, as every Bolt bot does before anything else.
BARE_BOLT = (
    "from slack_bolt.async_app import AsyncApp\n"
    "AsyncApp(token='xoxb-bench', signing_secret='bench')\n"
)
# What `opsloop --help` imported: run the console script's entry point in-process, then list.
IMPORTS = (
    "import sys, contextlib, io\n"
    "sys.argv = ['opsloop', '--help']\n"
    "from bot.cli import main\n"
    "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
    "    main()\n"
    "names = sorted(sys.modules)\n"
    "print(len(names), ' '.join(n for n in ('gitlab', 'docker', 'requests') if n in names))\n"
)


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_mib: float


def measure(argv: list[str]) -> Run:
    """One fresh process: wall time to exit and its own peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=_env()
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {child.returncode}")
    return Run(seconds=seconds, max_rss_mib=usage.ru_maxrss / 1024)  # KiB on Linux


def _env() -> dict[str, str]:
    # No .env or YAML of a developer's may change what is loaded.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env["OPSLOOP_CONFIG_FILE"] = os.devnull
    return env


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="processes per command (15)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    targets = {
        "opsloop --help": opsloop_argv("--help"),
        "bare Bolt AsyncApp": [sys.executable, "-c", BARE_BOLT],
    }
    for argv_ in targets.values():  # warm the page cache once, unmeasured
        measure(argv_)
    runs: dict[str, list[Run]] = {name: [] for name in targets}
    for i in range(args.runs):
        order = list(targets) if i % 2 == 0 else list(reversed(targets))
        for name in order:
            runs[name].append(measure(targets[name]))
    imported = subprocess.run(
        [sys.executable, "-c", IMPORTS],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    lines, figures = _report(runs, int(imported[0]), imported[1:])
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def _report(
    runs: dict[str, list[Run]], modules: int, sdks: list[str]
) -> tuple[list[str], dict[str, object]]:
    """The printed table, and the figures for --json."""
    figures: dict[str, dict[str, float]] = {}
    for name, done in runs.items():
        times = [r.seconds for r in done]
        rss = [r.max_rss_mib for r in done]
        figures[name] = {
            "runs": len(done),
            "seconds_median": statistics.median(times),
            "seconds_p90": p90(times),
            "max_rss_mib_median": statistics.median(rss),
        }
    ops, bare = figures["opsloop --help"], figures["bare Bolt AsyncApp"]
    lines = [
        f"{'':22} {'runs':>5} {'median s':>9} {'p90 s':>7} {'peak RSS MiB':>13}",
        *(
            f"{name:22} {f['runs']:5.0f} {f['seconds_median']:9.3f} {f['seconds_p90']:7.3f} "
            f"{f['max_rss_mib_median']:13.1f}"
            for name, f in figures.items()
        ),
        "",
        f"opsloop / bare: time {ops['seconds_median'] / bare['seconds_median']:.2f}x, "
        f"memory {ops['max_rss_mib_median'] / bare['max_rss_mib_median']:.2f}x",
        f"`opsloop --help` imported {modules} modules; SDKs of systems not configured: "
        + (", ".join(sdks) or "none"),
    ]
    return lines, {**figures, "modules": modules, "sdks_loaded": sdks}


if __name__ == "__main__":
    raise SystemExit(main())
