"""Every recorded provider payload in tests/fixtures/channels parses to explicit expectations."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from channels import (
    Channel,
    ChannelError,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    Location,
    MediaKind,
    MediaRef,
    OutsideCustomerWindow,
    ParsedEvent,
    RecipientUnavailable,
    SendRateLimited,
    SendRejected,
    SendTransient,
    SharedContact,
    SignatureInvalid,
    ThreadKey,
    classify_instagram_error,
    classify_messenger_error,
    classify_viber_error,
    meta_message_body,
    parse_instagram,
    parse_line,
    parse_messenger,
    parse_telegram,
    parse_twilio,
    parse_viber,
    parse_whatsapp,
    twilio_form_params,
    verify_meta_handshake,
    verify_meta_signature,
    verify_twilio_signature,
    verify_viber_signature,
    verify_whatsapp_handshake,
    verify_whatsapp_signature,
)

from .conftest import fixtures_dir

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BOT = "7000000001"
WA_1 = "106540352242922"  # phone_number_id in Meta's OpenAPI examples
WA_2 = "1122334455667"  # phone_number_id in pywa's fixtures
CUSTOMER = "+15550001111"
BUSINESS = "+15550002222"


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def wa_key(account: str, customer: str = "15550001111") -> ThreadKey:
    return ThreadKey(channel=Channel.WHATSAPP, account=account, customer=customer)


def tw_key(customer: str = CUSTOMER) -> ThreadKey:
    return ThreadKey(channel=Channel.TWILIO, account=BUSINESS, customer=customer)


def tg_key(chat: str) -> ThreadKey:
    return ThreadKey(channel=Channel.TELEGRAM, account=BOT, customer=chat)


def wa_msg(account: str, mid: str, sent: int, name: str, **kw: object) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "key": wa_key(account),
            "provider_message_id": mid,
            "phone": CUSTOMER,
            "profile_name": name,
            "sent_at": ts(sent),
            **kw,
        }
    )


def tw_msg(sid: str, customer: str, phone: str | None, **kw: object) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "key": tw_key(customer),
            "provider_message_id": sid,
            "phone": phone,
            "sent_at": RECEIVED,
            **kw,
        }
    )


def tg_msg(chat: str, mid: int, date: int, name: str, **kw: object) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "key": tg_key(chat),
            "provider_message_id": f"{chat}:{mid}",
            "profile_name": name,
            "sent_at": ts(date),
            **kw,  # may replace any of the above
        }
    )


def tg_sample(**kw: object) -> InboundMessage:
    """The message most Bot API samples share (chat 1111111, message 1365), with ``kw``."""
    return tg_msg("1111111", 1365, 1441645532, TG_NAME, **kw)


META_IMAGE_WAMID = "wamid.HBgLMTU1NTAwMDExMTEVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
TG_NAME = "Test Firstname Test Lastname"
TG_FILE = "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX"
TW_MEDIA = (
    "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/"
    "MM21151abfaadc1fb79b782f8460862a52/Media/ME5f0afa2336bd0f73ca553fb5a2e3150bc"
)

WHATSAPP: dict[str, list[ParsedEvent]] = {
    "text.json": [
        wa_msg(
            WA_1,
            META_IMAGE_WAMID,
            1749416383,
            "Sheena Nelson",
            text="Does it come in another color?",
        )
    ],
    "image.json": [
        wa_msg(
            WA_1,
            META_IMAGE_WAMID,
            1744344496,
            "Sheena Nelson",
            text="Taj Mahal",
            attachments=(
                MediaRef(
                    kind=MediaKind.IMAGE,
                    ref="1003383421387256",
                    mime_type="image/jpeg",
                    sha256="SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
                ),
            ),
        )
    ],
    "image_with_url.json": [
        wa_msg(
            WA_2,
            "wamid.xyzxyz",
            1697043379,
            "Test Name",
            attachments=(
                MediaRef(
                    kind=MediaKind.IMAGE, ref="65463453", mime_type="image/jpeg", sha256="4654+8g="
                ),
            ),
        )
    ],
    "document.json": [
        wa_msg(
            WA_2,
            "wamid.xyzxyz",
            1697043666,
            "Test Name",
            text="caption",
            attachments=(
                MediaRef(
                    kind=MediaKind.DOCUMENT,
                    ref="1234567890987654321",
                    mime_type="application/pdf",
                    filename="filename.pdf",
                    sha256="grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=",
                ),
            ),
        )
    ],
    "audio_voice.json": [
        wa_msg(
            WA_2,
            "wamid.xyzxyz",
            1697043473,
            "Test Name",
            attachments=(
                MediaRef(
                    kind=MediaKind.VOICE,
                    ref="1234567890987654321",
                    mime_type="audio/ogg; codecs=opus",
                    sha256="m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI=",
                ),
            ),
        )
    ],
    "location.json": [
        wa_msg(
            WA_1,
            "wamid.HBgLMTU1NTAwMDExMTEVAgASGBQzQTU2MjZEMDBGRkE3MENEMDE0RQA=",
            1744344496,
            "Sheena Nelson",
            location=Location(
                latitude=37.44221496582,
                longitude=-122.16165924072,
                name="Philz Coffee",
                address="101 Forest Ave, Palo Alto, CA 94301",
                url="https://philzcoffee.com/",
            ),
        )
    ],
    "reply_with_context.json": [
        wa_msg(
            WA_1,
            "wamid.HBgLMTU1NTAwMDExMTEVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA=",
            1750016800,
            "Sheena Nelson",
            text="Is this still available?",
            reply_to="wamid.HBgLMTU1NTAwMDExMTEVAgARGA9wcm9kdWN0X2lucXVpcnkA",
        )
    ],
    "text_contacts_with_bsuid.json": [
        wa_msg(WA_2, "wamid.xyzxyz", 1697043223, "Test Name", text="Body Text")
    ],
    "reaction.json": [
        wa_msg(
            WA_1,
            META_IMAGE_WAMID,
            1749419544,
            "Sheena Nelson",
            reaction="👍",
            reply_to="wamid.HBgLMTU1NTAwMDExMTEVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA",
        )
    ],
    "system_user_changed_number.json": [
        Ignored(
            reason="whatsapp system event: customer 15550001111 changed number to 15550003333; "
            "the thread is not re-keyed automatically",
            what="system",
        )
    ],
    "unsupported.json": [
        wa_msg(
            WA_1,
            "wamid.HBgLMTU1NTAwMDExMTEVAgASGBI5N0MwRjg0RTVBNUI1RDA2OTkA",
            1750090702,
            "Sheena Nelson",
            unsupported="unknown (Message type unknown, error 131051)",
        )
    ],
    "status_sent.json": [
        DeliveryStatus(
            key=wa_key(WA_2), provider_message_id="wamid.xyzxyz", status="sent", at=ts(1698266945)
        )
    ],
    "status_delivered.json": [
        DeliveryStatus(
            key=wa_key(WA_2),
            provider_message_id="wamid.xyzxyz",
            status="delivered",
            at=ts(1698266945),
        )
    ],
    "status_read.json": [
        DeliveryStatus(
            key=wa_key(WA_2), provider_message_id="wamid.xyzxyz", status="read", at=ts(1689380458)
        )
    ],
    "status_failed.json": [
        DeliveryStatus(
            key=wa_key(WA_2),
            provider_message_id="wamid.xyzxyz",
            status="failed",
            error_code=130472,
            error_title="User's number is part of an experiment",
            at=ts(1689380458),
        )
    ],
}

TWILIO: dict[str, list[ParsedEvent]] = {
    "sms_inbound_text": [
        tw_msg(
            "SMa741ddeb574e5dda5516c73417fcd28a", CUSTOMER, CUSTOMER, text="Hi there from Twilio"
        )
    ],
    "sms_inbound_mms_two_media": [
        tw_msg(
            "SMe287d7109a5a925f182f0e07fe5b223b",
            CUSTOMER,
            CUSTOMER,
            text="Msg",
            # The source fixture omits MediaContentType*: the kind is guessed from the URL.
            attachments=(
                MediaRef(kind=MediaKind.IMAGE, ref="cat.jpg"),
                MediaRef(kind=MediaKind.IMAGE, ref="dog.jpg"),
            ),
        )
    ],
    "whatsapp_inbound_text": [
        tw_msg("SM892512e202b34d4109b10a3893fa9640", f"whatsapp:{CUSTOMER}", CUSTOMER, text="test")
    ],
    "whatsapp_inbound_image": [
        tw_msg(
            "MM21151abfaadc1fb79b782f8460862a52",
            f"whatsapp:{CUSTOMER}",
            CUSTOMER,
            attachments=(MediaRef(kind=MediaKind.IMAGE, ref=TW_MEDIA, mime_type="image/jpeg"),),
        )
    ],
    "whatsapp_inbound_location": [
        tw_msg(
            "SM9c871cd9649aa3829298e153ae6a8123",
            f"whatsapp:{CUSTOMER}",
            CUSTOMER,
            location=Location(
                latitude=52.303897857666016,
                longitude=4.750025749206543,
                name="Microsoft",
                address="Evert van de Beekstraat 354, Schiphol, North Holland 1118 CZ",
            ),
        )
    ],
    "whatsapp_inbound_text_from_bsuid": [
        tw_msg("SMe287d7109a5a925f182f0e07fe5b223b", "whatsapp:US.1234", None, text="Msg")
    ],
    "sms_status_sent": [
        DeliveryStatus(
            key=tw_key(), provider_message_id="SM7ac25b8b7f04410093ff54e1fd2b4256", status="sent"
        )
    ],
    "sms_status_failed_unsubscribed_21610": [
        # The callback names no From, so the thread is unknown; the bridge maps it by sid.
        DeliveryStatus(
            key=None,
            provider_message_id="SMe287d7109a5a925f182f0e07fe5b223b",
            status="failed",
            error_code=21610,
            error_title="Attempt to send to unsubscribed recipient",
        )
    ],
    "whatsapp_status_sent": [
        DeliveryStatus(
            key=tw_key(f"whatsapp:{CUSTOMER}"),
            provider_message_id="SM0cec4ed334e74bcbb64eb8b6684e9654",
            status="sent",
        )
    ],
    "whatsapp_status_delivered": [
        DeliveryStatus(
            key=tw_key(f"whatsapp:{CUSTOMER}"),
            provider_message_id="SMdf55df64a2ff4920bb0748193cfbb640",
            status="delivered",
        )
    ],
}

TELEGRAM: dict[str, list[ParsedEvent]] = {
    "text.json": [tg_sample(text="/start")],
    "reply.json": [
        tg_sample(
            text="/start",
            reply_to="1111111:1334",
            quoted_text="Original",
        )
    ],
    "audio.json": [
        tg_sample(
            attachments=(
                MediaRef(kind=MediaKind.AUDIO, ref=TG_FILE, mime_type="audio/mpeg", size=3897500),
            ),
        )
    ],
    "voice.json": [
        tg_sample(
            attachments=(
                MediaRef(kind=MediaKind.VOICE, ref=TG_FILE, mime_type="audio/ogg", size=23000),
            ),
        )
    ],
    "document.json": [
        tg_sample(
            attachments=(
                MediaRef(
                    kind=MediaKind.DOCUMENT,
                    ref=TG_FILE,
                    mime_type="application/pdf",
                    size=536392,
                    filename="Testfile.pdf",
                ),
            ),
        )
    ],
    "photo.json": [
        tg_msg(
            "12345678",
            12345,
            1508825154,
            "FirstName LastName",
            text="photo description",
            attachments=(
                MediaRef(
                    kind=MediaKind.IMAGE,
                    ref="AgADBAADFak0G88YZAf8OAug7bHyS9x2ZxkABHVfpJywcloRAAGAAQABAg",
                    mime_type="image/jpeg",
                    size=1101,
                ),
            ),
        )
    ],
    "photo_album_item_modern.json": [
        tg_msg(
            "1111111",
            4,
            1680376451,
            TG_NAME,
            # The largest PhotoSize is the last one.
            attachments=(
                MediaRef(
                    kind=MediaKind.IMAGE,
                    ref="AgACAgIAAxkBAAMEZCiCg7A1qAABECDXqbjnqtId777bAAIFyDEbLKhISVFwzRK8kZMNAQADAgADeQADLwQ",
                    mime_type="image/jpeg",
                    size=132533,
                ),
            ),
        )
    ],
    "location.json": [
        tg_msg(
            "12345678",
            12345,
            1508755473,
            "FirstName LastName",
            location=Location(latitude=55.693416, longitude=37.624605),
        )
    ],
    "edited_message.json": [
        tg_msg(
            "1111111",
            1365,
            1441646600,
            TG_NAME,
            provider_message_id="1111111:1365:edited:1441646600",
            text="Edited text",
            edited=True,
        )
    ],
    "callback_query.json": [
        Ignored(reason="telegram update 10000 (callback_query) is not bridged", what="update")
    ],
}

PAGE = "682498302938465"
PSID = "5550001111000001"
FB_MID = "mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c"
CDN = "https://scontent.xx.fbcdn.net/v/t1.15752-9/fake_"


def fb_msg(page: str, psid: str, millis: int, **kw: object) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "key": ThreadKey(channel=Channel.MESSENGER, account=page, customer=psid),
            "sent_at": ts(millis // 1000),
            **kw,
        }
    )


def ig_msg(millis: int, **kw: object) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "key": ThreadKey(channel=Channel.INSTAGRAM, account="1234567890", customer="5678"),
            "sent_at": ts(millis // 1000),
            **kw,
        }
    )


def fb_media(kind: MediaKind, name: str) -> list[ParsedEvent]:
    return [
        fb_msg(
            PAGE,
            PSID,
            1518479195308,
            provider_message_id=FB_MID,
            attachments=(MediaRef(kind=kind, ref=CDN + name),),
        )
    ]


EDITED_MID = "m_1457764197618:41d102a3e1ae206a38"
MESSENGER: dict[str, list[ParsedEvent]] = {
    "attachment_audio.json": fb_media(MediaKind.AUDIO, "audio_attachment"),
    "attachment_file.json": fb_media(MediaKind.DOCUMENT, "file_attachment"),
    "attachment_image.json": fb_media(MediaKind.IMAGE, "image_attachment"),
    "attachment_video.json": fb_media(MediaKind.VIDEO, "video_attachment"),
    "delivery.json": [
        DeliveryStatus(
            key=ThreadKey(channel=Channel.MESSENGER, account=PAGE, customer=PSID),
            provider_message_id="mid.1458668856218:ed81099e15d3f4f233",
            status="delivered",
            at=ts(1518479195),  # no event timestamp: the entry's time
        )
    ],
    "echo.json": [Ignored(reason="messenger echo of the account's own message", what="echo")],
    "fallback_shared_link.json": [
        fb_msg(
            "1234567890",
            "5678",
            1459991487970,
            provider_message_id="external_id",
            text="(shared a link: Foo, My Documents/foo.doc)",
        )
    ],
    "location.json": [
        fb_msg(
            "1234567890",
            "5678",
            1459991487970,
            provider_message_id="external_id",
            location=Location(latitude=1.2, longitude=-1.3),
        )
    ],
    "message_edit.json": [
        fb_msg(
            PAGE,
            PSID,
            1458668856463,
            provider_message_id=f"{EDITED_MID}:edited:1",
            text="hello, edited world!",
            edited=True,
        )
    ],
    "postback.json": [
        fb_msg(
            "1234567890",
            "5678",
            1459991487970,
            provider_message_id="postback:5678:1459991487970",
            text="postback title",
        )
    ],
    "reaction_react.json": [
        fb_msg(
            PAGE,
            PSID,
            1458668856463,
            provider_message_id=f"reaction:{EDITED_MID}:react:1458668856463",
            reply_to=EDITED_MID,
            reaction="❤️",
        )
    ],
    "reaction_unreact.json": [
        fb_msg(
            PAGE,
            PSID,
            1458668856463,
            provider_message_id=f"reaction:{EDITED_MID}:unreact:1458668856463",
            reply_to=EDITED_MID,
            reaction="",
        )
    ],
    "read.json": [Ignored(reason="messenger read receipt (counted only)", what="receipt")],
    "sticker_thumbs_up.json": [
        fb_msg(
            "1234567890",
            "5678",
            1459991487970,
            provider_message_id="external_id",
            attachments=(
                MediaRef(kind=MediaKind.STICKER, ref="https://scontent.xx.fbcdn.net/v/arst"),
            ),
        )
    ],
    "text_quick_reply.json": [
        fb_msg(
            PAGE,
            PSID,
            1458692752478,
            provider_message_id="mid.1457764197618:41d102a3e1ae206a38",
            text="hello, world!",
        )
    ],
    "text_reply_to.json": [
        fb_msg(
            PAGE,
            PSID,
            1458692752478,
            provider_message_id=EDITED_MID,
            text="hello, world!",
            reply_to="m_1fTq8oLumEyIp3Q2MR-aY7IfLZDamVrALniheU",
        )
    ],
}

INSTAGRAM: dict[str, list[ParsedEvent]] = {
    "attachment_image.json": [
        ig_msg(
            1459991487970,
            provider_message_id="external_id",
            attachments=(MediaRef(kind=MediaKind.IMAGE, ref="https://image-url/foo.png"),),
        )
    ],
    "echo.json": [Ignored(reason="instagram echo of the account's own message", what="echo")],
    "like_heart.json": [ig_msg(1459991487970, provider_message_id="external_id", text="❤️")],
    "postback_icebreaker.json": [
        ig_msg(
            1459991487970,
            provider_message_id="postback:5678:1459991487970",
            text="icebreaker question",
        )
    ],
    "reaction_react.json": [
        ig_msg(
            1630990444000,
            provider_message_id="reaction:message-id-1:react:1630990444000",
            reply_to="message-id-1",
            reaction="❤️",
        )
    ],
    "seen.json": [Ignored(reason="instagram read receipt (counted only)", what="receipt")],
    "share.json": [
        ig_msg(
            1630990444000,
            provider_message_id="message-id-1",
            text="(shared a post: https://www.example.com/test.jpeg)",
        )
    ],
    "story_mention.json": [
        ig_msg(
            1459991487970,
            provider_message_id="external_id",
            text="(mentioned you in their story: https://story-url)",
        )
    ],
    "story_reply.json": [
        ig_msg(
            1630990444000,
            provider_message_id="message-id-1",
            text="(replying to your story: https://chatwoot-assets.local/sample.png)\n"
            "This is the story reply",
        )
    ],
    "text.json": [ig_msg(1459991487970, provider_message_id="external_id", text="Hello World")],
    "unsend.json": [
        ig_msg(
            1569262485349,
            provider_message_id="external_id:deleted",
            reply_to="external_id",
            text="(the customer unsent this message)",
        )
    ],
}

VB_USER = "xy5/5y6O81+/kbWHpLhBoA=="  # base64: "/", "+" and "="
VB_OTHER = "01234567890A="
VB_TOKEN = "4987381189870374000"  # above 2**53: kept exact (a float would not)
VB_EVENT_TOKEN = "4912661846655238145"
VB_SENT = datetime(2016, 12, 7, 20, 21, 52, 807000, tzinfo=UTC)  # 1481142112807 ms
VB_EVENT_AT = datetime(2016, 3, 12, 6, 29, 57, 627000, tzinfo=UTC)  # 1457764197627 ms


def vb_key(customer: str = VB_USER) -> ThreadKey:
    return ThreadKey(channel=Channel.VIBER, account="default", customer=customer)


def vb_msg(**kw: object) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "key": vb_key(),
            "provider_message_id": VB_TOKEN,
            "profile_name": "ET3",
            "sent_at": VB_SENT,
            **kw,
        }
    )


def vb_status(status: str, **kw: object) -> DeliveryStatus:
    return DeliveryStatus(
        key=vb_key(VB_OTHER),
        provider_message_id=VB_EVENT_TOKEN,
        status=status,
        at=VB_EVENT_AT,
        **kw,  # type: ignore[arg-type]
    )


def vb_media(kind: MediaKind, name: str, size: int, filename: str | None = None) -> MediaRef:
    url = f"https://dl-media.viber.com/fake/{name}"
    return MediaRef(kind=kind, ref=url, size=size, filename=filename)


VIBER: dict[str, list[ParsedEvent]] = {
    "message_text.json": [vb_msg(text="incoming msg")],
    "message_text_unicode.json": [
        vb_msg(
            key=vb_key(VB_OTHER),
            provider_message_id=VB_EVENT_TOKEN,
            profile_name="ふで都急ぼちラり面関ごル期販ずラ否裁ぞるめ数努むや正記味てょ",
            sent_at=VB_EVENT_AT,
            text="批封廟根縄華勢田郎報株聞。変宝長独部鉱内出殺反提似惑金参勧車査真測。"
            "見名基現画府日室事集百藤米。発目本当党考万名東拓学早職表治月佐。"
            "町要静子呉遊推写間確長無読死覧件一盛治融。",
        )
    ],
    "message_picture.json": [
        vb_msg(
            text="a caption",
            attachments=(vb_media(MediaKind.IMAGE, "picture.jpg", 54321, "picture.jpg"),),
        )
    ],
    "message_video.json": [
        vb_msg(attachments=(vb_media(MediaKind.VIDEO, "video.mp4", 1048576),)),
    ],
    "message_file.json": [
        vb_msg(attachments=(vb_media(MediaKind.DOCUMENT, "report.pdf", 20480, "report.pdf"),)),
    ],
    # A sticker without a media URL: its text is what can be carried.
    "message_sticker.json": [vb_msg(text="incoming msg")],
    "message_contact.json": [
        vb_msg(
            text="incoming msg",
            contacts=(SharedContact(name="Alex", phones=("+12067799191",)),),
        )
    ],
    "message_location.json": [
        vb_msg(text="incoming msg", location=Location(latitude=1.2, longitude=-1.3))
    ],
    "message_url.json": [vb_msg(text="incoming msg\nhttp://foo.com/")],
    "delivered.json": [vb_status("delivered")],
    "seen.json": [vb_status("read")],
    "failed.json": [vb_status("failed", error_title="failure description")],
    "subscribed.json": [
        Ignored(reason=f"viber subscribed event of user {VB_OTHER} is not bridged", what="system")
    ],
    "unsubscribed.json": [
        Ignored(reason=f"viber unsubscribed event of user {VB_OTHER} is not bridged", what="system")
    ],
    "conversation_started.json": [
        Ignored(
            reason=f"viber conversation_started event of user {VB_USER} is not bridged",
            what="system",
        )
    ],
    # set_webhook's check: acknowledged (200), nothing bridged.
    "webhook_check.json": [Ignored(reason="viber webhook event is not bridged", what="system")],
}

LINE_BOT = "U123"  # the line-bot-sdk-python fixtures' destination
LINE_USER = "U206d25c2ea6bd87c17655609a1c37cb8"
LINE_TOKEN = "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA"
LINE_SENT = datetime.fromtimestamp(1462629479.859, tz=UTC)


def line_msg(mid: str = "325708", **kw: object) -> InboundMessage:
    fields: dict[str, object] = {
        "key": ThreadKey(channel=Channel.LINE, account=LINE_BOT, customer=LINE_USER),
        "provider_message_id": mid,
        "sent_at": LINE_SENT,
        "reply_token": LINE_TOKEN,
    }
    return InboundMessage.model_validate({**fields, **kw})


LINE: dict[str, list[ParsedEvent]] = {
    "text.json": [line_msg(text="Hello, world")],
    "message_edited.json": [
        line_msg("325708:edited:1462629479859", text="Hello, edited world", edited=True)
    ],
    "image_line_content.json": [
        line_msg(
            "354718705033693861",
            sent_at=datetime.fromtimestamp(1627356924.722, tz=UTC),
            reply_token="fbf94e269485410da6b7e3a5e33283e8",
            attachments=(
                MediaRef(kind=MediaKind.IMAGE, ref="354718705033693861", mime_type="image/jpeg"),
            ),
        )
    ],
    # contentProvider "external": the content is at originalContentUrl, not LINE's.
    "video.json": [
        line_msg(
            attachments=(
                MediaRef(kind=MediaKind.VIDEO, ref="https://example.com", mime_type="video/mp4"),
            )
        )
    ],
    "audio.json": [
        line_msg(
            attachments=(
                MediaRef(kind=MediaKind.AUDIO, ref="https://example.com", mime_type="audio/m4a"),
            )
        )
    ],
    "file.json": [
        line_msg(
            attachments=(
                MediaRef(
                    kind=MediaKind.DOCUMENT,
                    ref="325708",
                    mime_type="text/plain",
                    size=2138,
                    filename="file.txt",
                ),
            )
        )
    ],
    "location.json": [
        line_msg(
            location=Location(
                latitude=35.65910807942215,
                longitude=139.70372892916203,
                name="my location",
                address="Tokyo",
            )
        )
    ],
    "sticker.json": [line_msg(unsupported="sticker")],
    "follow.json": [
        line_msg(
            "unblock:testwebhookeventid",
            text="(unblocked the LINE account)",
            opt_out="start",
            reply_token=None,
        )
    ],
    "unfollow.json": [
        line_msg(
            "unfollow:testwebhookeventid",
            text="(blocked the LINE account)",
            opt_out="stop",
            reply_token=None,
        )
    ],
    # A room's message: no userId (the member did not share it); ignored by default anyway.
    "image_external_room.json": [
        Ignored(
            reason="line room Ra8dbf4673c4c812cd491258042226c99: message not bridged"
            " (THREADLINE_LINE_GROUPS=ignore)",
            what="group",
        )
    ],
    "join.json": [
        Ignored(reason="line join event in group Ca56f94637cc4347f90a25382909b24b9", what="group")
    ],
    "unsend.json": [
        Ignored(
            reason="line group Ca56f94637cc4347f90a25382909b24b9: unsend not bridged"
            " (THREADLINE_LINE_GROUPS=ignore)",
            what="group",
        )
    ],
    "postback.json": [Ignored(reason="line postback event is not bridged", what="event")],
}

# Files that are not webhook bodies; each has its own test below.
SPECIAL = {
    "whatsapp/signature_vector_x_hub_signature_256.json": "test_whatsapp_signature_vectors",
    "whatsapp/verify_handshake_get.json": "test_whatsapp_handshake_fixture",
    "twilio/signature_vectors.json": "test_twilio_signature_vectors",
    "messenger/signature_vectors.json": "test_meta_signature_vectors",
    "instagram/signature_vectors.json": "test_meta_signature_vectors",
    "messenger/verify_handshake_get.json": "test_meta_handshake_fixture",
    "instagram/verify_handshake_get.json": "test_meta_handshake_fixture",
    **{
        f"{channel}/{name}": "test_meta_error_fixture"
        for channel, names in {
            "messenger": (
                "error_invalid_token_190.json",
                "error_outside_window.json",
                "error_rate_limit.json",
                "error_temporary_1200.json",
                "error_user_unavailable_551.json",
            ),
            "instagram": ("error_invalid_token_190.json", "error_outside_window.json"),
        }.items()
        for name in names
    },
    **{
        f"{channel}/{name}": "test_meta_send_fixture"
        for channel in ("messenger", "instagram")
        for name in ("send_text.json", "send_media_attachment.json", "send_tag_human_agent.json")
    },
    "viber/signature_vectors.json": "test_viber_signature_vectors",
    **{
        f"viber/{name}.json": "test_viber_send_answers_and_errors_classify"
        for name in (
            "send_text",
            "send_picture",
            "send_file",
            "error_bad_data",
            "error_general",
            "error_invalid_auth_token",
            "error_not_subscribed",
            "error_receiver_not_registered",
            "error_too_many_requests",
        )
    },
    "line/signature_vectors.json": "tests/channels/test_line.py::test_line_signature_vectors",
    **{
        f"line/{name}": "tests/channels/test_line.py::test_line_error_fixture_is_classified"
        for name in (
            "error_invalid_reply_token.json",
            "error_invalid_token.json",
            "error_monthly_limit.json",
            "error_rate_limit.json",
            "error_validation.json",
        )
    },
    **{
        f"line/{name}": "tests/channels/test_line.py::test_line_send_matches_the_fixture"
        for name in ("send_reply_text.json", "send_push_image_and_text.json")
    },
}


def covered() -> set[str]:
    names = {f"whatsapp/{n}" for n in WHATSAPP} | {f"telegram/{n}" for n in TELEGRAM}
    names |= {f"messenger/{n}" for n in MESSENGER} | {f"instagram/{n}" for n in INSTAGRAM}
    names |= {f"viber/{n}" for n in VIBER}
    names |= {f"line/{n}" for n in LINE}
    for stem in TWILIO:
        names |= {f"twilio/{stem}.txt", f"twilio/{stem}.json"}
    return names | set(SPECIAL)


# Recorded for the channels of issue 21 and not parsed yet: tests/test_next_channel_fixtures.py
# checks them (JSON, a SOURCES.md line, signature vectors). A folder leaves PENDING when its
# channel is implemented and its files get expectations here.
PENDING: set[str] = set()
NOT_FIXTURES = {"SOURCES.md", "NEXT_CHANNELS.md"}


def test_every_fixture_file_has_an_expectation() -> None:
    root = fixtures_dir()
    present = {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file()
        and p.name not in NOT_FIXTURES
        and p.relative_to(root).parts[0] not in PENDING
    }
    assert present - covered() == set(), "fixtures without an expectation"
    assert covered() - present == set(), "expectations without a fixture"


Parser = Callable[[bytes], list[ParsedEvent]]

CASES: list[tuple[str, Parser, list[ParsedEvent]]] = [
    *((f"whatsapp/{n}", parse_whatsapp, e) for n, e in WHATSAPP.items()),
    *(
        (f"twilio/{n}.txt", lambda b: parse_twilio(b, received_at=RECEIVED), e)
        for n, e in TWILIO.items()
    ),
    *((f"telegram/{n}", lambda b: parse_telegram(b, BOT), e) for n, e in TELEGRAM.items()),
    *((f"viber/{n}", lambda b: parse_viber(b, "default"), e) for n, e in VIBER.items()),
    *((f"line/{n}", parse_line, e) for n, e in LINE.items()),
    *((f"messenger/{n}", parse_messenger, e) for n, e in MESSENGER.items()),
    *((f"instagram/{n}", parse_instagram, e) for n, e in INSTAGRAM.items()),
]


@pytest.mark.parametrize(("name", "parse", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fixture_parses_to_expected_events(
    name: str, parse: Parser, expected: list[ParsedEvent]
) -> None:
    assert parse((fixtures_dir() / name).read_bytes()) == expected


@pytest.mark.parametrize("stem", sorted(TWILIO))
def test_twilio_json_twin_matches_the_form_body(stem: str) -> None:
    root = fixtures_dir() / "twilio"
    as_dict = json.loads((root / f"{stem}.json").read_text())
    assert dict(twilio_form_params((root / f"{stem}.txt").read_bytes())) == as_dict


def _load(name: str) -> dict[str, object]:
    data = json.loads((fixtures_dir() / name).read_text())
    assert isinstance(data, dict)
    return data


def test_whatsapp_signature_vectors() -> None:
    vectors = _load("whatsapp/signature_vector_x_hub_signature_256.json")["vectors"]
    assert isinstance(vectors, list)
    for vector in vectors:
        body = vector["raw_body"].encode("utf-8")
        header, secret = vector["header_value"], vector["app_secret"]
        if vector.get("expected_valid", True):
            verify_whatsapp_signature(body, header, secret)
        else:
            with pytest.raises(SignatureInvalid):
                verify_whatsapp_signature(body, header, secret)


def test_whatsapp_handshake_fixture() -> None:
    fixture = _load("whatsapp/verify_handshake_get.json")
    query = fixture["query"]
    assert isinstance(query, dict)
    token = fixture["configured_verify_token"]
    assert isinstance(token, str)
    expected = fixture["expected_response"]
    assert isinstance(expected, dict)
    assert verify_whatsapp_handshake(query, token) == expected["body"]
    with pytest.raises(SignatureInvalid):
        verify_whatsapp_handshake(query, token + "x")


def _vector_params(vector: dict[str, object]) -> list[tuple[str, str]]:
    multi = vector.get("params_multi")
    if isinstance(multi, list):
        return [(str(k), str(v)) for k, v in multi]
    params = vector["params"]
    assert isinstance(params, dict)
    return [(str(k), str(v)) for k, v in params.items()]


def test_twilio_signature_vectors() -> None:
    data = _load("twilio/signature_vectors.json")
    published = data["published_vectors"]
    assert isinstance(published, list)
    for vector in published:
        params = _vector_params(vector)
        body = vector["raw_body"].encode() if "raw_body" in vector else None
        url, token, signature = vector["url"], vector["auth_token"], vector["expected_signature"]
        verify_twilio_signature(url, params, signature, token, body=body)
        with pytest.raises(SignatureInvalid):
            verify_twilio_signature(url + "&x=1", params, signature, token, body=body)
        with pytest.raises(SignatureInvalid):
            verify_twilio_signature(url, params, signature, token + "0", body=body)
        if params:
            changed = [(params[0][0], params[0][1] + "0"), *params[1:]]
            with pytest.raises(SignatureInvalid):
                verify_twilio_signature(url, changed, signature, token, body=body)
        if body is not None:
            with pytest.raises(SignatureInvalid):
                verify_twilio_signature(url, params, signature, token, body=body + b" ")
    derived = data["derived_vectors_for_fixtures"]
    assert isinstance(derived, dict)
    for vector in derived["vectors"]:
        params = twilio_form_params((fixtures_dir() / vector["fixture"]).read_bytes())
        verify_twilio_signature(
            vector["url"], params, vector["expected_signature"], vector["auth_token"]
        )
        with pytest.raises(SignatureInvalid):
            verify_twilio_signature(
                vector["url"], params[1:], vector["expected_signature"], vector["auth_token"]
            )


def test_whatsapp_batches_keep_entry_change_and_message_order() -> None:
    """Meta publishes no multi-message sample; this builds one from the fixtures' pieces."""
    text = json.loads((fixtures_dir() / "whatsapp/text.json").read_text())
    status = json.loads((fixtures_dir() / "whatsapp/status_read.json").read_text())
    message = text["entry"][0]["changes"][0]["value"]["messages"][0]
    second = {**message, "id": "wamid.second", "text": {"body": "second"}}
    bsuid = {**message, "id": "wamid.bsuid", "from": "US.1349"}
    value = text["entry"][0]["changes"][0]["value"]
    value = {
        **value,
        "messages": [message, second, bsuid],
        "contacts": [*value["contacts"], {"profile": {"name": "Scoped"}, "user_id": "US.1349"}],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [{"field": "messages", "value": value}]},
            {
                "id": "2",
                "changes": [
                    {"field": "account_update", "value": {}},
                    *status["entry"][0]["changes"],
                ],
            },
        ],
    }
    events = parse_whatsapp(json.dumps(body).encode())
    assert [type(e).__name__ for e in events] == [
        "InboundMessage",
        "InboundMessage",
        "InboundMessage",
        "Ignored",
        "DeliveryStatus",
    ]
    first, two, scoped = (e for e in events if isinstance(e, InboundMessage))
    assert [first.provider_message_id, two.provider_message_id] == [
        META_IMAGE_WAMID,
        "wamid.second",
    ]
    assert two.text == "second"
    assert (scoped.key.customer, scoped.phone, scoped.profile_name) == ("US.1349", None, "Scoped")
    assert events[3] == Ignored(reason="whatsapp field 'account_update' is not bridged")


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
def test_meta_signature_vectors(channel: str) -> None:
    vectors = _load(f"{channel}/signature_vectors.json")["vectors"]
    assert isinstance(vectors, list)
    assert {bool(v.get("expected_valid", True)) for v in vectors} == {True, False}
    for vector in vectors:
        body = vector["raw_body"].encode("utf-8")
        header, secret = vector["header_value"], vector["app_secret"]
        if vector.get("expected_valid", True):
            verify_meta_signature(body, header, secret)
            verify_whatsapp_signature(body, header, secret)  # the same scheme, shared
        else:
            with pytest.raises(SignatureInvalid):
                verify_meta_signature(body, header, secret)


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
def test_meta_handshake_fixture(channel: str) -> None:
    fixture = _load(f"{channel}/verify_handshake_get.json")
    query = fixture["query"]
    assert isinstance(query, dict)
    token = fixture["configured_verify_token"]
    assert isinstance(token, str)
    expected = fixture["expected_response"]
    assert isinstance(expected, dict)
    assert verify_meta_handshake(query, token) == expected["body"]
    with pytest.raises(SignatureInvalid):
        verify_meta_handshake(query, token + "x")


