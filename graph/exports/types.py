"""Export, its row counts and refused link uses."""

from __future__ import annotations

import datetime as dt
import enum

import strawberry
from strawberry.types import Info

from strawberry.dataloader import DataLoader

from app.exports import service
from app.campaigns.service import campaign_unit
from graph.core import Node, ctx, describe_enum, to_global_id
from graph.core.loaders import loaders
from graph.campaigns.types import Campaign
from graph.tenancy.types import User
from models import exports as mx


async def _attempts(ids: list[int]) -> list[list[mx.ExportAttempt]]:
    found = await service.attempts_of(list(set(ids)))
    return [found.get(i, []) for i in ids]


class _ExportStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    READY = "READY"
    DOWNLOADED = "DOWNLOADED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    REFUSED = "REFUSED"


ExportStatus = describe_enum(_ExportStatus, "Where an export stands.", {
    "PENDING": "Queued; a worker will build it.",
    "RUNNING": "The workbook is being written and encrypted (see progress).",
    "READY": "The encrypted file waits for its single download, until expiresAt.",
    "DOWNLOADED": "The link was used; the file is deleted.",
    "EXPIRED": "The link was not used in time; the file is deleted.",
    "CANCELLED": "Cancelled by the requester or an owner; the file (if any) is deleted.",
    "FAILED": "The job failed; nothing was produced.",
    "REFUSED": "The request itself was refused (see refusal); nothing was produced.",
}, name="ExportStatus")


class _ExportRefusal(enum.Enum):
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_DOWNLOADED = "ALREADY_DOWNLOADED"
    WRONG_TOKEN = "WRONG_TOKEN"
    LINK_USED = "LINK_USED"
    LINK_EXPIRED = "LINK_EXPIRED"
    LINK_REVOKED = "LINK_REVOKED"
    NOT_READY = "NOT_READY"


ExportRefusal = describe_enum(_ExportRefusal, "Why an export request or a use of its link was refused.", {
    "FORBIDDEN": "The requester has no export right (owners and members with canExport only).",
    "NOT_FOUND": "The campaign does not exist or lies outside the requester's scope or organization.",
    "ALREADY_DOWNLOADED": "A one-time (SCHEDULED) campaign's data was already downloaded once.",
    "WRONG_TOKEN": "The link's token did not match.",
    "LINK_USED": "The link was already used (links are single-use).",
    "LINK_EXPIRED": "The link expired before it was used.",
    "LINK_REVOKED": "The export was cancelled or failed.",
    "NOT_READY": "The file was still being built.",
}, name="ExportRefusal")


@strawberry.type(description="Rows written per sheet of the workbook.")
class ExportRowCounts:
    campaign: int = strawberry.field(description="Sheet Campaign (1).")
    campaign_stat: int = strawberry.field(description="Sheet CampaignStat: one row per day of the campaign.")
    campaign_user: int = strawberry.field(description="Sheet CampaignUser: one row per recipient.")
    user: int = strawberry.field(description="Sheet User: one row per recipient's profile.")


@strawberry.type(description="A refused use of an export's download link.")
class ExportLinkAttempt:
    code: ExportRefusal = strawberry.field(description="Why it was refused.")
    at: dt.datetime = strawberry.field(description="When.")
    ip: str | None = strawberry.field(description="Client address it came from.")
    user_agent: str | None = strawberry.field(description="Its User-Agent header.")


@strawberry.type(description="An export of a campaign's data (download history entry). The password is never "
                             "stored or shown; the download link is shown once, by exportCreate.")
