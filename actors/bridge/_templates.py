"""WhatsApp message templates: the send API's ``template`` field, the WhatsApp Business
Account's approved templates (fetched and cached), rendering, and the re-engagement texts.

WhatsApp refuses free-form messages to a customer whose latest message is more than 24 hours
old (error 131047); an approved template may always be sent. The send API takes a template in
the Cloud API's own shape::

    {"name": "order_update", "language": {"code": "en_US"},
     "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}, …]}]}

Names are checked against ``GET /{waba-id}/message_templates`` (status ``APPROVED``, in the
requested language), kept for ``THREADLINE_WHATSAPP_TEMPLATE_CACHE_SECONDS``; the rendered text
(header, body and footer with the parameters filled in) is what the Intercom record shows.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Final, Literal

import trio
from pydantic import BaseModel, ConfigDict, Field

from channels import (
    Channel,
    ChannelError,
    ThreadKey,
    WhatsAppClient,
    WhatsAppTemplate,
    channel_spec,
)

__all__ = [
    "WHATSAPP_WINDOW_SECONDS",
    "ApiTemplate",
    "TemplateCatalog",
    "TemplateRefused",
    "TemplatesUnavailable",
    "api_send_problem",
    "customer_phone",
    "is_whatsapp",
    "opens_thread",
    "outside_window",
    "record_text",
    "render",
]

logger = logging.getLogger("threadline.templates")

_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
WHATSAPP_WINDOW_SECONDS: Final = 24 * 3600.0


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TemplateLanguage(_Strict):
    code: str = Field(pattern=r"^[A-Za-z]{2,3}(_[A-Za-z0-9]{2,8})?$")
    policy: Literal["deterministic"] | None = None


class TemplateParameter(BaseModel):
    """One parameter of a component. ``type`` names the value's field (``text``, ``currency``,
    ``date_time``, ``image``, ``document``, ``video``, ``payload``, ``action``, …), passed to
    WhatsApp as given; a ``text`` parameter must carry ``text``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str = Field(pattern=r"^[a-z_]{1,32}$")
    text: str | None = Field(default=None, max_length=1024)
    parameter_name: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,64}$")

    def shown(self) -> str | None:
        """The value as the customer reads it, when it can be told here."""
        if self.text is not None:
            return self.text
        extra = self.model_extra or {}
        value = extra.get(self.type)
        if isinstance(value, dict):
            fallback = value.get("fallback_value")
            return fallback if isinstance(fallback, str) else None
        if isinstance(value, str):
            return value
        return None


class TemplateComponent(_Strict):
    type: Literal["header", "body", "footer", "button"]
    sub_type: str | None = Field(default=None, max_length=32)
    index: int | str | None = None
    parameters: tuple[TemplateParameter, ...] = Field(default=(), max_length=100)


class ApiTemplate(_Strict):
    """The send API's ``template``: the Cloud API's template object."""

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: TemplateLanguage
    components: tuple[TemplateComponent, ...] = Field(default=(), max_length=20)

    def payload_components(self) -> list[dict[str, object]]:
        """The components as the Cloud API takes them."""
        return [c.model_dump(mode="json", exclude_none=True) for c in self.components]

    def check_parameters(self) -> str | None:
        """Why the parameters are malformed, or None."""
        for component in self.components:
            for parameter in component.parameters:
                if parameter.type == "text" and parameter.text is None:
                    return f"a text parameter of the {component.type} has no text"
                extra = parameter.model_extra or {}
                if parameter.type != "text" and parameter.type not in extra:
                    kind = parameter.type
                    return f"a {kind} parameter of the {component.type} has no {kind!r} value"
        return None


class TemplateRefused(Exception):
    """The template cannot be sent as asked (unknown, not approved, wrong parameters)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemplatesUnavailable(Exception):
    """The account's templates could not be fetched (and none are cached)."""


