"""Fixtures of the execution tests (graph/core/execution.py)."""

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.core.execution import PulseExecutionContext


@pytest.fixture
def general_path(monkeypatch):
    """Call it to switch this test's requests to graphql-core's own completion (no direct leaves,
    no plans): the reference the fast paths are compared with."""
    def use():
        for name in ("execute_field", "collect_and_execute_subfields"):
            monkeypatch.setattr(PulseExecutionContext, name, getattr(StrawberryGraphQLCoreExecutionContext, name))
    return use