META_ERRORS: dict[str, type[Exception]] = {
    "messenger/error_invalid_token_190.json": SendRejected,
    "messenger/error_outside_window.json": OutsideCustomerWindow,
    "messenger/error_rate_limit.json": SendRateLimited,
    "messenger/error_temporary_1200.json": SendTransient,
    "messenger/error_user_unavailable_551.json": RecipientUnavailable,
    "instagram/error_invalid_token_190.json": SendRejected,
    "instagram/error_outside_window.json": OutsideCustomerWindow,
}


@pytest.mark.parametrize("name", sorted(META_ERRORS))
def test_meta_error_fixture(name: str) -> None:
    fixture = _load(name)
    status = fixture["status"]
    assert isinstance(status, int)
    response = httpx.Response(status, json=fixture["json"])
    classify = (
        classify_messenger_error if name.startswith("messenger") else classify_instagram_error
    )
    assert type(classify(response)) is META_ERRORS[name]


@pytest.mark.parametrize(
    "name",
    [
        f"{channel}/{name}"
        for channel in ("messenger", "instagram")
        for name in ("send_text.json", "send_media_attachment.json", "send_tag_human_agent.json")
    ],
)
def test_meta_send_fixture(name: str) -> None:
    """The bodies our client builds have the documented shape of each recorded request."""
    fixture = _load(name)
    request = fixture["request"]
    assert isinstance(request, dict)
    sent = request["json"]
    tagged = sent.get("messaging_type") == "MESSAGE_TAG"
    ours = meta_message_body(sent["recipient"]["id"], sent["message"], human_agent=tagged)
    assert ours["recipient"] == sent["recipient"]
    assert ours["message"] == sent["message"]
    if "messaging_type" in sent:
        assert ours["messaging_type"] == sent["messaging_type"]
        assert ours.get("tag") == sent.get("tag")
    response = fixture["response"]
    assert isinstance(response, dict)
    assert response["json"]["message_id"]


