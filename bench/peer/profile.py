"""Where the Pulse process spends its time under one read's load (`python -m bench.peer --profile`).

py-spy samples the server (`py-spy record --format raw`: one line per distinct stack,
"frame;frame;… count", a frame being "function (path/file.py:line)"). Two views:

* **self time by component**: each sample is charged to the innermost frame that belongs to a
  known package (Pulse's own app/graph/models/subscriptions, or a dependency); frames of the
  standard library (asyncio, typing, inspect, enum, …) are charged to their nearest caller that
  is not standard library; stacks that are standard library only are "event loop / stdlib".
* **inclusive time of cost centres**: the share of samples with a matching frame anywhere in
  the stack (they overlap). Matching is by function name and package, not by Pulse's module
  paths, so it survives code moving between modules.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

PACKAGES = {
    "tortoise": "Tortoise ORM", "pypika": "pypika (Tortoise's SQL builder)",
    "pypika_tortoise": "pypika (Tortoise's SQL builder)", "strawberry": "Strawberry",
    "graphql": "graphql-core", "uvicorn": "uvicorn", "starlette": "Starlette", "asyncpg": "asyncpg",
    "httptools": "uvicorn", "h11": "uvicorn", "orjson": "orjson", "pydantic": "pydantic",
    "pydantic_core": "pydantic", "prometheus_client": "prometheus_client", "broadcaster": "broadcaster",
    "app": "Pulse (app, graph, models, subscriptions)", "graph": "Pulse (app, graph, models, subscriptions)",
    "models": "Pulse (app, graph, models, subscriptions)",
    "subscriptions": "Pulse (app, graph, models, subscriptions)",
    "click": "click", "uvloop": "uvloop", "redis": "redis",
}
STDLIB = "event loop / stdlib only"
# Frames that only start the server (CLI, uvicorn.run, asyncio.run): the event loop's own time,
# seen under them, is not theirs.
LAUNCHER = re.compile(r"\((click/|uvicorn/(main|server|_compat)\.py|app/cli\.py|<frozen runpy>)")

# (label, regex on one frame "function (path:line)"). Overlapping by design.
CENTRES = [
    ("HTTP auth middleware: token lookup (authenticate: hash, SELECT api_token JOIN app_user)", r"^authenticate \("),
    ("Strawberry HTTP view (run: body parse, execution, response)", r"^AsyncBaseHTTPView\.run \(strawberry"),
    ("  request body parse (parse_http_body)", r"^AsyncBaseHTTPView\.parse_http_body \("),
    ("  GraphQL parse + validate (Strawberry's _prepare_operation)", r"_prepare_operation"),
    ("  GraphQL execution (Schema._execute_operation, resolvers and their SQL included)",
     r"^Schema\._execute_operation \(strawberry"),
    ("    resolvers (Strawberry resolver wrapper, SQL included)", r"^GraphQLCoreConverter\.from_resolver\.<locals>\._async_resolver"),
    ("  response (create_response / JSON encoding)", r"(create_response|encode_json|^dumps \(|orjson)"),
    ("    plain leaf fields completed directly (PulseExecutionContext.execute_field)",
     r"^PulseExecutionContext\.execute_field \("),
    ("    direct-field objects completed by a plan (graph/core/execution.py _run)", r"^_run \(graph/core/execution"),
    ("fixed-SQL reads into models (app/db.py fetch_models, model building included)", r"^fetch_models \("),
    ("Tortoise queryset (build + run + model building)", r"\(tortoise/queryset\.py"),
    ("  pypika SQL building", r"\(pypika(_tortoise)?/"),
    ("  Tortoise model building from rows (_init_from_db)", r"_init_from_db \(tortoise/models\.py"),
    ("  Tortoise asyncpg client execute_query[_dict] (acquire, run, release)", r"^AsyncpgDBClient\.execute_query(_dict)? \("),
    ("    asyncpg pool acquire", r"^Pool\._acquire \(asyncpg/pool\.py"),
    ("    asyncpg pool release (PoolConnectionHolder.release)", r"^PoolConnectionHolder\.release \(asyncpg"),
    ("      of which the reset query (Connection.reset)", r"^Connection\.reset \(asyncpg"),
    ("    asyncpg fetch (statement round trip, Python side)", r"^Connection\.fetch \(asyncpg"),
    ("DataLoader batches (graph loaders, run outside the request's stack)", r"DataLoader|\(strawberry/dataloader|\(graph/loaders"),
    ("Starlette (middleware, routing; inclusive of everything below it)", r"\(starlette/"),
    ("uvicorn protocol (httptools_impl)", r"\(uvicorn/protocols"),
]


def package_of(frame: str) -> str | None:
    m = re.search(r"\(([^():]+?)(?::\d+)?\)$", frame)
    if not m:
        return None
    path = m.group(1)
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    top = path.split("/", 1)[0]
    if top.endswith(".py"):
        top = top[:-3]
    return PACKAGES.get(top)


def load(path: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, n = line.rpartition(" ")
        out.append((stack.split(";"), int(n)))
    return out


def summarize(path: Path, top: int = 12) -> list[str]:
    stacks = load(path)
    total = sum(n for _, n in stacks)
    if not total:
        return ["(no samples)"]
    own: Counter[str] = Counter()
    inc: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    compiled = [(label, re.compile(rx)) for label, rx in CENTRES]
    for frames, n in stacks:
        where = STDLIB
        for f in reversed(frames):
            p = package_of(f)
            if p is not None and not LAUNCHER.search(f):
                where = p
                break
        own[where] += n
        fn[frames[-1]] += n
        for label, rx in compiled:
            if any(rx.search(f) for f in frames):
                inc[label] += n
    lines = [f"{total} samples", "self time by component:"]
    lines += [f"  {100 * v / total:5.1f} %  {k}" for k, v in own.most_common()]
    lines.append("inclusive time of cost centres (overlapping):")
    lines += [f"  {100 * inc[label] / total:5.1f} %  {label}" for label, _ in CENTRES]
    lines.append(f"hottest leaf frames (top {top}):")
    lines += [f"  {100 * v / total:5.1f} %  {k}" for k, v in fn.most_common(top)]
    return lines


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        print(arg)
        print("\n".join(summarize(Path(arg))))
