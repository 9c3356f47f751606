"""What an operation needs before it runs, worked out once per document and operation name.

Clients send the same few documents (dashboards, mobile apps): their parsed document is one shared
object (graph/schema.py `_parsed`), so everything graphql-core's `Executor.build` and Pulse's own
checks derive from the document alone is the same in every request of that document. A `Prepared`
keeps it (issue 15 item 2, fourth pass; docs/architecture.md "Per-request cost, fourth pass"):

* the operation node, the fragment definitions and their details — what `Executor.build` finds by
  walking the document's definitions (the same loop, run once); a document where that loop reports
  an error (several anonymous operations, an unknown name, a fragment variable of a non-input type)
  is not prepared: `build` takes graphql-core's path and reports it as before;
* each variable's signature (`get_variable_signature`) and, when every variable is a plain scalar or
  enum without a default, a coercion that does per request only what `coerce_variable_values` does
  for such a variable: read it, coerce it with its type's `coerce_input_value`. Anything else — a
  missing non-null variable, null for a non-null one, a value the type refuses, an input object or
  list type, a default value — goes to graphql-core's `get_variable_values`, which answers (and
  reports errors) exactly as before;
* the query cost as a formula of the variables it depends on (`limits.CostFormula`);
* whether the selection depends on the request (`execution._request_independent`) and, for the
  response cache, whether the operation may be stored (`cache_safe`, `tracked`), computed when
  first asked.

Entries are keyed by the document's identity (the entry keeps the document, so an id is not reused
while it lives) and the operation name; at most `_MAX` documents are kept (cleared when full, as
the documents' own cache bounds them too).
"""

from __future__ import annotations

from typing import Any

from graphql import (FragmentDefinitionNode, GraphQLEnumType, GraphQLError, GraphQLNonNull, GraphQLScalarType,
                     OperationDefinitionNode, Undefined)
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.get_variable_signature import get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource

from graph.core import limits

_MAX = 1024
_PREPARED: dict[tuple[int, str | None], tuple[Any, "Prepared | None"]] = {}


class Prepared:
    __slots__ = ("operation", "fragment_definitions", "fragments", "simple_variables", "cost_formula",
                 "_cache_safe", "_tracked")

    def __init__(self, schema: Any, operation: OperationDefinitionNode, fragment_definitions: dict,
                 fragments: dict) -> None:
        self.operation = operation
        self.fragment_definitions = fragment_definitions
        self.fragments = fragments
        self.simple_variables = _simple_variables(schema, operation)
        self.cost_formula = limits.CostFormula(schema, fragments, operation)
        self._cache_safe = self._tracked = None

    def coerce_variables(self, inputs: Any) -> VariableValues | None:
        """The variables as `get_variable_values` coerces them when they are all valid; None when
        graphql-core must coerce them (anything unusual, every error)."""
        specs = self.simple_variables
        if specs is None or (inputs is not None and inputs.__class__ is not dict):
            return None
        sources: dict[str, VariableValueSource] = {}
        coerced: dict[str, Any] = {}
        for name, signature, non_null, leaf in specs:
            value = inputs.get(name, Undefined) if inputs else Undefined
            if value is Undefined:
                if non_null:
                    return None  # graphql-core reports the missing variable
                sources[name] = VariableValueSource(signature)  # a nullable variable left out: omitted
                continue
            sources[name] = VariableValueSource(signature, value)
            if value is None:
                if non_null:
                    return None
                coerced[name] = None
                continue
            try:
                value = leaf.coerce_input_value(value)
            except Exception:  # noqa: BLE001 - graphql-core reports it
                return None
            if value is Undefined:
                return None
            coerced[name] = value
        return VariableValues(sources, coerced)

    def cache_safe(self, schema: Any) -> bool:
        if self._cache_safe is None:
            from graph.core.cache import cache_safe

            self._cache_safe = cache_safe(schema, self.fragments, self.operation)
        return self._cache_safe

    def tracked(self) -> bool:
        if self._tracked is None:
            from graph.core.cache import tracked

            self._tracked = tracked(self.operation)
        return self._tracked


def _simple_variables(schema: Any, operation: OperationDefinitionNode) -> tuple | None:
    """(name, signature, non-null, scalar or enum type) per variable, or None when a variable is not
    a plain scalar/enum without a default (then graphql-core coerces them all)."""
    specs = []
    for var_def in operation.variable_definitions or ():
        signature = get_variable_signature(schema, var_def)
        if isinstance(signature, GraphQLError) or var_def.default_value:
            return None
        var_type = signature.type
        non_null = isinstance(var_type, GraphQLNonNull)
        leaf = var_type.of_type if non_null else var_type
        if not isinstance(leaf, (GraphQLScalarType, GraphQLEnumType)):
            return None
        specs.append((signature.name, signature, non_null, leaf))
    return tuple(specs)


def prepared(schema: Any, document: Any, operation_name: str | None) -> Prepared | None:
    """The operation's preparation, or None when `Executor.build` would report an error for it."""
    key = (id(document), operation_name)
    found = _PREPARED.get(key)
    if found is not None and found[0] is document:
        return found[1]
    entry = _prepare(schema, document, operation_name)
    if len(_PREPARED) >= _MAX:
        _PREPARED.clear()
    _PREPARED[key] = (document, entry)
    return entry


def _prepare(schema: Any, document: Any, operation_name: str | None) -> Prepared | None:
    # graphql-core 3.3's Executor.build, the part that reads the document only (the same loop).
    operation = None
    fragment_definitions: dict[str, FragmentDefinitionNode] = {}
    fragments: dict[str, FragmentDetails] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if operation_name is None:
                if operation:
                    return None  # "Must provide operation name …"
                operation = definition
            elif definition.name and definition.name.value == operation_name:
                operation = definition
        elif isinstance(definition, FragmentDefinitionNode):
            fragment_definitions[definition.name.value] = definition
            variable_signatures = None
            if definition.variable_definitions:
                variable_signatures = {}
                for var_def in definition.variable_definitions:
                    signature = get_variable_signature(schema, var_def)
                    if isinstance(signature, GraphQLError):
                        return None
                    variable_signatures[signature.name] = signature
            fragments[definition.name.value] = FragmentDetails(definition, variable_signatures)
    if not operation:
        return None
    return Prepared(schema, operation, fragment_definitions, fragments)
