"""GraphQL core: input types."""

from __future__ import annotations

import strawberry


def given(value) -> bool:
    return value is not strawberry.UNSET
