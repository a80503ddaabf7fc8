"""Transitional. The conversation service of old is split by responsibility: `sending`, `delivery`,
`receiving`, `reports` (provider callbacks and engagement) and `inbox`, with `sender.MessageSender` as
what campaigns and workflows send through. This module only re-exports the names the contexts above
imported from here while they move to the new modules; it goes when nothing imports it."""

from __future__ import annotations

from ghl_core.conversations.common import RECONCILE_KIND, SEND_KIND, system_actor
from ghl_core.conversations.drafts import Draft
from ghl_core.conversations.sender import MessageSender as ConversationService

__all__ = ["RECONCILE_KIND", "SEND_KIND", "ConversationService", "Draft", "system_actor"]
