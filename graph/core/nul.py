"""Text with a NUL byte never reaches a resolver (PostgreSQL text cannot hold it; SQLite would store it).

Checked per field, on the field's coerced arguments (inline literals and variables alike), by a
wrapper that `wrap_schema` puts around every field whose arguments can hold text (String or ID,
directly, in a list or in an input object):

- a mutation whose payload has `userErrors` answers that payload with one `INVALID` user error per
  NUL text, its `field` the camelCase path (`["name"]` for `input: {name}`, like every user error of
  an `input` argument; `["leads", "2", "email"]` otherwise), every other payload field empty; the
  resolver does not run (so an all-or-nothing batch like `leadsUpsert` writes nothing);
- in the list argument of a batch that rejects single items (its payload has `rejected`:
  `sendEventsIngest`, `goalEventsIngest`, `outreachEventsIngest`) a NUL inside an item is left to the
  batch, which rejects that item (`rejected { index code: INVALID }`) and applies the others;
- any other field (a query or nested field's argument, a subscription's) raises a GraphQL error with
  `extensions.code` `INVALID` and `extensions.field` (the argument path).
"""

from __future__ import annotations

from typing import Any

from graphql import (GraphQLError, default_field_resolver, GraphQLInputObjectType, GraphQLList, GraphQLNonNull, GraphQLObjectType,
                     GraphQLScalarType, GraphQLSchema)
from strawberry.types.base import StrawberryList, StrawberryOptional

from app.core.errors import ErrorCode as DomainCode

MESSAGE = "text must not contain NUL characters"


def nul_paths(value: Any, path: list[str], out: list[list[str]]) -> list[list[str]]:
    """Append the path of every text value containing a NUL byte to `out`."""
    if isinstance(value, str):
        if "\x00" in value:
            out.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            nul_paths(item, [*path, key], out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            nul_paths(item, [*path, str(index)], out)
    return out


def has_nul(value: Any) -> bool:
    """Whether `nul_paths` would find anything (the same walk, without building a path per value)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        for item in value.values():
            if has_nul(item):
                return True
    elif isinstance(value, list):
        for item in value:
            if has_nul(item):
                return True
    return False


def _can_hold_text(gtype, seen: set) -> bool:
    while isinstance(gtype, (GraphQLNonNull, GraphQLList)):
        gtype = gtype.of_type
    if isinstance(gtype, GraphQLScalarType):
        return gtype.name in ("String", "ID")
    if isinstance(gtype, GraphQLInputObjectType):
        if gtype.name in seen:
            return False
        seen.add(gtype.name)
        return any(_can_hold_text(f.type, seen) for f in gtype.fields.values())
    return False


def _empty_payload(gtype):
    """A factory of the mutation's payload with only `userErrors` set, or None when the field's type is
    not such a payload (or a required field of it has no obvious empty value)."""
    while isinstance(gtype, GraphQLNonNull):
        gtype = gtype.of_type
    definition = (gtype.extensions or {}).get("strawberry-definition") if isinstance(gtype, GraphQLObjectType) else None
    if definition is None or not any(f.python_name == "user_errors" for f in definition.fields):
        return None
    empty: dict[str, Any] = {}
    for f in definition.fields:
        if f.python_name == "user_errors":
            continue
        if isinstance(f.type, StrawberryOptional):
            empty[f.python_name] = None
        elif isinstance(f.type, StrawberryList):
            empty[f.python_name] = list
        elif f.type in (int, bool):
            empty[f.python_name] = f.type()
        else:
            return None
    origin = definition.origin
    return lambda errors: origin(**{k: v() if v is list else v for k, v in empty.items()}, user_errors=errors)


def _item_batch_args(gtype, field) -> set[str]:
    """The list arguments whose items the field's batch rejects one by one (payload with `rejected`)."""
    while isinstance(gtype, GraphQLNonNull):
        gtype = gtype.of_type
    if not isinstance(gtype, GraphQLObjectType) or "rejected" not in gtype.fields:
        return set()
    out = set()
    for name, arg in field.args.items():
        t = arg.type.of_type if isinstance(arg.type, GraphQLNonNull) else arg.type
        if isinstance(t, GraphQLList):
            out.add(name)
    return out


def _user_path(path: list[str], input_objects: set[str]) -> list[str]:
    """`input.name` → ["name"] (user errors of an `input` argument are relative to it)."""
    return path[1:] if path[0] in input_objects and len(path) > 1 else path


def _checked(resolve, field, is_mutation: bool):
    payload = _empty_payload(field.type) if is_mutation else None
    per_item = _item_batch_args(field.type, field) if is_mutation else set()
    input_objects = {name for name, arg in field.args.items() if name == "input"}

    def check(source, info, /, **args):  # positional-only: an argument may be named `source` or `info`
        found = nul_paths(args, [], []) if has_nul(args) else []
        if per_item:
            found = [p for p in found if not (p[0] in per_item and len(p) > 2)]
        if not found:
            return resolve(source, info, **args)
        if payload is not None:
            from graph.core import UserError

            return payload([UserError(field=_user_path(p, input_objects), message=MESSAGE, code=DomainCode.INVALID)
                            for p in found])
        raise GraphQLError(f"{MESSAGE} (at {'.'.join(found[0])})",
                           extensions={"code": "INVALID", "field": found[0]})
    check.__wrapped__ = resolve
    return check


def wrap_schema(schema: GraphQLSchema) -> None:
    """Put the NUL check around every field (resolve; subscribe for subscriptions) whose arguments can
    hold text. Fields without such arguments are left as they are (no cost)."""
    for gtype in schema.type_map.values():
        if not isinstance(gtype, GraphQLObjectType) or gtype.name.startswith("__"):
            continue
        for field in gtype.fields.values():
            if not field.args or not any(_can_hold_text(a.type, set()) for a in field.args.values()):
                continue
            is_mutation = gtype is schema.mutation_type
            if gtype is schema.subscription_type and field.subscribe is not None:
                field.subscribe = _checked(field.subscribe, field, False)
            else:
                field.resolve = _checked(field.resolve or default_field_resolver, field, is_mutation)
