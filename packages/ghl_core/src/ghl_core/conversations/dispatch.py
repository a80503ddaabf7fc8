"""The provider calls of a delivery run: each message handed to its gateway, many at a time, and the
question asked after a lost answer (`find_sent`)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import cast

from ghl_core.conversations.gateways import (
    BulkEmailGateway,
    EmailMessage,
    SendFailed,
    SendResult,
    SmsMessage,
)
from ghl_core.conversations.providers import GatewayFactory, ProviderConfig


class ProviderCalls:
    def __init__(self, *, gateways: GatewayFactory) -> None:
        self._gateways = gateways

    async def send_all(
        self, calls: list[tuple[ProviderConfig | None, SmsMessage | EmailMessage]], concurrency: int
    ) -> list[SendResult | SendFailed]:
        """Each message handed to its provider, `concurrency` calls at a time; emails to a gateway that
        takes many per call (`BulkEmailGateway`) go in batches of its size. One answer per message."""
        answers: list[SendResult | SendFailed] = [SendFailed("not sent", permanent=False)] * len(calls)
        gate = asyncio.Semaphore(max(1, concurrency))
        bulk: dict[int, tuple[BulkEmailGateway, list[int]]] = {}
        singles: list[int] = []
        for index, (config, outbound) in enumerate(calls):
            if isinstance(outbound, EmailMessage):
                gateway = self._gateways.email(config)
                if hasattr(gateway, "send_emails"):
                    bulk.setdefault(id(gateway), (cast("BulkEmailGateway", gateway), []))[1].append(index)
                    continue
            singles.append(index)

        async def one(index: int) -> None:
            async with gate:
                try:
                    answers[index] = await self.send(*calls[index])
                except SendFailed as exc:
                    answers[index] = exc

        async def many(gateway: BulkEmailGateway, indexes: list[int]) -> None:
            async with gate:
                sent = await gateway.send_emails([cast("EmailMessage", calls[i][1]) for i in indexes])
            for index, answer in zip(indexes, sent, strict=True):
                answers[index] = answer

        batches = [
            many(gateway, indexes[start : start + gateway.max_batch])
            for gateway, indexes in bulk.values()
            for start in range(0, len(indexes), max(1, gateway.max_batch))
        ]
        await asyncio.gather(*(one(i) for i in singles), *batches)
        return answers

    async def send(self, config: ProviderConfig | None, outbound: SmsMessage | EmailMessage) -> SendResult:
        if isinstance(outbound, SmsMessage):
            return await self._gateways.sms(config).send_sms(outbound)
        return await self._gateways.email(config).send_email(outbound)

    async def find_sent(
        self,
        config: ProviderConfig | None,
        outbound: SmsMessage | EmailMessage,
        since: datetime,
    ) -> SendResult | None:
        if isinstance(outbound, SmsMessage):
            return await self._gateways.sms(config).find_sent(outbound, since)
        return await self._gateways.email(config).find_sent(outbound, since)
