"""Enums of the leads filter's KPI names."""

from enum import Enum

import strawberry


@strawberry.enum(description="Whether a lead is in a LIVE campaign (the active/inactive leads KPIs).")
class LeadStatus(Enum):
    ACTIVE = strawberry.enum_value("ACTIVE", description="In at least one LIVE campaign.")
    INACTIVE = strawberry.enum_value("INACTIVE", description="In no LIVE campaign.")


@strawberry.enum(description="Whether a lead in a sequence does its manual steps on their day.")
class LeadTrack(Enum):
    ON_TRACK = strawberry.enum_value("ON_TRACK", description="In a sequence, every manual step done on its day.")
    OFF_TRACK = strawberry.enum_value("OFF_TRACK", description="A manual step not done on its day.")
