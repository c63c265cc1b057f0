"""Twilio Messaging (SMS/MMS and the WhatsApp sender): webhooks (``_webhook.py``), the REST
calls and client (``_api.py``) and its registry entry (``_channel.py``)."""

from ._api import TwilioClient as TwilioClient
from ._api import TwilioConfig as TwilioConfig
from ._api import classify_twilio_error as classify_twilio_error
from ._api import message_form as message_form
from ._channel import TWILIO as TWILIO
from ._channel import TwilioSettings as TwilioSettings
from ._webhook import parse_twilio as parse_twilio
from ._webhook import twilio_form_params as twilio_form_params
from ._webhook import twilio_opt_out as twilio_opt_out
from ._webhook import twilio_signature as twilio_signature
from ._webhook import verify_twilio_signature as verify_twilio_signature

__all__ = [
    "TWILIO",
    "TwilioClient",
    "TwilioConfig",
    "TwilioSettings",
    "classify_twilio_error",
    "message_form",
    "parse_twilio",
    "twilio_form_params",
    "twilio_opt_out",
    "twilio_signature",
    "verify_twilio_signature",
]
