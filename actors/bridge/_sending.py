"""Sending to the customer: each piece (text, inline image, attachment, template) a recorded
step, sent at most once; what was sent is remembered under its provider id, for a delivery
failure reported later."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from channels import (
    Channel,
    ChannelError,
    InlineImage,
    MediaHostForbidden,
    MediaTooLarge,
    MediaUnavailable,
    OutboundMedia,
    OutgoingText,
    OutsideCustomerWindow,
    RecipientUnavailable,
    ReplyToken,
    SendInDoubt,
    SendRejected,
    ThreadKey,
    channel_spec,
    replying_with,
    sending_as,
    shorten,
)
from runtime import JournalUnavailable

from ..delivery import Outcome, Steps
from ._base import SEND_RETRYABLE, ThreadBase
from ._gateway import ChannelClient
from ._jobs import OutboundAttachment, SentRecord, sent_message_key
from ._outgoing import send_steps
from ._receipts import describe_attachment, describe_text, tracks_delivery
from ._templates import ApiTemplate

__all__ = ["SendingBranch"]

logger = logging.getLogger("threadline.thread")


class SendingBranch(ThreadBase):
    """Sends on the thread's channel."""

    async def _send(
        self,
        steps: Steps,
        content: Sequence[OutgoingText | InlineImage],
        attachments: tuple[OutboundAttachment, ...],
        prefix: str = "",
        conversation_id: str | None = None,
    ) -> str | None:
        """Send to the customer, each piece a recorded step: ``content`` (text split to the
        channel's limit, inline images) then the attachments. Returns why it failed for good,
        or None when it was sent (or is in doubt and not sent again). What each piece was is
        remembered under its provider id, for a delivery failure reported later."""
        channel = self._key.channel
        client = self._s.gateway.client(channel, self._key.account)
        if client is None:
            return (
                f"the {channel.value} account {self._key.account} is not configured on the "
                "bridge (no credentials own it)"
            )
        if self._state.opted_out and channel is Channel.LINE:
            return "the customer blocked the LINE account (unfollowed) and has not unblocked it"
        if self._state.opted_out:
            return "the customer opted out of SMS (they replied STOP) and has not replied START"
        if self._outside_whatsapp_window():
            return "outside WhatsApp's 24-hour customer-service window (a template is needed)"
        media = [_outbound_media(attachment) for attachment in attachments]
        caption = _caption(client, self._key, content, media)
        pieces: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        described: dict[str, str] = {}  # what each piece is, for a failure reported later
        if caption is None:
            steps_of_content = send_steps(client, self._key, content, prefix)
            for (name, call), item in zip(steps_of_content, content, strict=True):
                if isinstance(item, OutgoingText):  # remembered: a customer may quote it
                    call = functools.partial(self._remembered, item.text, call)
                    described[name] = describe_text(item.text)
                else:
                    described[name] = f"the image {item.url}"
                pieces.append((name, call))
        for index, medium in enumerate(media):
            send: Callable[[], Awaitable[object]] = functools.partial(
                client.send_media, self._key, medium, caption=caption
            )
            what = describe_attachment(attachments[index])
            if caption is not None:
                send = functools.partial(self._remembered, caption, send)
                what += f" with the text {describe_text(caption)}"
            pieces.append((f"{prefix}media:{index}", send))
            described[f"{prefix}media:{index}"] = what
        conversation_id = conversation_id or self._state.conversation_id

        def sent(name: str, what: str | None = None) -> SentRecord | None:
            if conversation_id is None or not tracks_delivery(channel):
                return None
            return SentRecord(
                thread=self._key_text, conversation_id=conversation_id,
                part_id=prefix[:-1] or None, what=what or described.get(name, "a message"),
                sent_at=time.time(),
            )  # fmt: skip

        with replying_with(self._reply_token()) as token:
            try:
                for name, call in pieces:
                    with sending_as(f"{self._key_text}|{steps.key}|{name}"):
                        result = await steps.run(
                            name,
                            functools.partial(self._deliver, call, sent(name)),
                            retryable=SEND_RETRYABLE,
                            doubtful=(SendInDoubt,),
                        )
                    if result.outcome is Outcome.FAILED:
                        if caption is not None:  # the text rode on the file that did not go
                            call = functools.partial(client.send_text, self._key, caption)
                            with sending_as(f"{self._key_text}|{steps.key}|{prefix}text:0"):
                                await steps.run(
                                    f"{prefix}text:0",
                                    functools.partial(
                                        self._deliver, call, sent("", describe_text(caption))
                                    ),
                                    retryable=SEND_RETRYABLE,
                                    doubtful=(SendInDoubt,),
                                )
                        return result.reason
            finally:
                if token is not None and token.used:  # single-use: the next send pushes
                    self._state.reply_token = self._state.reply_token_at = None
        self._s.metrics.channel_sends.labels(channel.value, "sent").inc()
        self._state.last_outbound_at = time.time()  # activity on the thread (the buffer)
        return None

    def _reply_token(self) -> ReplyToken | None:
        """The thread's reply token for the sends under way (LINE's), if it has one."""
        state = self._state
        if state.reply_token is None or state.reply_token_at is None:
            return None
        return ReplyToken(state.reply_token, self._key.customer, state.reply_token_at)

    async def _remembered(self, text: str, send: Callable[[], Awaitable[object]]) -> object:
        """Send, and remember the sent message's id and text (a customer may quote it)."""
        message_id = await send()
        self._state.remember(str(message_id), shorten(text))
        return message_id

    async def _deliver(
        self, call: Callable[[], Awaitable[object]], record: SentRecord | None = None
    ) -> str | None:
        """One provider send; why it was refused for good, or None. ``record`` is kept under
        the provider's id for the message, committed with the entry."""
        channel = self._key.channel.value
        try:
            provider_id = await call()
        except OutsideCustomerWindow:
            return channel_spec(self._key.channel).window_closed
        except RecipientUnavailable as exc:
            return f"the customer cannot be reached on {channel} ({_reason(exc)})"
        except SendRejected as exc:
            return f"{channel} refused the message ({_reason(exc)})"
        except (MediaUnavailable, MediaTooLarge, MediaHostForbidden) as exc:
            return f"the attachment could not be fetched to upload it to {channel} ({exc})"
        if record is not None and isinstance(provider_id, str):
            # At once, for a status callback that names no thread and comes before the entry
            # commits (best effort: the entry's commit carries it too).
            sent = {sent_message_key(channel, provider_id): record.encode()}
            self._work.writes.update(sent)
            with contextlib.suppress(JournalUnavailable):
                await self._s.journal.put_state(sent)
        return None

    async def _send_template(
        self, steps: Steps, template: ApiTemplate, step: str, conversation_id: str | None = None
    ) -> str | None:
        """Send a WhatsApp template as a recorded step; why it failed for good, or None."""
        if self._key.channel is not Channel.WHATSAPP:
            return "templates are sent on the whatsapp channel only"
        client = self._s.gateway.whatsapp_for(self._key.account)
        if client is None:
            return f"the whatsapp account {self._key.account} is not configured on the bridge"
        call = functools.partial(
            client.send_template, self._key, template.name, template.language.code,
            template.payload_components(),
        )  # fmt: skip
        conversation_id = conversation_id or self._state.conversation_id
        record = None  # kept under the wamid: a later "failed" status leaves a note
        if conversation_id is not None:
            record = SentRecord(
                thread=self._key_text, conversation_id=conversation_id,
                what=f"the WhatsApp template {template.name} ({template.language.code})",
                sent_at=time.time(),
            )  # fmt: skip
        result = await steps.run(
            step,
            functools.partial(self._deliver, call, record),
            retryable=SEND_RETRYABLE,
            doubtful=(SendInDoubt,),  # no answer in time: it may have gone out, not resent
        )
        if result.outcome is Outcome.FAILED:
            return result.reason
        self._s.metrics.channel_sends.labels(self._key.channel.value, "sent").inc()
        self._state.last_outbound_at = time.time()  # activity on the thread (the buffer)
        return None


def _outbound_media(attachment: OutboundAttachment) -> OutboundMedia:
    return OutboundMedia(
        mime_type=attachment.mime_type, filename=attachment.filename, url=attachment.url
    )


def _caption(
    client: ChannelClient,
    key: ThreadKey,
    content: Sequence[OutgoingText | InlineImage],
    media: list[OutboundMedia],
) -> str | None:
    """The text as the caption of the only attachment, when it is one unstyled piece with no
    inline image and the channel takes a caption that long on that type of file (one message);
    None: the text goes first, on its own."""
    if len(media) != 1 or len(content) != 1:
        return None
    (only,) = content
    if not isinstance(only, OutgoingText) or only.spans or not only.text:
        return None
    return only.text if client.caption_fits(key, media[0], only.text) else None


def _reason(exc: ChannelError) -> str:
    return type(exc).__name__ if exc.code is None else f"code {exc.code}"