def render(template: WhatsAppTemplate, request: ApiTemplate) -> str:
    """The text the customer reads: header, body and footer with the parameters filled in.

    Raises:
        TemplateRefused: the header's or body's parameters do not match the template's.
    """
    lines = []
    for component in template.components:
        kind = str(component.get("type", "")).lower()
        text = component.get("text")
        if kind not in ("header", "body", "footer") or not isinstance(text, str):
            continue
        wanted = {m.group(1) for m in _PLACEHOLDER.finditer(text)}
        given = [p for c in request.components if c.type == kind for p in c.parameters]
        if len(given) != len(wanted):
            raise TemplateRefused(
                f"template {request.name!r} ({request.language.code}) takes {len(wanted)}"
                f" {kind} parameter(s), {len(given)} given"
            )
        values = {str(i + 1): p for i, p in enumerate(given)}
        values.update({p.parameter_name: p for p in given if p.parameter_name})

        def fill(match: re.Match[str], values: dict[str, TemplateParameter] = values) -> str:
            parameter = values.get(match.group(1))
            shown = parameter.shown() if parameter is not None else None
            return shown if shown is not None else match.group(0)

        lines.append(_PLACEHOLDER.sub(fill, text))
    return "\n".join(lines)


def record_text(template: ApiTemplate, rendered: str | None) -> str:
    """How a template send reads in the Intercom conversation."""
    head = f"[WhatsApp template {template.name} ({template.language.code})]"
    if rendered:
        return f"{head}\n{rendered}"
    values = [p.shown() or p.type for c in template.components for p in c.parameters]
    return f"{head} {', '.join(values)}".strip()


class TemplateCatalog:
    """Each WhatsApp Business Account's templates, fetched on demand and kept ``ttl`` seconds.

    One catalog per app of the deployment: the templates a thread may send are those of the
    WABA of the app that owns its business number (the accounts file's
    ``business_account_id``, read with that app's access token; the environment variables'
    app: ``THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID``). Concurrent lookups share one fetch;
    when a refresh fails the previous list is used (and the failure logged); with none,
    :class:`TemplatesUnavailable`.
    """

    def __init__(
        self, client: WhatsAppClient | None, waba_id: str | None, *, ttl: float = 600.0
    ) -> None:
        """One app: ``client`` reads ``waba_id``'s templates (either None: templates off)."""
        self._ttl = ttl
        self._apps: list[tuple[frozenset[str] | None, _Templates]] = []
        if client is not None:
            self._apps.append((None, _Templates(client, waba_id, ttl)))

    @classmethod
    def of_apps(
        cls,
        apps: Sequence[tuple[frozenset[str] | None, WhatsAppClient, str | None]],
        *,
        ttl: float = 600.0,
    ) -> TemplateCatalog:
        """Every app of the deployment: (the phone_number_ids it owns, None: any; its client;
        its WABA id, None: none set)."""
        catalog = cls(None, None, ttl=ttl)
        catalog._apps = [(owned, _Templates(client, waba, ttl)) for owned, client, waba in apps]
        return catalog

    @property
    def enabled(self) -> bool:
        """Whether any app's templates can be checked (its WABA id is configured)."""
        return any(templates.waba is not None for _, templates in self._apps)

    def enabled_for(self, account: str | None) -> bool:
        """Whether the templates of the app owning phone_number_id ``account`` can be checked."""
        templates = self._owner(account)
        return templates is not None and templates.waba is not None

    @property
    def fetches(self) -> int:
        """Template list fetches so far, every app's."""
        return sum(templates.fetches for _, templates in self._apps)

    def _owner(self, account: str | None) -> _Templates | None:
        if account is None:
            return self._apps[0][1] if self._apps else None
        for owned, templates in self._apps:
            if owned is not None and account in owned:
                return templates
        return next((templates for owned, templates in self._apps if owned is None), None)

    async def approved(
        self, name: str, language: str, account: str | None = None
    ) -> WhatsAppTemplate:
        """The approved template ``name`` in ``language`` of the WABA of the app that owns
        phone_number_id ``account`` (None: the first app's).

        Raises:
            TemplateRefused: no such template, or not approved in that language.
            TemplatesUnavailable: the list could not be fetched and none is cached, or the
                app has no WABA id.
        """
        owner = self._owner(account)
        if owner is None:
            raise TemplatesUnavailable(f"no WhatsApp app owns phone_number_id {account}")
        templates = await owner.current()
        same_name = [t for t in templates if t.name == name]
        for template in same_name:
            if template.language == language and template.status == "APPROVED":
                return template
        if not same_name:
            raise TemplateRefused(
                f"template {name!r} is not a template of the WhatsApp Business Account"
            )
        approved = sorted(t.language for t in same_name if t.status == "APPROVED")
        if approved:
            raise TemplateRefused(
                f"template {name!r} is not approved in {language}"
                f" (approved in {', '.join(approved)})"
            )
        statuses = sorted({t.status for t in same_name})
        raise TemplateRefused(f"template {name!r} is not approved (status {', '.join(statuses)})")


