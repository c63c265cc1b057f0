"""The provider checks of ``threadline check`` (actors/tools/_check.py): one per credential set
of WhatsApp (its token, numbers and templates), Twilio, Telegram (its bot and webhook), Meta's
Messenger and Instagram, Viber and LINE (its bot and webhook), and the helpers every check
uses. A check answers the line's detail, or raises :class:`Failed` with it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx

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

from ..core import Settings

__all__ = [
    "Check",
    "Failed",
    "join_url",
    "json_body",
    "line",
    "line_webhook",
    "meta",
    "rejected",
    "telegram",
    "telegram_webhook",
    "twilio",
    "viber",
    "whatsapp",
    "whatsapp_number",
    "whatsapp_templates",
]

Check = Callable[[httpx.AsyncClient, Settings], Awaitable[str]]
"""A check: the line's detail, or :class:`Failed`."""
MAX_TEMPLATE_PAGES = 20
"""Pages of a WABA's template list read (100 templates each)."""
RECENT_ERROR_SECONDS = 3600.0
"""A failed webhook delivery Telegram reports from less than this long ago fails the check."""


class Failed(Exception):
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


def rejected(response: httpx.Response, what: str) -> Failed:
    code = _api_error(response)
    why = f"{response.status_code}{f', {code}' if code else ''}"
    if response.status_code in (401, 403):
        return Failed(f"{what} rejected ({why})")
    return Failed(f"{what}: answered {why}")


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise Failed(f"answered {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise Failed(f"answered {response.status_code} with unexpected JSON")
    return body


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def _where(view: Any, env: str, field: str) -> str:  # noqa: ANN401 - a channel's view
    """How a line names a credential: its environment variable, or the accounts file's field."""
    return env if view.account_id is None else f"the accounts file's {field}"


def _webhook_url(s: Settings, channel: Channel, view: Any) -> str:  # noqa: ANN401 - a view
    """Where ``view``'s webhook should point: ``THREADLINE_PUBLIC_URL`` and the route of the
    channel (or of an account of the accounts file, its own)."""
    route = channel_spec(channel).account_route(view) or webhook_path(channel)
    return s.public_url.rstrip("/") + route


def whatsapp(view: WhatsAppSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view.access_token is None:
            where = _where(view, "THREADLINE_WHATSAPP_ACCESS_TOKEN", "access_token")
            raise Failed(f"{where} is not set: replies cannot be sent")
        response = await http.get(join_url(view.base_url, "/me"), headers=_graph(view))
        if response.status_code != 200:
            raise rejected(response, "token")
        me = json_body(response)
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


def whatsapp_number(view: WhatsAppSettings | None, number: str) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view is None:
            raise Failed(
                f"no WhatsApp app of THREADLINE_ACCOUNTS_FILE {s.accounts_file} lists it "
                "(phone_number_ids)"
            )
        if view.access_token is None:
            raise Failed(f"{_where(view, 'THREADLINE_WHATSAPP_ACCESS_TOKEN', '')} is not set")
        url = join_url(view.base_url, quote(number, safe=""))
        response = await http.get(url, headers=_graph(view))
        if response.status_code in (400, 404):
            code = _api_error(response)
            raise Failed(
                f"not a phone number this token can see ({response.status_code}, {code}): "
                "copy the phone number id from WhatsApp > API Setup in the Meta app"
            )
        if response.status_code != 200:
            raise rejected(response, "token")
        found = json_body(response)
        return (
            f"{found.get('display_phone_number', '?')} "
            f'("{found.get("verified_name", "?")}", quality {found.get("quality_rating", "?")})'
        )

    return check


def whatsapp_templates(view: WhatsAppSettings) -> Check:
    """The app's token reads its WABA's templates; the re-engagement template is approved."""

    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        waba = view.business_account_id
        assert waba is not None  # planned only then
        url = join_url(view.base_url, f"/{quote(waba, safe='')}/message_templates")
        params = {"fields": "name,language,status", "limit": "100"}
        found: list[dict[str, Any]] = []
        for _ in range(MAX_TEMPLATE_PAGES):
            response = await http.get(url, headers=_graph(view), params=params)
            if response.status_code in (400, 404):
                raise Failed(
                    f"WABA {waba} is not one this token can read ({response.status_code}, "
                    f"{_api_error(response)}): "
                    + _where(view, "THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID", "business_account_id")
                )
            if response.status_code != 200:
                raise rejected(response, "token")
            page = json_body(response)
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
            raise Failed(
                f"WABA {waba}: the re-engagement template {name} is not approved in {language}"
                " (THREADLINE_WHATSAPP_REENGAGEMENT_TEMPLATE)"
            )
        return f"WABA {waba}: {len(found)} templates, re-engagement {name} ({language}) approved"

    return check


def twilio(view: TwilioSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        sid = view.account_sid
        if sid is None or view.auth_token is None:
            missing = "ACCOUNT_SID" if sid is None else "AUTH_TOKEN"
            raise Failed(f"THREADLINE_TWILIO_{missing} is not set: Twilio needs both")
        url = join_url(view.base_url, f"/2010-04-01/Accounts/{quote(sid, safe='')}.json")
        response = await http.get(url, auth=(sid, view.auth_token.get_secret_value()))
        if response.status_code != 200:
            raise rejected(response, "account SID or auth token")
        account = json_body(response)
        name, status = account.get("friendly_name", "?"), account.get("status", "?")
        if status != "active":
            raise Failed(f'account "{name}" is {status}, not active')
        return f'account "{name}" ({status}, {account.get("type", "?")})'

    return check


def _bot_url(view: TelegramSettings, method: str) -> str:
    assert view.bot_token is not None
    return join_url(view.base_url, f"/bot{view.bot_token.get_secret_value()}/{method}")


async def _bot_result(
    http: httpx.AsyncClient, view: TelegramSettings, method: str
) -> dict[str, Any]:
    """A Bot API method's ``result`` object, or why the check failed."""
    response = await http.get(_bot_url(view, method))
    if response.status_code != 200:
        raise rejected(response, "bot token")
    result = json_body(response).get("result")
    if not isinstance(result, dict):
        raise Failed(f"{method} answered without a result")
    return result


def telegram(view: TelegramSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view.bot_token is None:
            raise Failed("THREADLINE_TELEGRAM_BOT_TOKEN is not set: replies cannot be sent")
        bot = await _bot_result(http, view, "getMe")
        return f"bot @{bot.get('username', '?')} ({bot.get('id', '?')})"

    return check


def telegram_webhook(view: TelegramSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        expected = _webhook_url(s, Channel.TELEGRAM, view)
        secret = _where(view, "THREADLINE_TELEGRAM_SECRET_TOKEN", "secret_token")
        if view.secret_token is None:
            raise Failed(f"{secret} is not set: the bridge refuses Telegram's webhooks")
        if view.bot_token is None:
            raise Failed("THREADLINE_TELEGRAM_BOT_TOKEN is not set")
        info = await _bot_result(http, view, "getWebhookInfo")
        url = info.get("url") or ""
        if not url:
            raise Failed(
                f"no webhook set: call setWebhook with url={expected} and secret_token=<{secret}>"
            )
        if url != expected:
            raise Failed(
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
                raise Failed(
                    f"{url}: Telegram's last delivery failed {age / 60:.0f} min ago: {error}"
                )
            said.append(f"last failed delivery {age / 3600:.0f} h ago: {error}")
        return ", ".join(said)

    return check


def meta(view: MessengerSettings | InstagramSettings) -> Check:
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
            raise Failed(f"{variable} is not set: replies cannot be sent")
        response = await http.get(
            join_url(view.base_url, "/me"),
            params={"fields": "id,name"},
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
        )
        if response.status_code != 200:
            raise rejected(response, "token")
        me = json_body(response)
        found = str(me.get("id", "?"))
        if owned is not None and found not in owned:
            raise Failed(
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
    return join_url(view.base_url, path), {"Authorization": f"Bearer {token}"}


def line(view: LineSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        if view.channel_access_token is None:
            where = _where(view, "THREADLINE_LINE_CHANNEL_ACCESS_TOKEN", "channel_access_token")
            raise Failed(f"{where} is not set: replies cannot be sent")
        url, headers = _line_get(view, "/v2/bot/info")
        response = await http.get(url, headers=headers)
        if response.status_code != 200:
            raise rejected(response, "channel access token")
        bot = json_body(response)
        user_id = bot.get("userId", "?")
        if view.bot_user_id is not None and user_id != view.bot_user_id:
            raise Failed(
                f"the token is bot {user_id}'s, not the accounts file's bot_user_id "
                f"{view.bot_user_id}"
            )
        return f"bot {bot.get('displayName', '?')} ({user_id}, {bot.get('basicId', '?')})"

    return check


def viber(view: ViberSettings) -> Check:
    """``get_account_info`` with the auth token: the bot, and its webhook set to the bridge's
    route (``set_webhook`` sets it; Viber then checks it with a signed callback)."""

    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        token = _where(view, "THREADLINE_VIBER_AUTH_TOKEN", "auth_token")
        if view.auth_token is None:
            raise Failed(f"{token} is not set")
        response = await http.post(
            join_url(view.base_url, "/pa/get_account_info"),
            json={},
            headers={"X-Viber-Auth-Token": view.auth_token.get_secret_value()},
        )
        if response.status_code != 200:
            raise rejected(response, "auth token")
        info = json_body(response)
        status = info.get("status")
        if status != 0:
            raise Failed(f"auth token rejected (status {status}, {info.get('status_message')})")
        expected = _webhook_url(s, Channel.VIBER, view)
        bot = f'bot "{info.get("name", "?")}" ({info.get("uri", "?")})'
        url = info.get("webhook") or ""
        if not url:
            raise Failed(f"{bot}: no webhook set: call set_webhook with url={expected}")
        if url != expected:
            raise Failed(
                f"{bot}: the webhook is {url}, not {expected} (THREADLINE_PUBLIC_URL): "
                "call set_webhook again"
            )
        return f"{bot}, webhook {url}"

    return check


def line_webhook(view: LineSettings) -> Check:
    async def check(http: httpx.AsyncClient, s: Settings) -> str:
        expected = _webhook_url(s, Channel.LINE, view)
        if view.channel_secret is None:
            where = _where(view, "THREADLINE_LINE_CHANNEL_SECRET", "channel_secret")
            raise Failed(f"{where} is not set: the bridge refuses LINE's webhooks")
        if view.channel_access_token is None:
            raise Failed("THREADLINE_LINE_CHANNEL_ACCESS_TOKEN is not set")
        url, headers = _line_get(view, "/v2/bot/channel/webhook/endpoint")
        response = await http.get(url, headers=headers)
        if response.status_code == 404:
            raise Failed(
                f"no webhook URL set: set it to {expected} (LINE Developers console, Messaging"
                " API tab) and turn on Use webhook"
            )
        if response.status_code != 200:
            raise rejected(response, "channel access token")
        info = json_body(response)
        endpoint = info.get("endpoint") or ""
        if endpoint != expected:
            raise Failed(f"the webhook URL is {endpoint}, not {expected} (THREADLINE_PUBLIC_URL)")
        if info.get("active") is not True:
            raise Failed(f"{endpoint}: Use webhook is off: LINE delivers nothing")
        return str(endpoint)

    return check
