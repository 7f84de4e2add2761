"""The bot's Redis: `Store` and the records it keeps. Key names are in `bot.store.keys`."""

from bot.store.core import AuditEntry, Store
from bot.store.slack import PendingUpdate

__all__ = ["AuditEntry", "PendingUpdate", "Store"]