class Export(Node):
    m: strawberry.Private[mx.Export]

    @staticmethod
    def of(m: mx.Export) -> "Export":
        return Export(id=to_global_id("Export", m.id), m=m)

    @strawberry.field(description="The campaign (null when deleted or no longer visible to you).")
    async def campaign(self, info: Info) -> Campaign | None:
        if self.m.campaign_id is None:
            return None
        found = await loaders(info).campaign.load(self.m.campaign_id)
        if found is None or not ctx(info).principal.scope.contains(campaign_unit(found)):
            return None
        return Campaign.of(found)

    @strawberry.field(description="The campaign's name when the export was requested.")
    def campaign_name(self) -> str:
        return self.m.campaign_name

    @strawberry.field(description="Who asked (null when the member was removed).")
    async def requested_by(self, info: Info) -> User | None:
        if self.m.user_id is None:
            return None
        found = await loaders(info).user.load(self.m.user_id)
        return User.of(found) if found else None

    @strawberry.field(description="Email of who asked (kept when the member is removed).")
    def requested_by_email(self) -> str:
        return self.m.user_email

    @strawberry.field(description="Why the data was exported, as the requester stated it.")
    def reason(self) -> str:
        return self.m.reason

    @strawberry.field(description="Where the export stands.")
    def status(self) -> ExportStatus:
        return _ExportStatus(self.m.status)

    @strawberry.field(description="Why the request was refused (status REFUSED).")
    def refusal(self) -> ExportRefusal | None:
        return _ExportRefusal(self.m.refusal) if self.m.refusal else None

    @strawberry.field(description="Why the job failed (status FAILED).")
    def error(self) -> str | None:
        return self.m.error

    @strawberry.field(description="0 to 1: rows written / rows to write (1 when ready).")
    def progress(self) -> float:
        return self.m.progress

    @strawberry.field(description="Rows written so far (all sheets).")
    def rows_done(self) -> int:
        return self.m.rows_done

    @strawberry.field(description="Rows to write (all sheets; known once the job started).")
    def rows_total(self) -> int:
        return self.m.rows_total

    @strawberry.field(description="Rows per sheet (set when the file is ready).")
    def row_counts(self) -> ExportRowCounts:
        m = self.m
        return ExportRowCounts(campaign=m.campaign_rows, campaign_stat=m.stat_rows, campaign_user=m.recipient_rows,
                               user=m.user_rows)

    @strawberry.field(description="Size of the encrypted file in bytes.")
    def file_size(self) -> int:
        return self.m.file_size

    @strawberry.field(description="When it was requested.")
    def created_at(self) -> dt.datetime:
        return self.m.created_at

    @strawberry.field(description="When a worker started it.")
    def started_at(self) -> dt.datetime | None:
        return self.m.started_at

    @strawberry.field(description="When it ended (ready, failed, cancelled or refused).")
    def finished_at(self) -> dt.datetime | None:
        return self.m.finished_at

    @strawberry.field(description="Until when the download link works (set when ready).")
    def expires_at(self) -> dt.datetime | None:
        return self.m.expires_at

    @strawberry.field(description="Whether the link was used.")
    def link_used(self) -> bool:
        return self.m.downloaded_at is not None

    @strawberry.field(description="When the link was used.")
    def downloaded_at(self) -> dt.datetime | None:
        return self.m.downloaded_at

    @strawberry.field(description="Client address the download came from.")
    def download_ip(self) -> str | None:
        return self.m.download_ip

    @strawberry.field(description="User-Agent of the download.")
    def download_user_agent(self) -> str | None:
        return self.m.download_user_agent

    @strawberry.field(description="Whether the encrypted file was deleted (after download, expiry or cancel).")
    def file_deleted(self) -> bool:
        return self.m.deleted_at is not None or not self.m.file_key

    @strawberry.field(description="Refused uses of the link (wrong token, second use, expired, …), oldest first.")
    async def refused_attempts(self, info: Info) -> list[ExportLinkAttempt]:
        rows = await ctx(info).loader("export_attempts", lambda: DataLoader(_attempts)).load(self.m.id)
        return [ExportLinkAttempt(code=_ExportRefusal(a.code), at=a.at, ip=a.ip, user_agent=a.user_agent)
                for a in rows]
