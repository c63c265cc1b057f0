"""The thread actor: one per ``(channel, business account, customer)``; the business decisions
of delivering its journal entries (inbound, teammate reply, send API, delivery status), while
:mod:`actors.delivery` owns the plumbing around them."""

from .._contacts import ContactResolver as ContactResolver
from ._actor import ThreadActor as ThreadActor
from ._base import ConversationGone as ConversationGone
from ._base import Services as Services

__all__ = ["ContactResolver", "ConversationGone", "Services", "ThreadActor"]
