"""Real providers behind the sender: SMTP (a local aiosmtpd server) and the signed
webhook (a local HTTP receiver), driven in-process (SPEC §2, §4, §8).

Both backends. The sender's rounds are run explicitly (tests/sender/conftest.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections import Counter, defaultdict
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from app.sender.providers import SmtpProvider, WebhookProvider
from app.sender.service import complete_finished
from app.settings import Settings
from tests.conftest import unique
from tests.helpers import free_port, ingest, make_leads
from tests.sender.conftest import drain, perfect_provider
from tests.sender.test_sender import launch

SENDS = """query($id:ID!){ campaign(id:$id){ status name
  metrics{ totals{ generated pending sent delivered failed cost{ amount } credits } }
  budget{ spent{ amount } reserved{ amount } }
  sends(first: 100){ totalCount edges{ node{ externalId channel status failureReason cost{ amount } credits
    sentAt deliveredAt recipient{ id name email } } } } } }"""


async def campaign_sends(gql, cid: str) -> tuple[dict, list[dict]]:
    d = (await gql(SENDS, {"id": cid}))["campaign"]
    return d, [e["node"] for e in d["sends"]["edges"]]


async def email_balance(gql, source: str = "EMAIL") -> int:
    wallets = (await gql("{ creditWallets{ source balance } }"))["creditWallets"]
    return next(w["balance"] for w in wallets if w["source"] == source)


def with_settings(settings: Settings, **changes) -> Settings:
    return Settings(**{**settings.model_dump(), **changes})


# --------------------------------------------------------------------------- SMTP


class RecordingSmtp:
    """aiosmtpd handler: records every accepted message; can refuse recipients for good
    (550 at RCPT) or defer a message once (451 at DATA)."""

    def __init__(self, refuse: set[str] = frozenset(), defer_once: set[str] = frozenset()) -> None:
        self.messages: list[tuple[str, list[str], object]] = []  # (mail from, rcpt tos, parsed message)
        self.refuse, self.defer_once = set(refuse), set(defer_once)
        self.deferred: list[str] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            deferred = [r for r in envelope.rcpt_tos if r in self.defer_once]
            if deferred:
                self.defer_once -= set(deferred)
                self.deferred += deferred
                return "451 4.3.0 try again later"
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  message_from_bytes(envelope.content, policy=default_policy)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    servers = []

    def start(handler: RecordingSmtp) -> int:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        servers.append(controller)
        return controller.port

    yield start
    for controller in servers:
        controller.stop()


async def test_smtp_delivers_one_message_per_recipient_with_the_send_external_id(tenant, settings, smtp_server):
    gql = tenant.gql
    handler = RecordingSmtp()
    port = smtp_server(handler)
    smtp = SmtpProvider(with_settings(settings, smtp_host="127.0.0.1", smtp_port=port))
    providers = {**perfect_provider(), "smtp": smtp}
    await gql('mutation{ creditsTopUp(source: EMAIL, amount: 10){ userErrors{ code } } }')
    leads = await make_leads(gql, 4)
    name = f"Winter sale {unique('smtp')}"
    c = await launch(gql, leads, name=name, description="Up to 50 % off, this week only.",
                     channels=[{"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1, "provider": "smtp"}])

    totals = await drain(providers)
    assert (totals["queued"], totals["handed"], totals["failed"], totals["retried"]) == (4, 4, 0, 0)

    d, sends = await campaign_sends(gql, c["id"])
    assert len(sends) == 4 and all(s["status"] == "SENT" and s["sentAt"] for s in sends)
    by_rcpt = defaultdict(list)
    for mail_from, rcpts, msg in handler.messages:
        assert rcpts == [msg["To"]]
        by_rcpt[msg["To"]].append(msg)
    assert sorted(by_rcpt) == sorted(s["recipient"]["email"] for s in sends)
    for s in sends:
        [msg] = by_rcpt[s["recipient"]["email"]]  # exactly one message each
        assert msg["Subject"] == name
        assert msg["X-Pulse-External-Id"] == s["externalId"]
        assert msg["Message-ID"] == f"<{s['externalId']}@campaign-pulse>"
        assert "Up to 50 % off" in msg.get_content()
    assert d["status"] == "COMPLETED"  # every message left PENDING: the scheduled campaign is done
    assert d["metrics"]["totals"]["sent"] == 4 and d["metrics"]["totals"]["pending"] == 0
    assert d["budget"]["spent"]["amount"] == "0.04" and d["budget"]["reserved"]["amount"] == "0.00"
    assert await email_balance(gql) == 10 - 4
    # nothing is handed twice by later rounds
    assert (await drain(providers))["handed"] == 0 and len(handler.messages) == 4


async def test_smtp_server_down_retries_then_fails_with_a_reason_and_refunds(tenant, settings):
    gql = tenant.gql
    down = free_port()  # nothing listens there
    providers = {**perfect_provider(), "smtp": SmtpProvider(with_settings(
        settings, smtp_host="127.0.0.1", smtp_port=down, smtp_timeout_s=2))}
    await gql('mutation{ creditsTopUp(source: EMAIL, amount: 3){ userErrors{ code } } }')
    leads = await make_leads(gql, 3)
    c = await launch(gql, leads, channels=[{"channel": "EMAIL", "unitCost": "0.01", "creditsPerMessage": 1,
                                            "provider": "smtp"}])
    assert await email_balance(gql) == 3
    totals = await drain(providers, max_attempts=3, backoff_s=0.0)
    # 3 attempts each: 2 retries, then FAILED
    assert (totals["queued"], totals["handed"], totals["retried"], totals["failed"]) == (3, 0, 3 * 2, 3)
    d, sends = await campaign_sends(gql, c["id"])
    assert all(s["status"] == "FAILED" for s in sends)
    assert all(s["failureReason"].startswith("smtp: ") and "SMTPConnect" in s["failureReason"] for s in sends), sends
    # failed before being sent: costs nothing, credits back, nothing reserved
    assert all(s["cost"]["amount"] == "0.00" and s["credits"] == 0 for s in sends)
    assert d["budget"]["spent"]["amount"] == "0.00" and d["budget"]["reserved"]["amount"] == "0.00"
    assert d["metrics"]["totals"]["failed"] == 3 and d["metrics"]["totals"]["sent"] == 0
    assert await email_balance(gql) == 3
    assert d["status"] == "COMPLETED"


async def test_smtp_permanent_refusal_fails_at_once_and_a_temporary_one_is_retried(tenant, settings, smtp_server):
    gql = tenant.gql
    prefix = unique("smtp")
    leads = await make_leads(gql, 3, prefix=prefix)
    refused, deferred, fine = (f"{prefix}-{i}@example.test" for i in range(3))  # make_leads' addresses
    handler = RecordingSmtp(refuse={refused}, defer_once={deferred})
    port = smtp_server(handler)
    smtp = SmtpProvider(with_settings(settings, smtp_host="127.0.0.1", smtp_port=port))
    providers = {**perfect_provider(), "smtp": smtp}
    c = await launch(gql, leads, channels=[{"channel": "EMAIL", "unitCost": "0.01", "provider": "smtp"}])
    totals = await drain(providers, max_attempts=3, backoff_s=0.0)
    assert (totals["handed"], totals["retried"], totals["failed"]) == (2, 1, 1)
    assert handler.deferred == [deferred]
    _, sends = await campaign_sends(gql, c["id"])
    status = {s["recipient"]["email"]: (s["status"], s["failureReason"]) for s in sends}
    assert status[fine] == ("SENT", None) and status[deferred] == ("SENT", None)
    assert status[refused][0] == "FAILED" and "recipient refused" in status[refused][1]
    assert Counter(rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts) == {fine: 1, deferred: 1}


# --------------------------------------------------------------------------- webhook


class Receiver:
    """The integrator's endpoint: records every POST and answers with `status_for(body, n)`,
    n = how many times this externalId has been posted so far (1 = first)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.seen: Counter = Counter()
        self.status_for = lambda body, n: 200

    async def app(self, scope, receive, send):
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((headers, body))
        payload = json.loads(body)
        self.seen[payload["externalId"]] += 1
        status = self.status_for(payload, self.seen[payload["externalId"]])
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if status < 300 else b"no"})


