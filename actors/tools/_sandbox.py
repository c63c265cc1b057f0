"""``threadline sandbox``: the sandbox Intercom and the sandbox providers on one port.

::

    /intercom/...         the Intercom sandbox   THREADLINE_INTERCOM_BASE_URL = <url>/intercom
    /whatsapp/v21.0/...   fake Graph API         THREADLINE_WHATSAPP_BASE_URL = <url>/whatsapp/v21.0
    /twilio/...           fake Twilio API        THREADLINE_TWILIO_BASE_URL   = <url>/twilio
    /telegram/...         fake Bot API           THREADLINE_TELEGRAM_BASE_URL = <url>/telegram
    /messenger/v21.0/...  fake Send API     THREADLINE_MESSENGER_BASE_URL = <url>/messenger/v21.0
    /instagram/v21.0/...  fake Send API     THREADLINE_INSTAGRAM_BASE_URL = <url>/instagram/v21.0
    /viber/...            fake Viber bot API     THREADLINE_VIBER_BASE_URL    = <url>/viber
    /line/..., /line-data/...  fake LINE APIs    THREADLINE_LINE_BASE_URL     = <url>/line
    /_sandbox/...         provider inspection;   /intercom/_sandbox/... Intercom inspection
"""

from __future__ import annotations

from dataclasses import dataclass

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from channels.sandbox import ProviderSandbox, SandboxCredentials
from intercom.sandbox import IntercomSandbox, SandboxConfig

__all__ = [
    "SANDBOX_SECRETS",
    "SandboxApp",
    "SandboxSecrets",
    "meta_settings",
    "sandbox_settings_env",
]

INTERCOM_PREFIX = "/intercom"


@dataclass(frozen=True)
class SandboxSecrets:
    """The fixed, public credentials of the sandboxes (not secrets: fakes)."""

    intercom_token: str = "sandbox-token"  # noqa: S105 - public fake
    intercom_client_secret: str = "sandbox-client-secret"  # noqa: S105 - public fake
    whatsapp_app_secret: str = "sandbox-whatsapp-app-secret"  # noqa: S105 - public fake
    whatsapp_verify_token: str = "sandbox-verify-token"  # noqa: S105 - public fake
    whatsapp_phone_number_id: str = "100000000000001"
    telegram_secret_token: str = "sandbox-telegram-secret"  # noqa: S105 - public fake
    twilio_number: str = "+15550002222"
    messenger_app_secret: str = "sandbox-messenger-app-secret"  # noqa: S105 - public fake
    messenger_verify_token: str = "sandbox-messenger-verify-token"  # noqa: S105 - public fake
    messenger_page_id: str = SandboxCredentials().messenger_page_id  # the fake's own Page
    instagram_app_secret: str = "sandbox-instagram-app-secret"  # noqa: S105 - public fake
    instagram_account_id: str = SandboxCredentials().instagram_account_id
    viber_bot_name: str = "Threadline Sandbox"
    line_channel_secret: str = "sandbox-line-channel-secret"  # noqa: S105 - public fake


SANDBOX_SECRETS = SandboxSecrets()


class SandboxApp:
    """Both sandboxes behind one ASGI app; the Intercom one under ``/intercom``."""

    def __init__(
        self,
        *,
        intercom: IntercomSandbox | None = None,
        providers: ProviderSandbox | None = None,
    ) -> None:
        self.intercom = intercom or IntercomSandbox(
            access_tokens=(SANDBOX_SECRETS.intercom_token,),
            config=SandboxConfig(client_secret=SANDBOX_SECRETS.intercom_client_secret),
        )
        self.providers = providers or ProviderSandbox(SandboxCredentials())

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await self.intercom(scope, receive, send)  # runs the webhook outbox
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == INTERCOM_PREFIX or path.startswith(INTERCOM_PREFIX + "/"):
            stripped = path[len(INTERCOM_PREFIX) :] or "/"
            inner = {
                **scope,
                "path": stripped,
                "raw_path": stripped.encode(),
                "root_path": scope.get("root_path", "") + INTERCOM_PREFIX,
            }
            await self.intercom(inner, receive, send)  # type: ignore[arg-type]  # an HTTPScope
            return
        await self.providers(scope, receive, send)


