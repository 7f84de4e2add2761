"""`POST /hooks/flagger`: Flagger's webhooks, answered within milliseconds.

Flagger posts `{name, namespace, phase, checksum, metadata}` (its `CanaryWebhookPayload`) and
reads only the status: 200-202 lets the canary go on; anything else, a time-out included (10 s
unless the webhook sets `timeout`), holds it until the next check (the analysis `interval`).
The body does not say which webhook calls, so each webhook of the Canary points at
`/hooks/flagger?type=<its type>`; `metadata.type` is read when the query has none.

So: 404 while OPSLOOP_FLAGGER_WEBHOOK_TOKEN is unset, 401 for a missing or wrong
`metadata.token`, 400 with the reason for a body Flagger would not send, 404 for a Canary no
service gates. A gate whose state cannot be read (Redis away) answers 403: not approved, and
Flagger asks again; an event is then only logged. Never a 5xx: Flagger would retry a 5xx at
once, and an error is no answer to "may I go on?".
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot import outages
from bot.deploys.flagger_gate import EVENT, HOOK_TYPES, Answer, FlaggerCall, FlaggerGate
from bot.deps import Deps
from bot.outages import REDIS

MAX_BODY_BYTES = 64 * 1024  # Flagger's bodies are a few hundred bytes
REDIS_WAIT = 3.0  # s; well inside Flagger's default 10 s webhook time-out
_TYPES = ", ".join(HOOK_TYPES)


class BadCall(Exception):
    """A body or query Flagger would not send; the message says what is wrong."""


def _text(body: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = body.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        what = "is missing" if value is None else "must be a string"
        raise BadCall(f"{field}: {what}")
    if required and not value.strip():
        raise BadCall(f"{field}: must not be empty")
    return value


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadCall("metadata: must be an object of strings, as Flagger sends it")
    return metadata


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; BadCall when it is not one."""
    if len(raw) > MAX_BODY_BYTES:
        raise BadCall(f"the body is over {MAX_BODY_BYTES // 1024} KiB; Flagger's are far smaller")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadCall("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadCall("the body must be a JSON object")
    return body


def parse_call(
    body: dict[str, Any], metadata: dict[str, str], query_type: str | None
) -> FlaggerCall:
    """The call Flagger made; BadCall naming the first thing wrong."""
    hook = query_type if query_type is not None else metadata.get("type")
    if not hook:
        raise BadCall(f"which webhook is calling? Add ?type=<webhook type> to its url ({_TYPES})")
    if hook not in HOOK_TYPES:
        raise BadCall(f"unknown webhook type {hook[:40]!r}; opsloop answers {_TYPES}")
    return FlaggerCall(
        hook=hook,
        name=_text(body, "name"),
        namespace=_text(body, "namespace"),
        phase=_text(body, "phase", required=False),
        checksum=_text(body, "checksum"),
        metadata=metadata,
    )


def _authorized(metadata: dict[str, str], token: str) -> bool:
    given = metadata.get("token", "")
    # Constant-time comparison: the token must not leak through response timing.
    return hmac.compare_digest(given.encode(), token.encode())


def flagger_hook(deps: Deps) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for POST /hooks/flagger."""

    async def handle(request: web.Request) -> web.Response:
        token = deps.settings.secret("flagger_webhook_token")
        if not token:
            raise web.HTTPNotFound(text="Not found: OPSLOOP_FLAGGER_WEBHOOK_TOKEN is unset.\n")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        try:
            body = parse_body(raw)
            metadata = _metadata(body)
        except BadCall as e:
            return web.Response(status=400, text=f"Invalid payload: {e}.\n")
        if not _authorized(metadata, token):
            return web.Response(
                status=401, text="Unauthorized: set metadata.token to opsloop's webhook token.\n"
            )
        try:
            call = parse_call(body, metadata, request.query.get("type"))
        except BadCall as e:
            return web.Response(status=400, text=f"Invalid payload: {e}.\n")
        gate = FlaggerGate(deps)
        service = gate.service_of(call.namespace, call.name)
        if service is None:
            return web.Response(
                status=404,
                text=(
                    f"No service in opsloop's YAML gates Canary {call.canary}: add one with "
                    f"deployer: flagger, namespace: {call.namespace}, canary: {call.name}.\n"
                ),
            )
        answer = await _answered(deps, gate, call, service)
        return web.Response(status=answer.status, text=answer.text)

    return handle


async def _answered(deps: Deps, gate: FlaggerGate, call: FlaggerCall, service: str) -> Answer:
    try:
        if call.hook == EVENT:
            answer = await asyncio.wait_for(gate.record_event(call, service), REDIS_WAIT)
        else:
            answer = await asyncio.wait_for(gate.answer(call, service), REDIS_WAIT)
    except Exception as e:
        # Fail closed: without its state the gate cannot say yes. An event is only lost.
        outages.redis_failure(e, f"answering Flagger's {call.hook} webhook for {call.canary}")
        if call.hook == EVENT:
            return Answer(200, "Not recorded: opsloop cannot reach its store (Redis) now.\n")
        return Answer(
            403,
            "Not approved: opsloop cannot reach its store (Redis) now; ask again later.\n",
        )
    if outages.down:
        outages.recovered(REDIS)
    return answer
