"""The Intercom side: API client (pure request building and response parsing, thin httpx edge),
webhook verification and parsing, and the Intercom sandbox server."""

__all__: list[str] = []
