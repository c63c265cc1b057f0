"""The thread actor: one per ``(channel, business account, customer)``; the business decisions
of delivering its journal entries (inbound, teammate reply, send API, delivery status), while
:mod:`actors.delivery` owns the plumbing around them. The jobs it handles (what the ingress
journals) and the contact resolver it uses are exported with it."""

from .._contacts import ContactResolver as ContactResolver
from .._jobs import ApiSendJob as ApiSendJob
from .._jobs import InboundJob as InboundJob
from .._jobs import ReplyJob as ReplyJob
from .._jobs import StatusJob as StatusJob
from .._jobs import encode_job as encode_job
from ._actor import ThreadActor as ThreadActor
from ._base import ConversationGone as ConversationGone
from ._base import Services as Services

__all__ = [
    "ApiSendJob",
    "ContactResolver",
    "ConversationGone",
    "InboundJob",
    "ReplyJob",
    "Services",
    "StatusJob",
    "ThreadActor",
    "encode_job",
]