def sandbox_settings_env(sandbox_url: str, bridge_url: str) -> dict[str, str]:
    """The ``THREADLINE_*`` settings that point a bridge at a sandbox served at ``sandbox_url``."""
    creds = SandboxCredentials()
    s = SANDBOX_SECRETS
    base = sandbox_url.rstrip("/")
    return {
        "THREADLINE_PUBLIC_URL": bridge_url,
        "THREADLINE_INTERCOM_BASE_URL": f"{base}{INTERCOM_PREFIX}",
        "THREADLINE_INTERCOM_ACCESS_TOKEN": s.intercom_token,
        "THREADLINE_INTERCOM_CLIENT_SECRET": s.intercom_client_secret,
        "THREADLINE_INTERCOM_DEFAULT_ADMIN_ID": "991267601",  # "Ada Operator"
        # The sandbox's search does not lag unless configured to: a creation in doubt (an
        # injected 5xx) need not be searched for as long as in front of the real Intercom.
        "THREADLINE_INTERCOM_SEARCH_SETTLE_SECONDS": "5",
        "THREADLINE_WHATSAPP_APP_SECRET": s.whatsapp_app_secret,
        "THREADLINE_WHATSAPP_VERIFY_TOKEN": s.whatsapp_verify_token,
        "THREADLINE_WHATSAPP_ACCESS_TOKEN": creds.whatsapp_access_token,
        "THREADLINE_WHATSAPP_BASE_URL": f"{base}/whatsapp/v21.0",
        "THREADLINE_WHATSAPP_BUSINESS_ACCOUNT_ID": creds.whatsapp_business_account_id,
        "THREADLINE_TWILIO_ACCOUNT_SID": creds.twilio_account_sid,
        "THREADLINE_TWILIO_AUTH_TOKEN": creds.twilio_auth_token,
        "THREADLINE_TWILIO_BASE_URL": f"{base}/twilio",
        "THREADLINE_TELEGRAM_BOT_TOKEN": creds.telegram_bot_token,
        "THREADLINE_TELEGRAM_SECRET_TOKEN": s.telegram_secret_token,
        "THREADLINE_TELEGRAM_BASE_URL": f"{base}/telegram",
        "THREADLINE_VIBER_AUTH_TOKEN": creds.viber_auth_token,
        "THREADLINE_VIBER_BASE_URL": f"{base}/viber",
        "THREADLINE_VIBER_BOT_NAME": s.viber_bot_name,
        "THREADLINE_LINE_CHANNEL_SECRET": s.line_channel_secret,
        "THREADLINE_LINE_CHANNEL_ACCESS_TOKEN": creds.line_channel_access_token,
        "THREADLINE_LINE_BASE_URL": f"{base}/line",
        "THREADLINE_LINE_DATA_BASE_URL": f"{base}/line-data",
        "THREADLINE_MESSENGER_BASE_URL": f"{base}/messenger/v21.0",
        "THREADLINE_INSTAGRAM_BASE_URL": f"{base}/instagram/v21.0",
        **meta_settings(),
    }


def meta_settings() -> dict[str, str]:
    """The settings that turn the sandbox Messenger and Instagram on (part of
    :func:`sandbox_settings_env`): the apps' secrets, the verify token and the fakes' tokens."""
    creds = SandboxCredentials()
    s = SANDBOX_SECRETS
    return {
        "THREADLINE_MESSENGER_APP_SECRET": s.messenger_app_secret,
        "THREADLINE_MESSENGER_VERIFY_TOKEN": s.messenger_verify_token,
        "THREADLINE_MESSENGER_PAGE_ACCESS_TOKEN": creds.messenger_page_access_token,
        "THREADLINE_INSTAGRAM_APP_SECRET": s.instagram_app_secret,
        "THREADLINE_INSTAGRAM_ACCESS_TOKEN": creds.instagram_access_token,
    }