class _Templates:
    """One app's WABA templates, cached ``ttl`` seconds."""

    def __init__(self, client: WhatsAppClient, waba: str | None, ttl: float) -> None:
        self.client = client
        self.waba = waba
        self._ttl = ttl
        self._templates: list[WhatsAppTemplate] | None = None
        self._fetched_at = -float("inf")
        self._lock = trio.Lock()
        self.fetches = 0

    async def current(self) -> list[WhatsAppTemplate]:
        async with self._lock:
            if self._templates is not None and time.monotonic() - self._fetched_at < self._ttl:
                return self._templates
            if self.waba is None:
                raise TemplatesUnavailable(
                    "the app has no WhatsApp Business Account id (the accounts file's "
                    "business_account_id, or THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID)"
                )
            try:
                self.fetches += 1
                with trio.fail_after(30):
                    fetched = await self.client.message_templates(self.waba)
            except (ChannelError, trio.TooSlowError) as exc:
                if self._templates is None:
                    raise TemplatesUnavailable(str(exc)[:200]) from exc
                logger.warning("whatsapp templates not refreshed, using the last list: %s", exc)
                self._fetched_at = time.monotonic() - self._ttl + min(self._ttl, 30.0)
                return self._templates
            self._templates, self._fetched_at = fetched, time.monotonic()
            return fetched


# --- the send API's checks and the 24-hour window ----------------------------------------------


def is_whatsapp(key: ThreadKey) -> bool:
    """Whether the thread is on WhatsApp (Cloud API, or through Twilio): its channel's registry
    entry says WhatsApp's 24-hour window rules it."""
    return channel_spec(key.channel).windowed(key)


def outside_window(key: ThreadKey, last_inbound_at: float | None) -> bool:
    """Whether WhatsApp refuses free-form messages to this customer: on WhatsApp, and their
    latest message is more than 24 hours old, or they never wrote."""
    if not is_whatsapp(key):
        return False
    return last_inbound_at is None or time.time() - last_inbound_at > WHATSAPP_WINDOW_SECONDS


def api_send_problem(
    key: ThreadKey,
    text: str,
    attachments: bool,
    template: ApiTemplate | None,
    sendable: frozenset[Channel],
) -> tuple[int, str] | None:
    """The status and reason refusing a send API message before the journal is read, or None."""
    if template is None:
        if not text and not attachments:
            return 400, "a message needs text, attachments or a template"
        return None
    if text or attachments:
        return 400, "a message is either a template or text and attachments, not both"
    if not channel_spec(key.channel).templates:
        return 400, "templates are sent on the whatsapp channel (WhatsApp Cloud API) only"
    if Channel.WHATSAPP not in sendable:
        return 404, "whatsapp is not configured"
    problem = template.check_parameters()
    return None if problem is None else (400, f"invalid template: {problem}"[:300])


def opens_thread(key: ThreadKey, sendable: frozenset[Channel]) -> tuple[int, str] | None:
    """Why the send API may not start a conversation with this customer (none exists yet):
    the status and reason, or None when it may. ``sendable``: the channels whose registry
    entry says they can send with the settings given (``ChannelSpec.sends``)."""
    if key.channel not in sendable:
        return 404, f"{key.channel.value} is not configured"
    if channel_spec(key.channel).new_customer.fullmatch(key.customer) is None:
        return 400, f"not a {key.channel.value} customer id to start a conversation with"
    return None


def customer_phone(key: ThreadKey) -> str | None:
    """The customer's E.164 phone, as the inbound path identifies them by, or None."""
    return channel_spec(key.channel).phone(key)
