"""The Intercom sandbox: a fake Intercom workspace for tests, the demo and the load test.

Like ``trio.testing`` for Trio, this subpackage lives beside the product code and is never
imported by it (an import-linter contract): :class:`IntercomSandbox` is a stateful ASGI app
speaking the subset of Intercom's API the bridge uses, with Intercom's awkward behaviour
switchable (:class:`SandboxConfig`), scripted teammates (:class:`Teammates`) and inspection.

Sandbox::

    sandbox = IntercomSandbox(access_tokens=["t"], config=SandboxConfig(webhook_url=url))
    addr = await nursery.start(serve_asgi, sandbox.app, hypercorn_config("127.0.0.1:0"))

Its lifespan runs the webhook outbox and the auto-replies (``run_background``). Mounted
under a prefix, it strips the prefix (``root_path``) from ``path``. Control and inspection
live under ``/_sandbox/``. Its HTTP layer is ``runtime``'s ASGI toolkit.

Layers: ``_state`` (plain data, O(1) operations) and ``_search`` (the query language) under
``_core`` (conversation operations, webhook outbox, counters; no HTTP), rendered by
``_render``; ``_api`` (one handler per Intercom operation) and ``_control`` (``/_sandbox/``)
answer requests; ``_teammates`` acts as the inbox would and delivers webhooks; ``_app`` is the
ASGI face (auth, versions, rate limit, injected faults). :class:`SandboxState` and
:func:`search_contacts` are exported for property tests of the search.
"""

from ._app import IntercomSandbox as IntercomSandbox
from ._config import SandboxAdmin as SandboxAdmin
from ._config import SandboxConfig as SandboxConfig
from ._core import WebhookDelivery as WebhookDelivery
from ._search import search_contacts as search_contacts
from ._state import SandboxApiError as SandboxApiError
from ._state import SandboxState as SandboxState
from ._teammates import TeammateAction as TeammateAction
from ._teammates import Teammates as Teammates

__all__ = [
    "IntercomSandbox",
    "SandboxAdmin",
    "SandboxApiError",
    "SandboxConfig",
    "SandboxState",
    "TeammateAction",
    "Teammates",
    "WebhookDelivery",
    "search_contacts",
]
