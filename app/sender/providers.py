"""Message providers behind one small interface.

A provider takes messages and answers, per message, whether it accepted it,
refused it for good, or failed transiently (retried with backoff by the
sender). What the provider later reports about a message (delivered, opened,
…) comes back through the same ingestion path integrators use
(`ingest_send_events`), identified by the send's `externalId`.

- `simulated` (default): accepts everything (or refuses a seeded share) and
  reports deterministic, seeded outcomes; its event keys and times are derived
  from the message, so a retried hand-off reports nothing twice.
- `smtp` (email): hands the message to an SMTP server (aiosmtplib); accepted
  by the server = SENT.
- `webhook`: POSTs each message as JSON, signed with HMAC-SHA256
  (`X-Pulse-Signature: sha256=<hex>` of the raw body), to the integrator's
  endpoint; a 2xx means accepted, and the integrator reports the receipts
  with `sendEventsIngest`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

import httpx
import orjson

from app.delivery.ingest import SendEventData
from app.settings import Settings
from models.enums import BounceType, Channel, SendEventType as E


@dataclass
class Message:
    send_id: int
    external_id: str
    org_id: int
    campaign_id: int
    campaign_name: str
    campaign_description: str
    lead_id: int
    lead_name: str
    channel: Channel
    address: str | None
    queued_at: datetime
    attempt: int


@dataclass
class Outcome:
    accepted: bool
    retry: bool = False
    reason: str | None = None
    events: list[SendEventData] | None = None  # reported right away (simulated, smtp)


class Provider:
    name = "provider"

    async def send(self, messages: list[Message]) -> list[Outcome]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def _fraction(seed: int, external_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{seed}:{external_id}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def event(m: Message, kind: E, at: datetime, **kw) -> SendEventData:
    return SendEventData(idempotency_key=f"{m.external_id}:{kind.value.lower()}", external_id=m.external_id,
                         channel=m.channel, type=kind, occurred_at=at, **kw)


class SimulatedProvider(Provider):
    """Seeded outcomes: the same message always gets the same story."""

    name = "simulated"

    def __init__(self, seed: int = 7, refuse_rate: float = 0.02, bounce_rate: float = 0.03,
                 open_rate: float = 0.45, click_rate: float = 0.12, reply_rate: float = 0.02,
                 unsubscribe_rate: float = 0.005, transient_rate: float = 0.0) -> None:
        self.seed = seed
        self.rates = dict(refuse=refuse_rate, bounce=bounce_rate, open=open_rate, click=click_rate,
                          reply=reply_rate, unsubscribe=unsubscribe_rate)
        self.transient_rate = transient_rate

    def story(self, m: Message) -> Outcome:
        f = lambda salt: _fraction(self.seed, m.external_id, salt)  # noqa: E731
        t0 = m.queued_at
        if f("refuse") < self.rates["refuse"]:
            return Outcome(False, reason="simulated: recipient refused by provider",
                           events=[event(m, E.FAILED, t0 + timedelta(seconds=1), reason="simulated: refused")])
        evs = [event(m, E.SENT, t0 + timedelta(seconds=1))]
        if f("bounce") < self.rates["bounce"]:
            evs.append(event(m, E.BOUNCED, t0 + timedelta(seconds=5),
                             bounce_type=BounceType.SOFT if f("soft") < 0.3 else BounceType.HARD))
            return Outcome(True, events=evs)
        evs.append(event(m, E.DELIVERED, t0 + timedelta(seconds=3)))
        if m.channel != Channel.SOCIAL and f("open") < self.rates["open"]:
            # Reported at hand-off, so kept close to it (seconds): a simulation, not a forecast.
            evs.append(event(m, E.OPENED, t0 + timedelta(seconds=5 + 25 * f("open-at"))))
            if f("click") < self.rates["click"] / max(self.rates["open"], 1e-9):
                evs.append(event(m, E.CLICKED, t0 + timedelta(seconds=31 + 20 * f("click-at"))))
        if f("reply") < self.rates["reply"]:
            evs.append(event(m, E.REPLIED, t0 + timedelta(seconds=40 + 20 * f("reply-at"))))
        if f("unsub") < self.rates["unsubscribe"]:
            evs.append(event(m, E.UNSUBSCRIBED, t0 + timedelta(seconds=59)))
        return Outcome(True, events=evs)

    async def send(self, messages: list[Message]) -> list[Outcome]:
        out = []
        for m in messages:
            if self.transient_rate and _fraction(self.seed, m.external_id, f"transient{m.attempt}") < self.transient_rate:
                out.append(Outcome(False, retry=True, reason="simulated: provider unavailable"))
            else:
                out.append(self.story(m))
        return out


class SmtpProvider(Provider):
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, messages: list[Message]) -> list[Outcome]:
        import aiosmtplib

        out = []
        for m in messages:
            if m.channel != Channel.EMAIL or not m.address:
                out.append(Outcome(False, reason="smtp sends email to an address only"))
                continue
            msg = EmailMessage()
            msg["From"] = self.settings.smtp_from
            msg["To"] = m.address
            msg["Subject"] = m.campaign_name
            msg["Message-ID"] = f"<{m.external_id}@campaign-pulse>"  # stable: a retried hand-off can be deduplicated
            msg["X-Pulse-External-Id"] = m.external_id
            msg.set_content(m.campaign_description or m.campaign_name)
            try:
                await aiosmtplib.send(
                    msg, hostname=self.settings.smtp_host, port=self.settings.smtp_port,
                    username=self.settings.smtp_username, password=self.settings.smtp_password,
                    start_tls=self.settings.smtp_starttls, timeout=self.settings.smtp_timeout_s)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                out.append(Outcome(False, reason=f"smtp: recipient refused ({exc})"[:500]))
            except aiosmtplib.SMTPResponseException as exc:
                permanent = 500 <= exc.code < 600
                out.append(Outcome(False, retry=not permanent, reason=f"smtp {exc.code}: {exc.message}"[:500]))
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                out.append(Outcome(False, retry=True, reason=f"smtp: {type(exc).__name__}: {exc}"[:500]))
            else:
                out.append(Outcome(True, events=[event(m, E.SENT, datetime.now(m.queued_at.tzinfo))]))
        return out


def _gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookProvider(Provider):
    name = "webhook"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(timeout=settings.webhook_timeout_s)

    async def send(self, messages: list[Message]) -> list[Outcome]:
        out = []
        for m in messages:
            body = orjson.dumps({  # ids are the API's global ids, as in sendEventsIngest
                "externalId": m.external_id, "channel": m.channel.value, "address": m.address,
                "campaign": {"id": _gid("Campaign", m.campaign_id), "name": m.campaign_name},
                "lead": {"id": _gid("Lead", m.lead_id), "name": m.lead_name}, "queuedAt": m.queued_at.isoformat(),
                "attempt": m.attempt,
            })
            headers = {"Content-Type": "application/json", "X-Pulse-Signature": sign(self.settings.webhook_secret, body),
                       "X-Pulse-External-Id": m.external_id}
            try:
                r = await self.client.post(self.settings.webhook_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                out.append(Outcome(False, retry=True, reason=f"webhook: {type(exc).__name__}"))
                continue
            if 200 <= r.status_code < 300:
                out.append(Outcome(True))
            elif r.status_code in (408, 425, 429) or r.status_code >= 500:
                out.append(Outcome(False, retry=True, reason=f"webhook: HTTP {r.status_code}"))
            else:
                out.append(Outcome(False, reason=f"webhook: HTTP {r.status_code}"))
        return out

    async def close(self) -> None:
        await self.client.aclose()


def build_providers(settings: Settings) -> dict[str, Provider]:
    providers: dict[str, Provider] = {
        "simulated": SimulatedProvider(seed=settings.simulated_seed, refuse_rate=settings.simulated_refuse_rate,
                                       transient_rate=settings.simulated_transient_rate),
    }
    if settings.smtp_host:
        providers["smtp"] = SmtpProvider(settings)
    if settings.webhook_url:
        providers["webhook"] = WebhookProvider(settings)
    return providers
