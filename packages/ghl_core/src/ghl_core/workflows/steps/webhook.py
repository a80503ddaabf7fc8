"""The outbound webhook step: the one effect we cannot take back. It runs outside the enrollment's
transaction and is sent at least once, always with the same `Idempotency-Key`, so the receiver can tell a
repeat. The address is checked against private networks when the step runs (it may hold merge fields),
and at publish when its scheme and host hold none; parsing checks only its shape. The body is canonical
JSON text, so the step stays immutable."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ghl_core.conversations.templates import merge_context, off_loop
from ghl_core.webhooks.addresses import UnsafeUrl
from ghl_core.workflows.models import StepRunStatus
from ghl_core.workflows.reading import MAX_WEBHOOK_BODY, Reader
from ghl_core.workflows.steps.base import Jump, Outcome, Placement, Simulator, StepContext, StepHandler
from ghl_core.workflows.values import TEMPLATE, Json, Step, ref

METHODS = ("POST", "PUT", "PATCH", "GET")
MAX_OUTPUT = 16_384


@dataclass(frozen=True, kw_only=True)
class Webhook(Step):
    TYPE = "webhook"
    url: str = field(metadata={**TEMPLATE, **ref("url")})
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = field(default=(), metadata={"pairs": True, **TEMPLATE})
    body_json: str | None = field(default=None, metadata={"json": True, "key": "body", **TEMPLATE})

    @property
    def body(self) -> Json:
        """A fresh copy of the JSON body (merge fields still unrendered), or None."""
        return None if self.body_json is None else json.loads(self.body_json)


class WebhookHandler(StepHandler[Webhook]):
    step = Webhook
    placement = Placement.OUTSIDE

    def read(self, r: Reader) -> dict[str, Any]:
        method = r.choice("method", METHODS, default="POST")
        body = r.get("body")
        body_json = None
        if body is not None:
            if method == "GET":
                r.fail("body", "a GET request has no body")
            body_json = r.canonical("body", body, MAX_WEBHOOK_BODY)
        return {
            "url": r.url("url"),
            "method": method,
            "headers": r.headers("headers"),
            "body_json": body_json,
        }

    async def run(self, ctx: StepContext, step: Webhook) -> Outcome:
        context = merge_context(ctx.contact, ctx.location)
        renderer = ctx.runner.renderer

        def rendered(value: Any) -> Any:
            if isinstance(value, str):
                return renderer.render(value, context, pointer="/body")
            if isinstance(value, list):
                return [rendered(v) for v in value]
            if isinstance(value, dict):
                return {k: rendered(v) for k, v in value.items()}
            return value

        def request() -> tuple[str, dict[str, str], Any]:
            return (
                renderer.render(step.url, context, pointer="/url"),
                {name: renderer.render(value, context, pointer="/headers") for name, value in step.headers},
                None if step.method == "GET" else rendered(step.body),
            )

        url, headers, payload = await off_loop(request, pointer="/url")  # one worker thread for them all
        try:
            target = await ctx.runner.guard.check(url)
        except UnsafeUrl as exc:
            return Outcome(
                StepRunStatus.FAILED,
                "refused",
                str(exc),
                output={"status": None, "error": str(exc)},
                error=str(exc),
            )
        headers |= {
            "Content-Type": "application/json",
            "Idempotency-Key": ctx.cause(step),
            "User-Agent": "ghl-workflows",
        }
        body = b"" if step.method == "GET" else json.dumps(payload, separators=(",", ":")).encode()
        result = await ctx.runner.sender.send(target, headers, body, method=step.method)
        output: dict[str, Any] = {"status": result.status_code, "error": result.error}
        raw = getattr(result, "response_body", None)
        if raw:
            try:
                output["body"] = json.loads(raw[:MAX_OUTPUT])
            except ValueError:
                output["body"] = raw[:MAX_OUTPUT].decode("utf-8", "replace")
        ok = result.status_code is not None and 200 <= result.status_code < 300
        return Outcome(
            StepRunStatus.DONE if ok else StepRunStatus.FAILED,
            f"http_{result.status_code}" if result.status_code is not None else "network_error",
            f"{step.method} {target.host} answered {result.status_code}"
            if result.status_code
            else str(result.error),
            output=output,
            error=None if ok else (result.error or f"status {result.status_code}"),
        )

    def simulate(self, sim: Simulator, step: Webhook) -> Jump | None:
        sim.note(step, "would_send", f"would call {step.method} {step.url}")
        return None
