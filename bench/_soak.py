"""The HA soak's load: what is sent, when, to which replica, and how each sender retries.

Every request is an `Item` that can be told apart in what it leaves behind: a task's title and a
build's `SOAK=<n>` variable are unique in the run, a help request has its own response_url, and
an alert group its own alertname. Items start at planned moments spread over the load's length
(seeded, so a run can be repeated), each sent to one of two replicas; at most `concurrency`
requests are in flight.

How the senders behave, as the real ones do:
- Slack sends a delivery again when it got no 2xx within 3 s (a time-out, a refused connection,
  a 5xx): the same body with `X-Slack-Retry-Num` 1, 2, 3 (after 1, 3 and 8 s here; Slack's own
  pauses are longer), through the load balancer, so to the other replica while one is down. A
  share of deliveries (`slack_retry`) is sent again to the other replica anyway, within about a
  second, as Slack does after an ack that was merely slow.
- A person whose command was answered "try again" types it again (a new delivery: new
  trigger_id and response_url, same text), up to twice; told to wait, they wait.
- Alertmanager posts a group's notifications in order, the next once the last was accepted,
  and repeats one after a 5xx or no answer (after 1, 2, 4, 8 ... s).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.sandbox.alerts import alert_entry, notification
from bot.sandbox.emulators.slack import DriverRequest, DriverResponse, SlackDriver

PERSON = "U0ALICE"
TASK_CHANNELS = ("C0WEB", "C0GENERAL")
BUILD_CHANNEL = "C0DEPLOYS"
HELP_CHANNEL = "C0GENERAL"
ALERT_CHANNELS = {"critical": "C0INCIDENT", "warning": "C0ALERTS"}
SLACK_RETRY_PAUSES = (1.0, 3.0, 8.0)
SLOW_ACK_RETRY_WITHIN = 1.0
RETYPES = 2
RETYPE_PAUSE = 3.0
ALERTMANAGER_TIMEOUT = 10.0
ALERTMANAGER_PAUSES = (1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0)
KINDS = ("task", "build", "help", "alert")


@dataclass
class Item:
    """One request as its sender means it, and what became of its deliveries."""

    kind: str
    key: str  # task: title; build: SOAK value; help: n; alert: alertname/notification
    at: float  # seconds after the load starts
    replica: int  # where the sender first sends it (0 or 1)
    slack_retry: float | None = None  # seconds after the first delivery Slack sends it again
    command: str = ""
    text: str = ""
    channel: str = ""
    body: bytes = b""  # an alert notification
    group: str = ""  # alert: the alertname, unique per group
    state: str = ""  # alert: the headline state it leaves the group in (FIRING:n, RESOLVED)
    statuses: list[int] = field(default_factory=list)  # every answer; 0: none or no connection
    # (seconds into the load, replica it reached, status) of every delivery, for the report
    trace: list[tuple[float, int, int]] = field(default_factory=list)
    acked: bool = False
    said: Counter[str] = field(default_factory=Counter)  # texts of acks that said something
    response_urls: list[str] = field(default_factory=list)

    @property
    def deliveries(self) -> int:
        return len(self.statuses)

    @property
    def server_errors(self) -> int:
        return sum(1 for s in self.statuses if s >= 500)


def plan(
    run: str,
    *,
    tasks: int,
    builds: int,
    helps: int,
    groups: int,
    per_group: int,
    seconds: float,
    retry_share: float,
    seed: int,
) -> list[Item]:
    """Every item of the load, in no particular order."""
    rnd = random.Random(seed)
    items: list[Item] = []

    def slack(kind: str, key: str, command: str, text: str, channel: str) -> Item:
        retried = rnd.random() < retry_share
        return Item(
            kind,
            key,
            at=rnd.uniform(0, seconds),
            replica=rnd.randrange(2),
            slack_retry=rnd.uniform(0, SLOW_ACK_RETRY_WITHIN) if retried else None,
            command=command,
            text=text,
            channel=channel,
        )

    for n in range(tasks):
        title = f"soak {run} task {n:03d}"
        items.append(slack("task", title, "/task", title, TASK_CHANNELS[n % 2]))
    for n in range(builds):
        key = f"{run}-{n:03d}"
        items.append(slack("build", key, "/build", f"web main SOAK={key}", BUILD_CHANNEL))
    for n in range(helps):
        items.append(slack("help", str(n), "/ops", "help", HELP_CHANNEL))
    items += alert_items(run, groups, per_group, seconds, rnd)
    return items


def alert_items(
    run: str, groups: int, per_group: int, seconds: float, rnd: random.Random
) -> list[Item]:
    """Each group's notifications: the first with one alert firing, then more firing, the last
    (when there are at least two) with all of them resolved, `group_interval` apart."""
    out = []
    interval = min(5.0, seconds / (2 * max(per_group, 1)))
    now = time.time()
    for g in range(groups):
        alertname = f"Soak{run}G{g:02d}"
        severity = "critical" if g % 4 == 0 else "warning"
        start = rnd.uniform(0, max(seconds - interval * per_group, 0))
        labels = {"alertname": alertname, "service": "web", "severity": severity}
        instances = [
            ({**labels, "instance": f"web-{i}:9100"}, now - 60 + i)
            for i in range(max(per_group - 1, 1))
        ]
        summary = {"summary": f"{alertname} on web"}
        for k in range(per_group):
            if k == per_group - 1 and per_group > 1:
                alerts = [alert_entry(lb, summary, at, now - 1) for lb, at in instances]
                state = "RESOLVED"
            else:
                alerts = [alert_entry(lb, summary, at) for lb, at in instances[: k + 1]]
                state = f"FIRING:{len(alerts)}"
            body = notification(f'{{}}:{{alertname="{alertname}"}}', labels, alerts)
            out.append(
                Item(
                    "alert",
                    f"{alertname}/{k}",
                    at=start + k * interval,
                    replica=(g + k) % 2,
                    body=json.dumps(body, separators=(",", ":")).encode(),
                    channel=ALERT_CHANNELS[severity],
                    group=alertname,
                    state=state,
                )
            )
    return out


# -- sending --------------------------------------------------------------------------------


class Replicas:
    """Where a request meant for replica i goes: there, unless it is down (a load balancer's
    health check has taken it out), then to the other one."""

    def __init__(self, base_urls: list[str]) -> None:
        self.base_urls = base_urls
        self.down: set[int] = set()

    def route(self, i: int) -> int:
        return 1 - i if i in self.down and (1 - i) not in self.down else i


@dataclass
class Sender:
    """Sends items as Slack, a person and Alertmanager would, through `replicas`."""

    replicas: Replicas
    drivers: list[SlackDriver]  # one per replica, same emulator
    http: aiohttp.ClientSession
    alert_token: str
    concurrency: int
    started: float = field(default_factory=time.monotonic)
    _slots: asyncio.Semaphore = field(init=False)
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def run(self, items: list[Item]) -> None:
        """Send every item at its moment; returns once each was acknowledged or given up."""
        self.started = time.monotonic()
        by_group: dict[str, list[Item]] = {}
        work: list[Coroutine[Any, Any, None]] = []
        for item in items:
            if item.kind == "alert":
                by_group.setdefault(item.group, []).append(item)
            else:
                work.append(self._at(item.at, self.slash(item)))
        for group in by_group.values():
            work.append(self.alert_group(sorted(group, key=lambda i: i.at)))
        await asyncio.gather(*work)
        await asyncio.gather(*self._background)

    async def _at(self, at: float, send: Awaitable[None]) -> None:
        await asyncio.sleep(max(at - (time.monotonic() - self.started), 0))
        await send

    async def _slot(self, send: Callable[[], Awaitable[DriverResponse]]) -> DriverResponse:
        async with self._slots:
            return await send()

    # -- Slack --------------------------------------------------------------------------

    async def slash(self, item: Item) -> None:
        """A person types the command; Slack delivers and retries; the person retypes."""
        for typing in range(RETYPES + 1):
            if typing:
                await asyncio.sleep(RETYPE_PAUSE)
            request = self.drivers[0].command_request(
                item.command, item.text, user=PERSON, channel=item.channel
            )
            item.response_urls.append(str(request.fields["response_url"]))
            if item.slack_retry is not None and not typing:
                self._spawn(self._slow_ack_retry(item, request))
            answer = await self._deliver_until_acked(item, request)
            if item.acked or not _says_try_again(answer):
                return

    async def _deliver_until_acked(self, item: Item, request: DriverRequest) -> DriverResponse:
        answer = await self._deliver(item, request, item.replica, None)
        for n, pause in enumerate(SLACK_RETRY_PAUSES, start=1):
            # Slack repeats only a delivery that got no 2xx in time; an ack with text is an
            # answer (the person reads it).
            if answer.ok:
                break
            await asyncio.sleep(pause)
            answer = await self._deliver(item, request, item.replica, n)
        return answer

    async def _slow_ack_retry(self, item: Item, request: DriverRequest) -> None:
        await asyncio.sleep(item.slack_retry or 0.0)
        await self._deliver(item, request, 1 - item.replica, 1)

    async def _deliver(
        self, item: Item, request: DriverRequest, replica: int, retry_num: int | None
    ) -> DriverResponse:
        target = self.replicas.route(replica)
        driver = self.drivers[target]
        answer = await self._slot(
            lambda: driver.deliver(request, retry_num=retry_num, retry_reason="http_timeout")
        )
        self._note(item, target, answer.status)
        if answer.ok and not answer.body.strip():
            item.acked = True
        elif answer.ok:
            item.said[gist(answer.body)] += 1
        return answer

    # -- Alertmanager -------------------------------------------------------------------

    async def alert_group(self, notifications: list[Item]) -> None:
        for item in notifications:
            await self._at(item.at, self.alert(item))

    async def alert(self, item: Item) -> None:
        for pause in (0.0, *ALERTMANAGER_PAUSES):
            await asyncio.sleep(pause)
            target = self.replicas.route(item.replica)
            status = await self._post_alert(item, target)
            self._note(item, target, status)
            if 200 <= status < 300:
                item.acked = True
                return
            if 400 <= status < 500:
                return  # Alertmanager does not repeat a 4xx

    def _note(self, item: Item, replica: int, status: int) -> None:
        item.statuses.append(status)
        item.trace.append((round(time.monotonic() - self.started, 2), replica, status))

    async def _post_alert(self, item: Item, replica: int) -> int:
        url = self.replicas.base_urls[replica] + "/hooks/alertmanager"
        headers = {
            "Authorization": f"Bearer {self.alert_token}",
            "Content-Type": "application/json",
        }
        timeout = aiohttp.ClientTimeout(total=ALERTMANAGER_TIMEOUT)
        async with self._slots:
            try:
                async with self.http.post(
                    url, data=item.body, headers=headers, timeout=timeout
                ) as resp:
                    await resp.read()
                    return resp.status
            except (aiohttp.ClientError, TimeoutError):
                return 0

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _says_try_again(answer: DriverResponse) -> bool:
    """The ack told the person to type it again (not to wait for it)."""
    text = answer.body.lower()
    return answer.ok and "try again" in text and "wait" not in text


def gist(body: str) -> str:
    """An ack's text without its per-request reference, so equal answers count together."""
    try:
        text = str(json.loads(body).get("text", body))
    except (ValueError, AttributeError):
        text = body
    return " ".join(w for w in text.split() if not w.strip("`(),.").startswith("E-"))[:160]
