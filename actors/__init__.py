"""The product, in layers; each imports only those below it (docs/architecture.md §3):

- :mod:`actors.tools` — the CLI (``threadline``, ``python -m actors``), demo, load test, checks
- :mod:`actors.service` — the composition root: start, wire and supervise the bridge
- :mod:`actors.edge` — the HTTP ingress: webhooks, the send API, health, media
- :mod:`actors.bridge` — the business: thread actors, contacts, jobs, media, templates
- :mod:`actors.delivery` — the plumbing: dispatcher, cluster ownership, the delivery machine
- :mod:`actors.core` — settings, metrics and log fields, shared by all

Each subpackage's ``__init__`` is its public face; nothing here is exported on its own.
"""

__all__: list[str] = []