def test_viber_signature_vectors() -> None:
    data = _load("viber/signature_vectors.json")
    vectors = [*data["published_vectors"], *data["vectors"]]  # type: ignore[misc]
    assert len(vectors) == 5
    for vector in vectors:
        body = vector["raw_body"].encode("utf-8")
        header, token = vector["header_value"], vector["auth_token"]
        if vector["expected_valid"]:
            verify_viber_signature(body, header, token)
            with pytest.raises(SignatureInvalid):
                verify_viber_signature(body, header, token + "0")
            with pytest.raises(SignatureInvalid):
                verify_viber_signature(body + b" ", header, token)
        else:
            with pytest.raises(SignatureInvalid):
                verify_viber_signature(body, header, token)
        if vector.get("fixture"):  # the vector's body is the fixture's, compacted
            fixture = json.loads((fixtures_dir() / vector["fixture"]).read_bytes())
            assert json.loads(body) == fixture


VIBER_ERRORS: dict[str, type[ChannelError]] = {
    "error_bad_data.json": SendRejected,
    "error_invalid_auth_token.json": SendRejected,
    "error_not_subscribed.json": RecipientUnavailable,  # the reply becomes a note
    "error_receiver_not_registered.json": RecipientUnavailable,
    "error_too_many_requests.json": SendRateLimited,
    "error_general.json": SendTransient,
}


def test_viber_send_answers_and_errors_classify() -> None:
    for name in ("send_text", "send_picture", "send_file"):
        fixture = _load(f"viber/{name}.json")
        request, response = fixture["request"], fixture["response"]
        assert isinstance(request, dict)
        assert isinstance(response, dict)
        assert request["url"] == "https://chatapi.viber.com/pa/send_message"
        raw = (fixtures_dir() / f"viber/{name}.json").read_text()
        assert '"message_token": 4987381194038857789' in raw  # exact, above 2**53
        assert response["json"]["message_token"] == 4987381194038857789
    for name, expected in VIBER_ERRORS.items():
        fixture = _load(f"viber/{name}")
        answer = httpx.Response(fixture["status"], json=fixture["json"])  # type: ignore[arg-type]
        error = classify_viber_error(answer)
        assert type(error) is expected, name
        assert error.code == fixture["json"]["status"]  # type: ignore[index]