@pytest.fixture
async def receiver():
    import uvicorn

    r = Receiver()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(r.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                                         interface="asgi3"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    r.url = f"http://127.0.0.1:{port}/hooks/pulse"
    yield r
    server.should_exit = True
    await task


SECRET = "whsec-test-7f3a-0c11d9"  # 16+ characters (required with a webhook URL)


@pytest.fixture
async def webhook(settings, receiver):
    provider = WebhookProvider(with_settings(settings, webhook_url=receiver.url, webhook_secret=SECRET))
    yield {**perfect_provider(), "webhook": provider}
    await provider.close()


def valid_signature(headers: dict, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-pulse-signature", ""), expected)


async def sms_campaign(gql, n: int, credits: int = 2):
    await gql('mutation($n:Int!){ creditsTopUp(source: SMS, amount: $n){ userErrors{ code } } }', {"n": 10 * credits})
    leads = await make_leads(gql, n, phone="+33611223344")
    c = await launch(gql, leads, name=f"Flash {unique('hook')}",
                     channels=[{"channel": "SMS", "unitCost": "0.05", "creditsPerMessage": credits,
                                "provider": "webhook"}])
    return c, leads


async def test_webhook_posts_signed_messages_and_the_integrator_reports_delivery(tenant, receiver, webhook):
    gql = tenant.gql
    c, leads = await sms_campaign(gql, 3)
    totals = await drain(webhook)
    assert (totals["queued"], totals["handed"], totals["failed"], totals["retried"]) == (3, 3, 0, 0)
    assert len(receiver.requests) == 3
    d, sends = await campaign_sends(gql, c["id"])
    # handed to the integrator: it reports what happens next; until then the message is queued
    assert all(s["status"] == "PENDING" for s in sends)
    assert d["status"] == "LIVE" and d["budget"]["reserved"]["amount"] == "0.15"
    by_ext = {s["externalId"]: s for s in sends}
    for headers, body in receiver.requests:
        assert valid_signature(headers, body), headers
        assert not valid_signature(headers, body + b" ")  # the signature covers the raw body
        payload = json.loads(body)
        assert headers["content-type"] == "application/json"
        assert headers["x-pulse-external-id"] == payload["externalId"]
        s = by_ext[payload["externalId"]]
        assert payload["channel"] == "SMS" and payload["address"] == "+33611223344" and payload["attempt"] == 1
        # the API's global ids, as integrators use them in sendEventsIngest
        assert payload["campaign"] == {"id": c["id"], "name": d["name"]}
        assert payload["lead"] == {"id": s["recipient"]["id"], "name": s["recipient"]["name"]}
    assert sorted(by_ext) == sorted(json.loads(b)["externalId"] for _, b in receiver.requests)

    # the integrator reports the receipts with the externalIds it received
    integration = await tenant.member("INTEGRATION")
    now = datetime.now(timezone.utc).isoformat()
    result = await ingest(integration, [{"idempotencyKey": f"dlr-{ext}", "externalId": ext, "channel": "SMS",
                                         "type": "DELIVERED", "occurredAt": now} for ext in by_ext])
    assert result["accepted"] == 3 and not result["rejected"], result
    await complete_finished()
    d, sends = await campaign_sends(gql, c["id"])
    assert all(s["status"] == "DELIVERED" and s["deliveredAt"] for s in sends), sends
    # DELIVERED overtaking SENT means it was sent (counted as sent, paid), but sentAt only comes
    # from a SENT event (SPEC §4), which this integrator never reports
    assert all(s["sentAt"] is None for s in sends)
    assert d["metrics"]["totals"]["delivered"] == 3 and d["metrics"]["totals"]["pending"] == 0
    assert d["budget"]["spent"]["amount"] == "0.15" and d["budget"]["reserved"]["amount"] == "0.00"
    assert d["status"] == "COMPLETED"
    assert await email_balance(gql, "SMS") == 20 - 3 * 2
    # a later round hands nothing again
    assert (await drain(webhook))["handed"] == 0 and len(receiver.requests) == 3


async def test_webhook_5xx_is_retried_until_accepted(tenant, receiver, webhook):
    gql = tenant.gql
    receiver.status_for = lambda body, n: 500 if n <= 2 else 200  # twice unavailable, then accepted
    c, leads = await sms_campaign(gql, 2)
    totals = await drain(webhook, max_attempts=5, backoff_s=0.0)
    assert (totals["handed"], totals["retried"], totals["failed"]) == (2, 2 * 2, 0)
    assert set(receiver.seen.values()) == {3}
    attempts = sorted((json.loads(b)["externalId"], json.loads(b)["attempt"]) for _, b in receiver.requests)
    assert [a for _, a in attempts] == [1, 2, 3, 1, 2, 3]
    assert all(valid_signature(h, b) for h, b in receiver.requests)
    _, sends = await campaign_sends(gql, c["id"])
    assert all(s["status"] == "PENDING" and s["failureReason"] is None for s in sends)  # handed, awaiting receipts


async def test_webhook_always_5xx_fails_after_the_last_attempt(tenant, receiver, webhook):
    gql = tenant.gql
    receiver.status_for = lambda body, n: 503
    c, leads = await sms_campaign(gql, 2)
    totals = await drain(webhook, max_attempts=3, backoff_s=0.0)
    assert (totals["handed"], totals["retried"], totals["failed"]) == (0, 2 * 2, 2)
    assert set(receiver.seen.values()) == {3}
    d, sends = await campaign_sends(gql, c["id"])
    assert all(s["status"] == "FAILED" and s["failureReason"] == "webhook: HTTP 503" for s in sends)
    assert d["budget"]["reserved"]["amount"] == "0.00" and d["budget"]["spent"]["amount"] == "0.00"
    assert await email_balance(gql, "SMS") == 20  # refunded


async def test_webhook_4xx_fails_at_once_without_retry_and_refunds(tenant, receiver, webhook):
    gql = tenant.gql
    receiver.status_for = lambda body, n: 400
    c, leads = await sms_campaign(gql, 2)
    totals = await drain(webhook, max_attempts=5, backoff_s=0.0)
    assert (totals["handed"], totals["retried"], totals["failed"]) == (0, 0, 2)
    assert set(receiver.seen.values()) == {1}  # no retry
    d, sends = await campaign_sends(gql, c["id"])
    assert all(s["status"] == "FAILED" and s["failureReason"] == "webhook: HTTP 400" for s in sends)
    assert d["metrics"]["totals"]["failed"] == 2 and d["metrics"]["totals"]["sent"] == 0
    assert d["budget"]["reserved"]["amount"] == "0.00" and d["budget"]["spent"]["amount"] == "0.00"
    assert await email_balance(gql, "SMS") == 20
    assert d["status"] == "COMPLETED"
