"""Meta's messaging platform, shared by Messenger (Facebook Pages) and Instagram, and the
webhook checks WhatsApp's Cloud API has in common with them. Laid out like a provider:

- ``_signature.py``: ``X-Hub-Signature-256`` and the ``GET`` verification handshake (also
  WhatsApp's).
- ``_webhook.py`` (sans-io): the ``messaging`` envelope, parsed into normalized events.
- ``_api.py``: the Send API client (``RESPONSE``, then ``HUMAN_AGENT`` past 24 hours) and
  media downloads from Meta's CDN.
- ``_errors.py``: the Graph error body's ``code`` and ``error_subcode`` on the shared ladder.
- ``_apps.py``: what tells Messenger and Instagram apart; ``_spec.py``: their registry entry.
"""

from ._api import META_CDN_SUFFIXES as META_CDN_SUFFIXES
from ._api import MetaMessagingClient as MetaMessagingClient
from ._api import MetaMessagingConfig as MetaMessagingConfig
from ._api import attachment_type as attachment_type
from ._api import message_body as message_body
from ._apps import INSTAGRAM as INSTAGRAM
from ._apps import MESSENGER as MESSENGER
from ._apps import MetaApp as MetaApp
from ._errors import classify_instagram_error as classify_instagram_error
from ._errors import classify_messenger_error as classify_messenger_error
from ._errors import classify_meta_error as classify_meta_error
from ._signature import answer_meta_handshake as answer_meta_handshake
from ._signature import verify_meta_handshake as verify_meta_handshake
from ._signature import verify_meta_request as verify_meta_request
from ._signature import verify_meta_signature as verify_meta_signature
from ._spec import MetaSettings as MetaSettings
from ._spec import meta_spec as meta_spec
from ._webhook import check_accounts as check_accounts
from ._webhook import envelope_accounts as envelope_accounts
from ._webhook import parse_instagram as parse_instagram
from ._webhook import parse_messenger as parse_messenger
from ._webhook import parse_meta_messaging as parse_meta_messaging

__all__ = [
    "INSTAGRAM",
    "MESSENGER",
    "META_CDN_SUFFIXES",
    "MetaApp",
    "MetaMessagingClient",
    "MetaMessagingConfig",
    "MetaSettings",
    "answer_meta_handshake",
    "attachment_type",
    "check_accounts",
    "classify_instagram_error",
    "classify_messenger_error",
    "classify_meta_error",
    "envelope_accounts",
    "message_body",
    "meta_spec",
    "parse_instagram",
    "parse_messenger",
    "parse_meta_messaging",
    "verify_meta_handshake",
    "verify_meta_request",
    "verify_meta_signature",
]
