"""The HTTP edge: the ingress app (provider webhooks, the Intercom webhook, the send API,
health, media) on runtime's ASGI toolkit. It verifies, parses and journals; it never delivers.
"""

from ._ingress import Ingress as Ingress

__all__ = [
    "Ingress",
]
