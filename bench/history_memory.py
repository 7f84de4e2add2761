"""How much Redis memory does a year of a busy team's delivery history take?

    python -m bench.history_memory [--services 20] [--deploys 10] [--alerts 3] [--days 365]

Starts a real redis-server (no persistence) and writes, through the store's own functions
(bot/store/history.py), what opsloop keeps for /ops dora: per service and day, `--deploys`
rollouts (each with its lead time; one in ten rolled back) and `--alerts` incidents, spread over
`--days` days ending now. Prints Redis's `used_memory` before and after (INFO memory) and the
sum of `MEMORY USAGE` over the history keys. docs/dora.md quotes the result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from arq.connections import ArqRedis

from bench._common import Children, start_redis
from bot.feedback.history import Incident, LeadTime, RolloutRecord
from bot.store.history import HistoryStore

DAY = 86_400.0


async def write_service(
    store: HistoryStore, service: str, deploys: int, alerts: int, days: int, now: float
) -> int:
    """A service's year: returns the records written."""
    written = 0
    n = 0
    for day in range(days):
        base = now - (days - day) * DAY
        for i in range(deploys):
            n += 1
            start = base + i * DAY / deploys
            record = RolloutRecord(
                id=f"D-{service}-{n}",  # ids are global in opsloop: D-123456
                service=service,
                version=f"2.{day}.{i}",
                previous=f"2.{day}.{i - 1}" if i else f"2.{day - 1}.{deploys - 1}",
                started_at=start,
                started_by="U0123ABCDE",
                approved_by=["U0456FGHIJ"],
                state="complete",
                completed_at=start + 900,
            )
            if n % 10 == 0:  # one in ten rolled back after completing
                record.state = "rolled_back"
                record.rollback_asked_at = start + 1800
                record.rolled_back_at = start + 2000
                record.ended_by = "U0123ABCDE"
            await store.save_rollout(record)
            lead = LeadTime(
                id=record.id,
                seconds=7200.5,
                commits=4,
                oldest_commit_at=start - 7200,
                project=f"acme/{service}",
                kind="kubernetes",
            )
            await store.save_lead(service, lead)
            written += 2
        for i in range(alerts):
            fired = base + (i + 0.5) * DAY / alerts
            incident = Incident(
                ref=f"AL-{service}-{day * alerts + i}",
                service=service,
                fired_at=fired,
                resolved_at=fired + 1200,
                title="HighErrorRate: 5xx above 2% for 5 minutes",
            )
            await store.save_incident(incident)
            written += 1
    return written


async def measure(args: argparse.Namespace, port: int) -> None:
    redis = ArqRedis(host="127.0.0.1", port=port)
    store = HistoryStore(redis)
    before = int((await redis.info("memory"))["used_memory"])
    now = time.time()
    started = time.monotonic()
    names = [f"svc{i:02d}" for i in range(args.services)]
    counts = await asyncio.gather(
        *(write_service(store, s, args.deploys, args.alerts, args.days, now) for s in names)
    )
    after = int((await redis.info("memory"))["used_memory"])
    keys = [k async for k in redis.scan_iter(match="opsloop:history:*", count=1000)]
    usage = 0
    for key in keys:
        usage += int(await redis.memory_usage(key, samples=0) or 0)
    await redis.aclose()
    records = sum(counts)
    print(
        f"{args.services} services x {args.days} days x ({args.deploys} rollouts with their "
        f"lead times + {args.alerts} incidents): {records:,} records in "
        f"{time.monotonic() - started:.0f} s"
    )
    print(f"used_memory: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after")
    print(f"MEMORY USAGE of the {len(keys)} history keys: {usage / 2**20:.1f} MiB")
    print(f"per record: {usage / max(records, 1):.0f} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--deploys", type=int, default=10, help="rollouts per service and day")
    parser.add_argument("--alerts", type=int, default=3, help="incidents per service and day")
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="opsloop-bench-") as tmp:
        children = Children(Path(tmp))
        try:
            _, port, version = start_redis(children, dict(os.environ), time.monotonic() + 30)
            print(f"redis-server {version}")
            asyncio.run(measure(args, port))
        finally:
            children.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
