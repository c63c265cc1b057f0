"""``threadline check``: verify every configured credential against the real APIs.

One line per check, ``ok``, ``FAIL``, ``warn`` or ``skip``, then the exit status: 0 when nothing
failed, 1 when something did (a configuration error, found before anything is called, is the
usual one-line start-up failure and exit 2). Each check has a time limit. What is verified:

- Intercom: ``GET /me`` (the token; the workspace it belongs to) and, with
  ``THREADLINE_INTERCOM_DEFAULT_ADMIN_ID``, ``GET /admins/{id}`` (that teammate exists).
- WhatsApp: ``GET /me`` (the access token) and ``GET /{phone-number-id}`` for each number
  given with ``--whatsapp-phone-number-id`` (the bridge learns its numbers from the webhooks,
  so no setting names them); with THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID, ``GET
  /{waba-id}/message_templates`` (the token reads the WABA; with
  THREADLINE_WHATSAPP_REENGAGEMENT_TEMPLATE, that template is approved in its language).
- Twilio: ``GET /2010-04-01/Accounts/{sid}.json`` (account SID and auth token; the account is
  active).
- Telegram: ``getMe`` (the bot token) and ``getWebhookInfo`` (the webhook is set to
  ``THREADLINE_PUBLIC_URL`` + ``/webhooks/telegram`` and reports no recent failed delivery).
- Messenger and Instagram (lines only when configured): ``GET /me?fields=id,name`` with the
  Page (Instagram) access token: whose token it is, and for an app of the accounts file, that
  it is one of the Pages (accounts) the entry lists.
- Viber: ``POST /pa/get_account_info`` (the auth token; the bot's webhook is
  ``THREADLINE_PUBLIC_URL`` + ``/webhooks/viber``, or ``/webhooks/viber/<id>`` for a bot of
  the accounts file: ``viber <id>``).
- LINE: ``GET /v2/bot/info`` (the channel access token; the bot's user id) and ``GET
  /v2/bot/channel/webhook/endpoint`` (the webhook URL is ``THREADLINE_PUBLIC_URL`` +
  ``/webhooks/line`` and "Use webhook" is on).

With ``THREADLINE_ACCOUNTS_FILE``, every account of the file is checked the same way, each
with its own credentials, on lines named after its id: ``whatsapp <id>`` and ``whatsapp <id>
number <phone_number_id>`` for each number it lists, ``whatsapp <id> templates`` (its
``business_account_id``, read with its own token), ``twilio <id>``, ``telegram <id>`` and
``telegram <id> webhook`` (set to its own route, ``/webhooks/telegram/<bot id>``), ``line
<id>`` and ``line <id> webhook`` (its own route, ``/webhooks/line/<bot user id>``). A
``--whatsapp-phone-number-id`` no app of the file lists fails.

Webhook secrets (Intercom's client secret, Meta's app secret and verify token, Telegram's
secret token, LINE's channel secret) cannot be checked from this side: the line says whether
each is set. No line ever holds a secret's value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import trio

from channels import (
    Channel,
    InstagramSettings,
    MessengerSettings,
    WhatsAppSettings,
    channel_spec,
)

from ..core import Settings, redact
from ..service import mask_secrets
from . import _check_providers as providers
from ._check_providers import Check, Failed, join_url, json_body, rejected

__all__ = ["CheckResult", "run_checks"]

Status = Literal["ok", "FAIL", "warn", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    status: Status
    name: str
    detail: str

    def line(self, settings: Settings) -> str:
        """``ok   intercom: …``: one line, secrets masked."""
        text = f"{self.status:<4} {self.name}: {' '.join(self.detail.split())}"
        return redact(mask_secrets(text, settings))


# --- the checks: Intercom's here, the providers' in _check_providers.py ------------------------


async def _intercom(http: httpx.AsyncClient, s: Settings) -> str:
    assert s.intercom_access_token is not None  # check_settings requires it
    headers = {
        "Authorization": f"Bearer {s.intercom_access_token.get_secret_value()}",
        "Intercom-Version": s.intercom_version,
        "Accept": "application/json",
    }
    response = await http.get(join_url(s.intercom_base_url, "/me"), headers=headers)
    if response.status_code != 200:
        raise rejected(response, "token")
    me = json_body(response)
    app = me.get("app") if isinstance(me.get("app"), dict) else {}
    assert isinstance(app, dict)
    said = [f'workspace "{app.get("name", "?")}" ({app.get("id_code", "?")})']
    said.append(f"token of {me.get('name') or me.get('id')}")
    admin = s.intercom_default_admin_id
    if admin is None:
        said.append("no default admin set (THREADLINE_INTERCOM_DEFAULT_ADMIN_ID)")
    else:
        path = f"/admins/{quote(admin, safe='')}"
        found = await http.get(join_url(s.intercom_base_url, path), headers=headers)
        if found.status_code in (400, 404):
            raise Failed(
                f"{said[0]}, but admin {admin} not found: list the teammates with GET /admins "
                "(THREADLINE_INTERCOM_DEFAULT_ADMIN_ID)"
            )
        if found.status_code != 200:
            raise rejected(found, f"GET /admins/{admin}")
        said.append(f"admin {admin} found ({json_body(found).get('name', '?')})")
    if s.intercom_client_secret is None:
        said.append(
            "webhooks off: no THREADLINE_INTERCOM_CLIENT_SECRET, teammates' replies stay in "
            "Intercom"
        )
    return ", ".join(said)


# --- running them --------------------------------------------------------------------------------

Plan = list[tuple[str, Check | None, str]]


def _plan(s: Settings, whatsapp_numbers: Sequence[str]) -> Plan:
    """(name, check or None to skip, the skip reason) in the order printed: the environment
    variables' account of each channel as ``whatsapp``, ``twilio``, ``telegram``, ``line``;
    the accounts file's as ``whatsapp <id>``, ``whatsapp <id> number <phone_number_id>``
    (each listed number), ``twilio <id>``, ``telegram <id>``, ``telegram <id> webhook``,
    ``viber <id>``, ``line <id>`` and ``line <id> webhook``."""
    plan: Plan = [("intercom", _intercom, "")]
    off = "not configured"
    if s.accounts.of(Channel.WHATSAPP):
        apps: list[WhatsAppSettings] = list(s.channel_accounts(Channel.WHATSAPP))
        for app in apps:
            plan.append((f"whatsapp {app.account_id}", providers.whatsapp(app), ""))
            plan.extend(
                (f"whatsapp {app.account_id} number {n}", providers.whatsapp_number(app, n), "")
                for n in sorted(app.phone_number_ids or ())
            )
            if app.business_account_id is not None:
                plan.append(
                    (f"whatsapp {app.account_id} templates", providers.whatsapp_templates(app), "")
                )
        listed = {n for app in apps for n in app.phone_number_ids or ()}
        plan.extend(
            (f"whatsapp number {n}", providers.whatsapp_number(None, n), "")
            for n in whatsapp_numbers
            if n not in listed
        )
    else:
        wa = s.whatsapp
        configured = any(v is not None for v in (wa.access_token, wa.app_secret, wa.verify_token))
        plan.append(("whatsapp", providers.whatsapp(wa) if configured else None, off))
        plan.extend(
            (f"whatsapp number {n}", providers.whatsapp_number(wa, n), "") for n in whatsapp_numbers
        )
        if wa.business_account_id is not None and wa.access_token is not None:
            plan.append(("whatsapp templates", providers.whatsapp_templates(wa), ""))
    plan += _by_account(s, Channel.TWILIO, [("", providers.twilio)], "account_sid", "auth_token")
    plan += _by_account(
        s,
        Channel.TELEGRAM,
        [("", providers.telegram), (" webhook", providers.telegram_webhook)],
        "bot_token",
        "secret_token",
    )
    for channel in (Channel.MESSENGER, Channel.INSTAGRAM):
        views: list[MessengerSettings | InstagramSettings] = list(s.channel_accounts(channel))
        for view in views:
            spec = channel_spec(channel)
            if not (spec.receives(view) or spec.sends(view)):
                continue  # not configured: no line (as before these channels existed)
            name = (
                channel.value if view.account_id is None else f"{channel.value} {view.account_id}"
            )
            plan.append((name, providers.meta(view), ""))
    plan += _by_account(s, Channel.VIBER, [("", providers.viber)], "auth_token")
    plan += _by_account(
        s,
        Channel.LINE,
        [("", providers.line), (" webhook", providers.line_webhook)],
        "channel_access_token",
        "channel_secret",
    )
    return plan


def _by_account(
    s: Settings,
    channel: Channel,
    checks: Sequence[tuple[str, Callable[[Any], Check]]],
    *credentials: str,
) -> Plan:
    """``channel``'s ``checks`` (a line's suffix, the check of a view): of each account of the
    accounts file, as ``<channel> <id><suffix>``; else of the environment variables' one
    account, as ``<channel><suffix>``, skipped unless one of its ``credentials`` is set."""
    if s.accounts.of(channel):
        return [
            (f"{channel.value} {view.account_id}{suffix}", check(view), "")
            for view in s.channel_accounts(channel)
            for suffix, check in checks
        ]
    view = s.channel(channel)
    configured = any(getattr(view, name) is not None for name in credentials)
    return [
        (f"{channel.value}{suffix}", check(view) if configured else None, "not configured")
        for suffix, check in checks
    ]


def _public_url(s: Settings) -> CheckResult:
    parts = urlsplit(s.public_url)
    host = parts.hostname or ""
    if parts.scheme != "https":
        return CheckResult(
            "warn",
            "public url",
            f"{s.public_url} is not HTTPS: Meta and Telegram call only HTTPS URLs "
            "(THREADLINE_PUBLIC_URL)",
        )
    if host in ("localhost", "127.0.0.1", "::1") or host.endswith(".local"):
        return CheckResult(
            "warn", "public url", f"{s.public_url} is not reachable from the internet"
        )
    return CheckResult("ok", "public url", s.public_url)


async def run_checks(
    settings: Settings,
    *,
    seconds_per_check: float,
    whatsapp_numbers: Sequence[str] = (),
) -> list[CheckResult]:
    """Run every check at once, each within ``seconds_per_check``; results in a fixed order."""
    timeout = seconds_per_check
    plan = _plan(settings, whatsapp_numbers)
    results: list[CheckResult | None] = [None] * len(plan)

    async def one(index: int, name: str, check: Check, http: httpx.AsyncClient) -> None:
        status: Status = "FAIL"
        with trio.move_on_after(timeout):
            try:
                detail = await check(http, settings)
                status = "ok"
            except Failed as exc:
                detail = str(exc)
            except httpx.TimeoutException:
                detail = f"no answer within {timeout:g} s"
            except httpx.HTTPError as exc:
                detail = f"cannot reach it: {type(exc).__name__}: {exc}"
            results[index] = CheckResult(status, name, detail)
            return
        results[index] = CheckResult("FAIL", name, f"no answer within {timeout:g} s")

    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False) as http,
        trio.open_nursery() as nursery,
    ):
        for index, (name, check, why) in enumerate(plan):
            if check is None:
                results[index] = CheckResult("skip", name, why)
            else:
                nursery.start_soon(one, index, name, check, http)
    return [_public_url(settings), *(r for r in results if r is not None)]
