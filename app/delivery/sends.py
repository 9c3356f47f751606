"""Reading sends (the send log)."""

from tortoise.expressions import Q

from models.sends import Send


def sends_query(campaign_id: int, channel=None, status=None, recipient: str | None = None):
    qs = Send.filter(campaign_id=campaign_id)
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    if recipient and recipient.strip():
        t = recipient.strip()
        qs = qs.filter(Q(lead__name__icontains=t) | Q(lead__email__icontains=t) | Q(lead__phone__icontains=t))
    return qs


def _filtered(campaign_ids: list[int], channel=None, status=None, recipient: str | None = None):
    qs = Send.filter(campaign_id__in=campaign_ids)
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    if recipient and recipient.strip():
        t = recipient.strip()
        qs = qs.filter(Q(lead__name__icontains=t) | Q(lead__email__icontains=t) | Q(lead__phone__icontains=t))
    return qs


async def send_pages(campaign_ids: list[int], limit: int, before_id: int | None = None, channel=None, status=None,
                     recipient: str | None = None) -> dict[int, list[Send]]:
    """The newest `limit` sends (id < before_id) of each campaign, for all campaigns at once: two
    statements whatever the number of campaigns (a ROW_NUMBER() window over the filtered sends picks
    the ids, then one fetch), on SQLite and PostgreSQL alike."""
    if not campaign_ids or limit <= 0:
        return {}
    qs = _filtered(campaign_ids, channel, status, recipient)
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    inner = qs.values("id", "campaign_id")
    inner._choose_db_if_not_chosen()
    inner._make_query()
    sql, params = inner.query.get_parameterized_sql()
    window = (f'SELECT "id" FROM (SELECT "s"."id" AS "id", ROW_NUMBER() OVER (PARTITION BY "s"."campaign_id" '
              f'ORDER BY "s"."id" DESC) AS "rn" FROM ({sql}) AS "s") AS "w" WHERE "w"."rn" <= {int(limit)}')
    rows = await inner._db.execute_query_dict(window, params)
    ids = [r["id"] for r in rows]
    pages: dict[int, list[Send]] = {}
    if ids:
        for send in await Send.filter(id__in=ids).order_by("-id"):
            pages.setdefault(send.campaign_id, []).append(send)
    return pages


async def send_counts(campaign_ids: list[int], channel=None, status=None,
                      recipient: str | None = None) -> dict[int, int]:
    """How many sends (after the filter) each campaign has: one statement."""
    from tortoise.functions import Count

    rows = await _filtered(campaign_ids, channel, status, recipient).annotate(n=Count("id")) \
        .group_by("campaign_id").values("campaign_id", "n")
    return {r["campaign_id"]: r["n"] for r in rows}
