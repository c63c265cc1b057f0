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

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import trio

from channels import (
    Channel,
    InstagramSettings,
    LineSettings,
    MessengerSettings,
    TelegramSettings,
    TwilioSettings,
    ViberSettings,
    WhatsAppSettings,
    channel_spec,
    webhook_path,
)

from ..core import Settings, redact
from ..service import mask_secrets

__all__ = ["CheckResult", "run_checks"]

Status = Literal["ok", "FAIL", "warn", "skip"]

TELEGRAM_PATH = webhook_path(Channel.TELEGRAM)
"""The bridge's Telegram route (README "Routes and status codes")."""
MAX_TEMPLATE_PAGES = 20
"""Pages of a WABA's template list read (100 templates each)."""
RECENT_ERROR_SECONDS = 3600.0
"""A failed webhook delivery Telegram reports from less than this long ago fails the check."""


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


class _Failed(Exception):
    """A check's one-line failure."""


def _api_error(response: httpx.Response) -> str:
    """The provider's own error code or message from an error body, for the line."""
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("errors"), list) and body["errors"]:  # Intercom's error.list
        first = body["errors"][0]
        if isinstance(first, dict):
            return str(first.get("code") or first.get("message") or "")
    error = body.get("error")
    if isinstance(error, dict):  # the Graph API
        return str(error.get("code") or error.get("message") or "")
    if "code" in body:  # Twilio
        return str(body["code"])
    if "description" in body:  # the Bot API
        return str(body["description"])
    return ""


