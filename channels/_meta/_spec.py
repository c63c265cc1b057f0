"""The registry entry of a channel on Meta's messaging platform (:func:`meta_spec`): Messenger
and Instagram differ only in their app (:class:`~channels._meta.MetaApp`), settings' names,
text limit, receipts and wording; the webhook, client and window rules are the same."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

import httpx
from pydantic import SecretStr

from runtime import Request

from .._model import ParsedEvent
from .._spec import ChannelSpec, Webhook
from .._text import TextFormat, TextLimit
from ._api import MetaMessagingClient, MetaMessagingConfig
from ._apps import MetaApp
from ._signature import answer_meta_handshake, verify_meta_request
from ._webhook import check_accounts, parse_meta_messaging

__all__ = ["MetaSettings", "meta_spec"]


class MetaSettings(Protocol):
    """What a Messenger or Instagram settings view has in common."""

    @property
    def app_secret(self) -> SecretStr | None: ...

    @property
    def verify_token(self) -> SecretStr | None: ...

    @property
    def base_url(self) -> str: ...

    @property
    def human_agent(self) -> bool: ...


M = TypeVar("M", bound=MetaSettings)


def meta_spec(
    app: MetaApp,
    *,
    title: str,
    token: Callable[[M], SecretStr | None],
    accounts: Callable[[M], frozenset[str] | None],
    account_noun: str,
    text_limit: TextLimit,
    receipts: bool,
) -> ChannelSpec[M]:
    """The spec of ``app``'s channel: ``token`` sends, ``accounts`` are the view's own (a
    webhook it signed about another ``account_noun`` is refused), ``title`` names the channel
    in the teammates' note about the window."""

    def receives(s: M) -> bool:
        return s.app_secret is not None

    def sends(s: M) -> bool:
        return token(s) is not None

    def accept(request: Request, s: M, max_bytes: int) -> list[ParsedEvent]:
        verify_meta_request(request, s.app_secret)
        events = parse_meta_messaging(request.body, app, max_bytes=max_bytes)
        check_accounts(request.body, accounts(s), account_noun)
        return events

    def handshake(query: Mapping[str, str], s: M) -> str | None:
        return answer_meta_handshake(query, s.verify_token)

    def client(http: httpx.AsyncClient, s: M) -> MetaMessagingClient:
        access_token = token(s)
        assert access_token is not None  # sends
        config = MetaMessagingConfig(
            access_token=access_token, base_url=s.base_url, human_agent=s.human_agent
        )
        return MetaMessagingClient(http, config, app)

    return ChannelSpec(
        channel=app.channel,
        webhook=Webhook(accept=accept, handshake=handshake),
        receives=receives,
        sends=sends,
        client=client,
        text_limit=text_limit,
        text_format=lambda key: TextFormat.PLAIN,
        # The window is Meta's to enforce: the client answers a closed one with HUMAN_AGENT.
        windowed=lambda key: False,
        receipts=receipts,
        # A Page or a business cannot start a conversation: the customer writes first.
        new_customer=re.compile(r"(?!)"),
        phone=lambda key: None,
        accounts=accounts,
        window_closed=(
            f"outside {title}'s messaging window (24 hours after the customer's last message,"
            " 7 days for a teammate's reply tagged HUMAN_AGENT): the customer has to write first"
        ),
    )
