"""A time zone name is checked before the time-zone database sees it (issue 10 item 16)."""

from __future__ import annotations

import pytest

CREATE = """mutation($i: OrganizationCreateInput!){ organizationCreate(input: $i){ token
  userErrors{ field code } } }"""


@pytest.mark.parametrize("timezone, code", [("Europe/" + "x" * 1_000_000, "TOO_LONG"), ("Mars/Olympus", "INVALID"),
                                            ("../../etc/passwd", "INVALID")])
async def test_bad_time_zone_names_are_user_errors(tenant, timezone, code):
    d = await tenant.gql(CREATE, {"i": {"name": "Tz Org", "ownerEmail": "tz@example.test", "timezone": timezone}})
    assert d["organizationCreate"]["token"] is None
    assert d["organizationCreate"]["userErrors"] == [{"field": ["timezone"], "code": code}], d
