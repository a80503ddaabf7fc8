"""Outbound webhooks: the HTTP sender, the DNS resolver behind the address guard, the Standard Webhooks
signer and the job handlers."""

from ghl_adapters.webhooks.resolver import DnsResolver
from ghl_adapters.webhooks.sender import HttpxWebhookSender
from ghl_adapters.webhooks.signing import StandardWebhooksSigner

__all__ = ["DnsResolver", "HttpxWebhookSender", "StandardWebhooksSigner"]
