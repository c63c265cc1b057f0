"""The bridge's business: what a customer's message and a teammate's reply become.

- :class:`ThreadActor` — one per ``(channel, business account, customer)``; its branches
  (inbound, teammate reply, send API, delivery status) decide what to do with each journal
  entry, while :mod:`actors.delivery` owns the plumbing around them.
- :class:`ContactResolver` — finds or creates the Intercom contact, once per identity.
- The jobs the ingress journals (:class:`InboundJob`, :class:`ReplyJob`, :class:`ApiSendJob`,
  :class:`StatusJob`) and the journal state keys they share; the :class:`Gateway` to the
  channels' clients; media storage; WhatsApp templates; delivery receipts.
"""

from ._actor import ThreadActor as ThreadActor
from ._base import ConversationGone as ConversationGone
from ._base import Services as Services
from ._base import ThreadOptions as ThreadOptions
from ._contacts import ContactResolver as ContactResolver
from ._gateway import Gateway as Gateway
from ._jobs import RECENT_MESSAGES as RECENT_MESSAGES
from ._jobs import SENT_MESSAGE_PREFIX as SENT_MESSAGE_PREFIX
from ._jobs import ApiSendJob as ApiSendJob
from ._jobs import InboundJob as InboundJob
from ._jobs import OutboundAttachment as OutboundAttachment
from ._jobs import ReplyJob as ReplyJob
from ._jobs import SentRecord as SentRecord
from ._jobs import StatusJob as StatusJob
from ._jobs import ThreadState as ThreadState
from ._jobs import contact_intent_key as contact_intent_key
from ._jobs import conversation_index_key as conversation_index_key
from ._jobs import decode_job as decode_job
from ._jobs import direction_of as direction_of
from ._jobs import encode_job as encode_job
from ._jobs import identity_key as identity_key
from ._jobs import opening_key as opening_key
from ._jobs import reply_job as reply_job
from ._jobs import sent_message_key as sent_message_key
from ._jobs import thread_state_key as thread_state_key
from ._media import DirectoryMediaStore as DirectoryMediaStore
from ._media import JournalMediaStore as JournalMediaStore
from ._media import MediaNotStored as MediaNotStored
from ._media import MediaStore as MediaStore
from ._media import content_disposition as content_disposition
from ._media import safe_mime_type as safe_mime_type
from ._outgoing import reply_blocks as reply_blocks
from ._phones import phone_forms as phone_forms
from ._receipts import FAILED_STATUSES as FAILED_STATUSES
from ._receipts import status_label as status_label
from ._templates import ApiTemplate as ApiTemplate
from ._templates import TemplateCatalog as TemplateCatalog
from ._templates import TemplateRefused as TemplateRefused
from ._templates import TemplatesUnavailable as TemplatesUnavailable
from ._templates import api_send_problem as api_send_problem
from ._templates import opens_thread as opens_thread
from ._templates import outside_window as outside_window
from ._templates import render as render

__all__ = [
    "ApiSendJob",
    "ApiTemplate",
    "ContactResolver",
    "ConversationGone",
    "DirectoryMediaStore",
    "FAILED_STATUSES",
    "Gateway",
    "InboundJob",
    "JournalMediaStore",
    "MediaNotStored",
    "MediaStore",
    "OutboundAttachment",
    "RECENT_MESSAGES",
    "ReplyJob",
    "SENT_MESSAGE_PREFIX",
    "SentRecord",
    "Services",
    "StatusJob",
    "TemplateCatalog",
    "TemplateRefused",
    "TemplatesUnavailable",
    "ThreadActor",
    "ThreadOptions",
    "ThreadState",
    "api_send_problem",
    "contact_intent_key",
    "content_disposition",
    "conversation_index_key",
    "decode_job",
    "direction_of",
    "encode_job",
    "identity_key",
    "opening_key",
    "opens_thread",
    "outside_window",
    "phone_forms",
    "render",
    "reply_blocks",
    "reply_job",
    "safe_mime_type",
    "sent_message_key",
    "status_label",
    "thread_state_key",
]
