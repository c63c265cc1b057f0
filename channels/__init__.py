"""Channel adapters (WhatsApp Cloud API, Twilio, Telegram): pure verify/parse/build functions
plus one thin I/O edge each. Filled in by the channel-adapter work."""

__all__: list[str] = []
