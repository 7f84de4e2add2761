"""Slack toward the bot: the Bolt app, and the aiohttp boundary in front of it.

The boundary checks the signature (401 on a bad, stale or missing one; Bolt's own check is
turned off, so it runs once) and refuses what Bolt or a job would fail on (bodies that are not
UTF-8, broken JSON, a `payload` that is not a JSON object, a body of the wrong shape: see
bot.slack_shapes) with a 400 that says what is wrong, before anything is stored. A kind of
request no listener takes gets Bolt's 404 without reaching Bolt. Bolt then runs the listener
inline (`process_before_response=True`): our listeners only enqueue and ack, so the answer goes
out as soon as the job is stored, instead of after Bolt's default 10 ms ack polling.

A slash command's form is parsed here, once: Bolt's own parse takes any form body containing
the word "payload" for an interactive payload and, finding no `payload` field, makes it empty,
so `/task Check the payload size` would match no listener and fail with a 404. With the form in
hand, a signed slash command whose work is all in its job is answered here without Bolt
(`bot.durable.job_without_bolt`): its job is stored, and the ack is empty once Redis confirms
it, as the listener's would be. Bolt's dispatch would decide nothing for such a request, and
skipping it is most of what brings the ack's cost down to a bare Bolt app's (README, "Ack
latency"). Everything else goes through Bolt: clicks, modals, events, and commands answered in
the ack (bad input, inline subcommands).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot import outages
from bot.deps import Deps
from bot.durable import job_without_bolt, stored_ack
from bot.errors import log_unexpected
from bot.outages import REDIS
from bot.replies import unexpected_error
from bot.slack_shapes import HANDLED, form_problem, payload_problem

log = logging.getLogger(__name__)


class BotIdentity:
    """Who the bot is in Slack (auth.test), learned in the background.

    Bolt's single-workspace mode calls auth.test inline on the first request, so a slow or
    unreachable Slack would delay that ack past Slack's 3 s. Here the identity is fetched at
    start-up and requests are authorized from it, or from the token alone until it is known.
    """

    RETRY_SECONDS = 5.0

    def __init__(self, client: AsyncWebClient, token: str) -> None:
        self._client = client
        self.token = token
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None

    async def learn(self) -> None:
        """Ask auth.test until it answers (a background task)."""
        while self.bot_user_id is None:
            try:
                auth = await self._client.auth_test(token=self.token)
                self.bot_user_id = auth.get("user_id")
                self.bot_id = auth.get("bot_id")
            except Exception as e:
                log.warning("Slack auth.test failed (%s); retrying", type(e).__name__)
                await asyncio.sleep(self.RETRY_SECONDS)


class IdentityAuthorize(AsyncAuthorize):
    """Bolt's `authorize` from the BotIdentity; a subclass, since Bolt re-inspects a plain
    function's arguments on every call."""

    def __init__(self, identity: BotIdentity) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.identity = identity

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=self.identity.token,
            bot_user_id=self.identity.bot_user_id,
            bot_id=self.identity.bot_id,
            user_id=user_id,
        )


def _bolt_logger() -> logging.Logger:
    # Bolt guards its debug strings with `level <= DEBUG`; a logger left at NOTSET passes that
    # guard and builds them on every request. Our log level applies to Bolt only from WARNING.
    logger = logging.getLogger("slack_bolt")
    if logger.level == logging.NOTSET:
        logger.setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    return logger


def build_bolt_app(deps: Deps, identity: BotIdentity, base_url: str) -> AsyncApp:
    """The Bolt app with every command family registered and one error handler."""
    from commands import FAMILIES

    app = AsyncApp(
        # No token on Bolt's own client: authorization comes from `identity`, never inline.
        client=AsyncWebClient(base_url=base_url),
        authorize=IdentityAuthorize(identity),
        signing_secret=deps.settings.secret("slack_signing_secret") or "",
        # Every HTTP request's signature is checked once, in front of Bolt, by
        # slack_events_handler (Bolt's docs: turn this off when a proxy in front verifies).
        # Socket Mode requests carry no signature and Bolt skips them anyway.
        request_verification_enabled=False,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        logger=_bolt_logger(),
    )

    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        # Listeners turn known errors into messages themselves; this is for the unknown ones.
        ref = log_unexpected(error, f"Slack request {body.get('command') or body.get('type')}")
        reply = unexpected_error(ref)
        payload = {"response_type": "ephemeral", "text": reply.text}
        return BoltResponse(
            status=200, body=json.dumps(payload), headers={"content-type": "application/json"}
        )

    app.error(on_error)
    for family in FAMILIES:
        family.register(app, deps)
    return app


class Inspected(NamedTuple):
    """What the boundary learned of a signed body before anyone reads it."""

    problem: str | None  # why it gets a 400, or None
    kind: str  # for the ack-latency histogram: "command", a HANDLED payload type, or "other"
    form: dict[str, str] | None = None  # a slash command's parsed form
    handled: bool = True  # False: a kind of request no listener takes


