"""Reading sends (the send log)."""

import functools

from tortoise.expressions import Q

from app import db
from models.sends import Send


def sends_query(campaign_id: int, channel=None, status=None, recipient: str | None = None):
    return _narrowed(Send.filter(campaign_id=campaign_id), channel, status, recipient)


def _filtered(campaign_ids: list[int], channel=None, status=None, recipient: str | None = None):
    return _narrowed(Send.filter(campaign_id__in=campaign_ids), channel, status, recipient)


def _narrowed(qs, channel=None, status=None, recipient: str | None = None):
    """The send log's filters: channel, status, recipient text (name, email or phone)."""
    if channel:
        qs = qs.filter(channel=channel)
    if status:
        qs = qs.filter(status=status)
    if recipient and recipient.strip():
        t = recipient.strip()
        qs = qs.filter(Q(lead__name__icontains=t) | Q(lead__email__icontains=t) | Q(lead__phone__icontains=t))
    return qs


async def send_pages(campaign_ids: list[int], limit: int, before_id: int | None = None, channel=None, status=None,
                     recipient: str | None = None, *, names: tuple[str, ...] | None = None) -> dict[int, list]:
    """The newest `limit` sends (id < before_id) of each campaign, for all campaigns at once: two
    statements whatever the number of campaigns (a ROW_NUMBER() window over the filtered sends picks
    the ids, then one fetch), on SQLite and PostgreSQL alike. With `names` (attributes of Send) and
    no recipient filter, `db.partial_row_type` rows holding only those (and `id`, `campaign_id`),
    with the same values: for a caller that reads nothing else (the send log, from its selection)."""
    if not campaign_ids or limit <= 0:
        return {}
    if not (recipient and recipient.strip()):
        return await _plain_pages(campaign_ids, limit, before_id, channel, status, names)
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


@functools.lru_cache(maxsize=256)
def partial_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` with `id` and `campaign_id` (the pages' order and grouping), in the table's column
    order: one statement text per set of columns, whatever order a caller lists them in."""
    wanted = {"id", "campaign_id", *names}
    unknown = wanted - Send._meta.fields_db_projection.keys()
    if unknown:
        raise ValueError(f"not attributes of Send: {sorted(unknown)}")
    return tuple(n for n in Send._meta.fields_db_projection if n in wanted)


async def _plain_pages(campaign_ids: list[int], limit: int, before_id: int | None, channel, status,
                       names: tuple[str, ...] | None = None) -> dict[int, list]:
    """`send_pages` without a recipient filter, as fixed statements (the hot read of a campaign's send
    log; issue 15 item 2): one campaign is one `… ORDER BY id DESC LIMIT n` on the (campaign_id, id)
    index; several are one statement whose ROW_NUMBER() window picks each campaign's newest rows.
    The rows are `db.light_row_type(Send)` objects (every attribute of a Send, converted as Tortoise
    converts them, without building 51 models: issue 15 item 2, third pass); the log only reads them.
    With `names`, only those columns (`partial_names`), as `db.partial_row_type(Send, …)` rows (fifth
    pass: the log whose selection reads six fields reads seven columns of 31)."""
    where, params = [], []
    if channel:
        where.append("s.channel = ?")
        params.append(getattr(channel, "value", channel))
    if status:
        where.append("s.status = ?")
        params.append(getattr(status, "value", status))
    if before_id is not None:
        where.append("s.id < ?")
        params.append(before_id)
    extra = "".join(f" AND {w}" for w in where)
    if names is None:
        columns, fetch = db.select_columns(Send, "s"), functools.partial(db.fetch_light, Send)
    else:
        names = partial_names(names)
        columns, fetch = db.select_columns_of(Send, "s", names), functools.partial(db.fetch_partial, Send, names)
    if len(campaign_ids) == 1:
        rows = await fetch(f"SELECT {columns} FROM \"send\" s WHERE s.campaign_id = ?{extra} ORDER BY s.id DESC LIMIT ?",
                           [campaign_ids[0], *params, int(limit)])
    else:
        within, ids = db.in_list("s.campaign_id", campaign_ids)
        rows = await fetch(f"SELECT {columns} FROM \"send\" s WHERE s.id IN (SELECT w.id FROM (SELECT s.id AS id, "
                           f"ROW_NUMBER() OVER (PARTITION BY s.campaign_id ORDER BY s.id DESC) AS rn FROM \"send\" s "
                           f"WHERE {within}{extra}) w WHERE w.rn <= ?) ORDER BY s.id DESC", [*ids, *params, int(limit)])
    pages: dict[int, list[Send]] = {}
    for send in rows:
        pages.setdefault(send.campaign_id, []).append(send)
    return pages


async def send_counts(campaign_ids: list[int], channel=None, status=None,
                      recipient: str | None = None) -> dict[int, int]:
    """How many sends (after the filter) each campaign has: one statement."""
    from tortoise.functions import Count

    rows = await _filtered(campaign_ids, channel, status, recipient).annotate(n=Count("id")) \
        .group_by("campaign_id").values("campaign_id", "n")
    return {r["campaign_id"]: r["n"] for r in rows}


async def visible_send(principal, send_id: int) -> Send | None:
    """One send whose campaign the principal sees (None when missing or outside its scope): the same
    row as `in_visible_campaigns(Send, principal).filter(id=send_id).first()`, by one fixed statement
    (`node(id)` of a Send; the scope predicate is `Unit.sql_filter` on the send's campaign)."""
    where, params = principal.scope.sql_filter("c")
    found = await db.fetch_models(
        Send, f"SELECT {db.select_columns(Send, 's')} FROM \"send\" s JOIN \"campaign\" c ON c.id = s.campaign_id "
              f"WHERE s.id = ? AND {where} LIMIT 1", [send_id, *params])
    return found[0] if found else None