def _rejected(response: httpx.Response, what: str) -> _Failed:
    code = _api_error(response)
    why = f"{response.status_code}{f', {code}' if code else ''}"
    if response.status_code in (401, 403):
        return _Failed(f"{what} rejected ({why})")
    return _Failed(f"{what}: answered {why}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise _Failed(f"answered {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise _Failed(f"answered {response.status_code} with unexpected JSON")
    return body


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


# --- the checks --------------------------------------------------------------------------------


async def _intercom(http: httpx.AsyncClient, s: Settings) -> str:
    assert s.intercom_access_token is not None  # check_settings requires it
    headers = {
        "Authorization": f"Bearer {s.intercom_access_token.get_secret_value()}",
        "Intercom-Version": s.intercom_version,
        "Accept": "application/json",
    }
    response = await http.get(_join(s.intercom_base_url, "/me"), headers=headers)
    if response.status_code != 200:
        raise _rejected(response, "token")
    me = _json(response)
    app = me.get("app") if isinstance(me.get("app"), dict) else {}
    assert isinstance(app, dict)
    said = [f'workspace "{app.get("name", "?")}" ({app.get("id_code", "?")})']
    said.append(f"token of {me.get('name') or me.get('id')}")
    admin = s.intercom_default_admin_id
    if admin is None:
        said.append("no default admin set (THREADLINE_INTERCOM_DEFAULT_ADMIN_ID)")
    else:
        path = f"/admins/{quote(admin, safe='')}"
        found = await http.get(_join(s.intercom_base_url, path), headers=headers)
        if found.status_code in (400, 404):
            raise _Failed(
                f"{said[0]}, but admin {admin} not found: list the teammates with GET /admins "
                "(THREADLINE_INTERCOM_DEFAULT_ADMIN_ID)"
            )
        if found.status_code != 200:
            raise _rejected(found, f"GET /admins/{admin}")
        said.append(f"admin {admin} found ({_json(found).get('name', '?')})")
    if s.intercom_client_secret is None:
        said.append(
            "webhooks off: no THREADLINE_INTERCOM_CLIENT_SECRET, teammates' replies stay in "
            "Intercom"
        )
    return ", ".join(said)


def _where(view: Any, env: str, field: str) -> str:  # noqa: ANN401 - a channel's view
    """How a line names a credential: its environment variable, or the accounts file's field."""
    return env if view.account_id is None else f"the accounts file's {field}"


def _whatsapp(view: WhatsAppSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view.access_token is None:
            where = _where(view, "THREADLINE_WHATSAPP_ACCESS_TOKEN", "access_token")
            raise _Failed(f"{where} is not set: replies cannot be sent")
        response = await http.get(_join(view.base_url, "/me"), headers=_graph(view))
        if response.status_code != 200:
            raise _rejected(response, "token")
        me = _json(response)
        said = [f"token of {me.get('name') or '?'} ({me.get('id', '?')})"]
        if view.account_id is None and (view.app_secret is None or view.verify_token is None):
            said.append(
                "webhooks off: THREADLINE_WHATSAPP_APP_SECRET and _VERIFY_TOKEN are both needed"
            )
        return ", ".join(said)

    return check


def _graph(view: WhatsAppSettings) -> dict[str, str]:
    assert view.access_token is not None
    return {"Authorization": f"Bearer {view.access_token.get_secret_value()}"}


def _whatsapp_number(view: WhatsAppSettings | None, number: str) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view is None:
            raise _Failed(
                f"no WhatsApp app of THREADLINE_ACCOUNTS_FILE {s.accounts_file} lists it "
                "(phone_number_ids)"
            )
        if view.access_token is None:
            raise _Failed(f"{_where(view, 'THREADLINE_WHATSAPP_ACCESS_TOKEN', '')} is not set")
        url = _join(view.base_url, quote(number, safe=""))
        response = await http.get(url, headers=_graph(view))
        if response.status_code in (400, 404):
            code = _api_error(response)
            raise _Failed(
                f"not a phone number this token can see ({response.status_code}, {code}): "
                "copy the phone number id from WhatsApp > API Setup in the Meta app"
            )
        if response.status_code != 200:
            raise _rejected(response, "token")
        found = _json(response)
        return (
            f"{found.get('display_phone_number', '?')} "
            f'("{found.get("verified_name", "?")}", quality {found.get("quality_rating", "?")})'
        )

    return check


def _whatsapp_templates(view: WhatsAppSettings) -> Check:
    """The app's token reads its WABA's templates; the re-engagement template is approved."""

    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        waba = view.business_account_id
        assert waba is not None  # planned only then
        url = _join(view.base_url, f"/{quote(waba, safe='')}/message_templates")
        params = {"fields": "name,language,status", "limit": "100"}
        found: list[dict[str, Any]] = []
        for _ in range(MAX_TEMPLATE_PAGES):
            response = await http.get(url, headers=_graph(view), params=params)
            if response.status_code in (400, 404):
                raise _Failed(
                    f"WABA {waba} is not one this token can read ({response.status_code}, "
                    f"{_api_error(response)}): "
                    + _where(view, "THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID", "business_account_id")
                )
            if response.status_code != 200:
                raise _rejected(response, "token")
            page = _json(response)
            data = page.get("data")
            if isinstance(data, list):
                found.extend(t for t in data if isinstance(t, dict))
            paging = page.get("paging")
            paging = paging if isinstance(paging, dict) else {}
            cursors = paging.get("cursors")
            after = cursors.get("after") if isinstance(cursors, dict) else None
            if not data or not paging.get("next") or not isinstance(after, str):
                break
            params = {**params, "after": after}
        name, language = view.reengagement_template, view.reengagement_language
        if name is None:
            return f"WABA {waba}: {len(found)} templates"
        if not any(
            (t.get("name"), t.get("language"), t.get("status")) == (name, language, "APPROVED")
            for t in found
        ):
            raise _Failed(
                f"WABA {waba}: the re-engagement template {name} is not approved in {language}"
                " (THREADLINE_WHATSAPP_REENGAGEMENT_TEMPLATE)"
            )
        return f"WABA {waba}: {len(found)} templates, re-engagement {name} ({language}) approved"

    return check


def _twilio(view: TwilioSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        sid = view.account_sid
        if sid is None or view.auth_token is None:
            missing = "ACCOUNT_SID" if sid is None else "AUTH_TOKEN"
            raise _Failed(f"THREADLINE_TWILIO_{missing} is not set: Twilio needs both")
        url = _join(view.base_url, f"/2010-04-01/Accounts/{quote(sid, safe='')}.json")
        response = await http.get(url, auth=(sid, view.auth_token.get_secret_value()))
        if response.status_code != 200:
            raise _rejected(response, "account SID or auth token")
        account = _json(response)
        name, status = account.get("friendly_name", "?"), account.get("status", "?")
        if status != "active":
            raise _Failed(f'account "{name}" is {status}, not active')
        return f'account "{name}" ({status}, {account.get("type", "?")})'

    return check


def _bot_url(view: TelegramSettings, method: str) -> str:
    assert view.bot_token is not None
    return _join(view.base_url, f"/bot{view.bot_token.get_secret_value()}/{method}")


async def _bot_result(
    http: httpx.AsyncClient, view: TelegramSettings, method: str
) -> dict[str, Any]:
    """A Bot API method's ``result`` object, or why the check failed."""
    response = await http.get(_bot_url(view, method))
    if response.status_code != 200:
        raise _rejected(response, "bot token")
    result = _json(response).get("result")
    if not isinstance(result, dict):
        raise _Failed(f"{method} answered without a result")
    return result


def _telegram(view: TelegramSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view.bot_token is None:
            raise _Failed("THREADLINE_TELEGRAM_BOT_TOKEN is not set: replies cannot be sent")
        bot = await _bot_result(http, view, "getMe")
        return f"bot @{bot.get('username', '?')} ({bot.get('id', '?')})"

    return check


def _telegram_webhook(view: TelegramSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        route = channel_spec(Channel.TELEGRAM).account_route(view) or TELEGRAM_PATH
        expected = s.public_url.rstrip("/") + route
        secret = _where(view, "THREADLINE_TELEGRAM_SECRET_TOKEN", "secret_token")
        if view.secret_token is None:
            raise _Failed(f"{secret} is not set: the bridge refuses Telegram's webhooks")
        if view.bot_token is None:
            raise _Failed("THREADLINE_TELEGRAM_BOT_TOKEN is not set")
        info = await _bot_result(http, view, "getWebhookInfo")
        url = info.get("url") or ""
        if not url:
            raise _Failed(
                f"no webhook set: call setWebhook with url={expected} and secret_token=<{secret}>"
            )
        if url != expected:
            raise _Failed(
                f"the webhook is {url}, not {expected} (THREADLINE_PUBLIC_URL): "
                "call setWebhook again"
            )
        said = [url]
        pending = info.get("pending_update_count") or 0
        if pending:
            said.append(f"{pending} updates waiting")
        error_at, error = info.get("last_error_date"), info.get("last_error_message")
        if isinstance(error_at, int | float) and error:
            age = max(0.0, time.time() - error_at)
            if age < RECENT_ERROR_SECONDS:
                raise _Failed(
                    f"{url}: Telegram's last delivery failed {age / 60:.0f} min ago: {error}"
                )
            said.append(f"last failed delivery {age / 3600:.0f} h ago: {error}")
        return ", ".join(said)

    return check


def _meta(view: MessengerSettings | InstagramSettings) -> Check:
    """The Page (Instagram) access token: ``GET /me`` names the Page (account) it is of."""
    messenger = isinstance(view, MessengerSettings)
    token = view.page_access_token if isinstance(view, MessengerSettings) else view.access_token
    owned = view.page_ids if isinstance(view, MessengerSettings) else view.account_ids
    what = "Page" if messenger else "Instagram account"

    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if token is None:
            variable = (
                "THREADLINE_MESSENGER_PAGE_ACCESS_TOKEN"
                if messenger
                else "THREADLINE_INSTAGRAM_ACCESS_TOKEN"
            )
            raise _Failed(f"{variable} is not set: replies cannot be sent")
        response = await http.get(
            _join(view.base_url, "/me"),
            params={"fields": "id,name"},
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
        )
        if response.status_code != 200:
            raise _rejected(response, "token")
        me = _json(response)
        found = str(me.get("id", "?"))
        if owned is not None and found not in owned:
            raise _Failed(
                f"the token is {what} {found}'s, not one the accounts file lists "
                f"({', '.join(sorted(owned))})"
            )
        said = [f"token of {what} {me.get('name') or '?'} ({found})"]
        if view.app_secret is None:
            said.append("webhooks off: no app secret")
        return ", ".join(said)

    return check


def _line_get(view: LineSettings, path: str) -> tuple[str, dict[str, str]]:
    assert view.channel_access_token is not None
    token = view.channel_access_token.get_secret_value()
    return _join(view.base_url, path), {"Authorization": f"Bearer {token}"}


def _line(view: LineSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view.channel_access_token is None:
            where = _where(view, "THREADLINE_LINE_CHANNEL_ACCESS_TOKEN", "channel_access_token")
            raise _Failed(f"{where} is not set: replies cannot be sent")
        url, headers = _line_get(view, "/v2/bot/info")
        response = await http.get(url, headers=headers)
        if response.status_code != 200:
            raise _rejected(response, "channel access token")
        bot = _json(response)
        user_id = bot.get("userId", "?")
        if view.bot_user_id is not None and user_id != view.bot_user_id:
            raise _Failed(
                f"the token is bot {user_id}'s, not the accounts file's bot_user_id "
                f"{view.bot_user_id}"
            )
        return f"bot {bot.get('displayName', '?')} ({user_id}, {bot.get('basicId', '?')})"

    return check


def _viber(view: ViberSettings) -> Check:
    """``get_account_info`` with the auth token: the bot, and its webhook set to the bridge's
    route (``set_webhook`` sets it; Viber then checks it with a signed callback)."""

    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        token = _where(view, "THREADLINE_VIBER_AUTH_TOKEN", "auth_token")
        if view.auth_token is None:
            raise _Failed(f"{token} is not set")
        response = await http.post(
            _join(view.base_url, "/pa/get_account_info"),
            json={},
            headers={"X-Viber-Auth-Token": view.auth_token.get_secret_value()},
        )
        if response.status_code != 200:
            raise _rejected(response, "auth token")
        info = _json(response)
        status = info.get("status")
        if status != 0:
            raise _Failed(f"auth token rejected (status {status}, {info.get('status_message')})")
        route = channel_spec(Channel.VIBER).account_route(view) or webhook_path(Channel.VIBER)
        expected = s.public_url.rstrip("/") + route
        bot = f'bot "{info.get("name", "?")}" ({info.get("uri", "?")})'
        url = info.get("webhook") or ""
        if not url:
            raise _Failed(f"{bot}: no webhook set: call set_webhook with url={expected}")
        if url != expected:
            raise _Failed(
                f"{bot}: the webhook is {url}, not {expected} (THREADLINE_PUBLIC_URL): "
                "call set_webhook again"
            )
        return f"{bot}, webhook {url}"

    return check


def _line_webhook(view: LineSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        route = channel_spec(Channel.LINE).account_route(view) or webhook_path(Channel.LINE)
        expected = s.public_url.rstrip("/") + route
        if view.channel_secret is None:
            where = _where(view, "THREADLINE_LINE_CHANNEL_SECRET", "channel_secret")
            raise _Failed(f"{where} is not set: the bridge refuses LINE's webhooks")
        if view.channel_access_token is None:
            raise _Failed("THREADLINE_LINE_CHANNEL_ACCESS_TOKEN is not set")
        url, headers = _line_get(view, "/v2/bot/channel/webhook/endpoint")
        response = await http.get(url, headers=headers)
        if response.status_code == 404:
            raise _Failed(
                f"no webhook URL set: set it to {expected} (LINE Developers console, Messaging"
                " API tab) and turn on Use webhook"
            )
        if response.status_code != 200:
            raise _rejected(response, "channel access token")
        info = _json(response)
        endpoint = info.get("endpoint") or ""
        if endpoint != expected:
            raise _Failed(f"the webhook URL is {endpoint}, not {expected} (THREADLINE_PUBLIC_URL)")
        if info.get("active") is not True:
            raise _Failed(f"{endpoint}: Use webhook is off: LINE delivers nothing")
        return str(endpoint)

    return check


# --- running them --------------------------------------------------------------------------------

Check = Callable[[httpx.AsyncClient, Settings], Awaitable[str]]
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
            plan.append((f"whatsapp {app.account_id}", _whatsapp(app), ""))
            plan.extend(
                (f"whatsapp {app.account_id} number {n}", _whatsapp_number(app, n), "")
                for n in sorted(app.phone_number_ids or ())
            )
            if app.business_account_id is not None:
                plan.append((f"whatsapp {app.account_id} templates", _whatsapp_templates(app), ""))
        listed = {n for app in apps for n in app.phone_number_ids or ()}
        plan.extend(
            (f"whatsapp number {n}", _whatsapp_number(None, n), "")
            for n in whatsapp_numbers
            if n not in listed
        )
    else:
        wa = s.whatsapp
        configured = any(v is not None for v in (wa.access_token, wa.app_secret, wa.verify_token))
        plan.append(("whatsapp", _whatsapp(wa) if configured else None, off))
        plan.extend((f"whatsapp number {n}", _whatsapp_number(wa, n), "") for n in whatsapp_numbers)
        if wa.business_account_id is not None and wa.access_token is not None:
            plan.append(("whatsapp templates", _whatsapp_templates(wa), ""))
    if s.accounts.of(Channel.TWILIO):
        accounts: list[TwilioSettings] = list(s.channel_accounts(Channel.TWILIO))
        plan.extend((f"twilio {a.account_id}", _twilio(a), "") for a in accounts)
    else:
        tw = s.twilio
        configured = tw.account_sid is not None or tw.auth_token is not None
        plan.append(("twilio", _twilio(tw) if configured else None, off))
    if s.accounts.of(Channel.TELEGRAM):
        bots: list[TelegramSettings] = list(s.channel_accounts(Channel.TELEGRAM))
        for bot in bots:
            plan.append((f"telegram {bot.account_id}", _telegram(bot), ""))
            plan.append((f"telegram {bot.account_id} webhook", _telegram_webhook(bot), ""))
    else:
        tg = s.telegram
        configured = tg.bot_token is not None or tg.secret_token is not None
        plan.append(("telegram", _telegram(tg) if configured else None, off))
        plan.append(("telegram webhook", _telegram_webhook(tg) if configured else None, off))
    for channel in (Channel.MESSENGER, Channel.INSTAGRAM):
        views: list[MessengerSettings | InstagramSettings] = list(s.channel_accounts(channel))
        for view in views:
            spec = channel_spec(channel)
            if not (spec.receives(view) or spec.sends(view)):
                continue  # not configured: no line (as before these channels existed)
            name = (
                channel.value if view.account_id is None else f"{channel.value} {view.account_id}"
            )
            plan.append((name, _meta(view), ""))
    if s.accounts.of(Channel.VIBER):
        vibers: list[ViberSettings] = list(s.channel_accounts(Channel.VIBER))
        plan.extend((f"viber {bot.account_id}", _viber(bot), "") for bot in vibers)
    else:
        vb = s.viber
        plan.append(("viber", _viber(vb) if vb.auth_token is not None else None, off))
    if s.accounts.of(Channel.LINE):
        lines: list[LineSettings] = list(s.channel_accounts(Channel.LINE))
        for line in lines:
            plan.append((f"line {line.account_id}", _line(line), ""))
            plan.append((f"line {line.account_id} webhook", _line_webhook(line), ""))
    else:
        ln = s.line
        configured = ln.channel_access_token is not None or ln.channel_secret is not None
        plan.append(("line", _line(ln) if configured else None, off))
        plan.append(("line webhook", _line_webhook(ln) if configured else None, off))
    return plan


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
            except _Failed as exc:
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