def _json_object(text: str, what: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a body nested thousands deep
        return None, f"{what} is not valid JSON"
    if not isinstance(data, dict):
        return None, f"{what} must be a JSON object"
    return data, None


def _inspect_payload(body: dict[str, Any]) -> Inspected:
    kind = body.get("type")
    if not isinstance(kind, str):
        return Inspected("`type` must be a string naming the kind of request", "other")
    if kind not in HANDLED:
        return Inspected(None, "other", handled=False)
    return Inspected(payload_problem(body), kind)


def inspect_body(text: str, content_type: str) -> Inspected:
    """What a signed body is, and what is wrong with it before Bolt or a job reads it.

    Mirrors Bolt's own body parsing (slack_bolt/request/internals.py `parse_body`): JSON, a
    form whose `payload` field holds JSON, or a plain form. A slash command's form is checked
    for its `command` only, so that its ack stays as fast as a bare Bolt app's; the rest of its
    shape matters only if it goes on to Bolt (`form_problem`). See bot.slack_shapes.
    """
    if content_type == "application/json" or text.startswith("{"):
        data, problem = _json_object(text, "the body")
        return _inspect_payload(data) if data is not None else Inspected(problem, "other")
    params = dict(parse_qsl(text, keep_blank_values=True))
    raw = params.get("payload") if "payload" in text else None
    if raw is None:
        command = params.get("command")
        if command is not None:
            if not command.startswith("/"):
                return Inspected("`command` must start with /", "command")
            return Inspected(None, "command", params)
        if "payload" in text:
            return Inspected(None, "other")  # Bolt reads such a form as {}
        return Inspected(form_problem(params), "other")  # Slack's ssl_check, or junk
    payload, problem = _json_object(raw, "`payload`")
    return _inspect_payload(payload) if payload is not None else Inspected(problem, "other")


def form_request(
    text: str,
    form: dict[str, str],
    query: str,
    headers: Mapping[str, str],
) -> AsyncBoltRequest:
    """Bolt's request for a form body parsed already (a slash command).

    AsyncBoltRequest takes a parsed body only in Socket Mode, so the request is built that way
    and then marked as the HTTP request it is, with its raw body as Bolt would keep it.
    """
    request = AsyncBoltRequest(
        body=form,
        query=query,
        headers=headers,  # type: ignore[arg-type]  # Bolt reads headers through .items()
        mode="socket_mode",
    )
    request.raw_body = text
    request.mode = "http"
    return request


def _signed(verifier: SignatureVerifier, text: str, headers: Mapping[str, str]) -> bool:
    try:
        return verifier.is_valid(
            text,
            headers.get("X-Slack-Request-Timestamp", "0"),
            headers.get("X-Slack-Signature", ""),
        )
    except (ValueError, TypeError):
        # slack-sdk raises on a timestamp that is not a number (int()) and on a signature
        # with non-ASCII characters (hmac.compare_digest): neither is Slack's.
        return False


def _empty_ack() -> web.Response:
    """Bolt's answer to `await ack()`, as its aiohttp adapter writes it."""
    return web.Response(status=200, body=b"", content_type="text/plain")


def _malformed(problem: str) -> web.Response:
    return web.Response(status=400, text=f"Malformed Slack request: {problem}.\n")


def _unhandled() -> web.Response:
    """Bolt's answer to a request no listener takes."""
    return web.json_response({"error": "unhandled request"}, status=404)


async def _dispatch(
    bolt: AsyncApp, text: str, form: dict[str, str] | None, query: str, headers: Mapping[str, str]
) -> web.StreamResponse:
    """Bolt's answer to a request (listeners' errors are answered by the app's error handler).

    The body's shape was checked (bot.slack_shapes), so Bolt failing on it is a gap in that
    check or a bug: it gets a 400 and one log entry under a reference, never a 5xx, which Slack
    would retry and show as a failure.
    """
    try:
        if form is not None:
            bolt_request = form_request(text, form, query, headers)
        else:
            # As Bolt's own aiohttp adapter does: Bolt reads headers through .items().
            bolt_request = AsyncBoltRequest(body=text, query=query, headers=headers)  # type: ignore[arg-type]
        bolt_response = await bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)
    except Exception as e:
        ref = log_unexpected(e, "reading a Slack request")
        return _malformed(f"opsloop could not read it (reference {ref})")


def slack_events_handler(bolt: AsyncApp, deps: Deps) -> Any:
    """The aiohttp handler for POST /slack/events.

    It checks the signature, as Bolt's own check would (Bolt's is turned off, since a slash
    command answered here never reaches Bolt): 401 on a bad, stale or missing one. Without a
    signing secret (a Socket Mode deployment) every request here gets a 401.
    """
    secret = deps.settings.secret("slack_signing_secret")
    verifier = SignatureVerifier(secret) if secret else None

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        raw = await request.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return web.Response(status=400, text="The request body is not UTF-8.\n")
        headers = request.headers
        if verifier is None or not _signed(verifier, text, headers):
            return web.json_response({"error": "invalid request"}, status=401)  # Bolt's answer
        # Not request.content_type: it parses the header with the email package, which costs
        # more than the rest of this check.
        content_type = headers.get("Content-Type", "").partition(";")[0].strip().lower()
        problem, kind, form, handled = inspect_body(text, content_type)
        if problem:
            return _malformed(problem)
        if not handled:
            return _unhandled()
        job = job_without_bolt(bolt, form) if form is not None else None
        response: web.StreamResponse
        if job is not None:
            answer = await stored_ack(deps, *job)
            if answer is None and outages.down:
                outages.recovered(REDIS)
            # As Bolt answers an empty ack, or an ack with a message.
            response = web.json_response(answer) if answer else _empty_ack()
        else:
            if form is not None and (problem := form_problem(form)):
                return _malformed(problem)
            response = await _dispatch(bolt, text, form, request.query_string, headers)
        deps.metrics.ack(kind).observe(time.perf_counter() - started)
        return response

    return handle
