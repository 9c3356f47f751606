"""BodyLimit's deadline per body receive (app/main.py `_within`) behaves like
`asyncio.wait_for(receive(), timeout)` — the value, the exception, the receive's own cleanup on a
deadline or an outside cancel — while arming no timer when the receive does not wait."""

import asyncio

import pytest

from app.main import _SlowBody, _within


async def _both(make, timeout=0.2):
    """(outcome through _within, outcome through wait_for): ("value", v) or ("raised", type name), and
    what the receive recorded (its cleanup) each time."""
    outcomes = []
    for way in ("within", "wait_for"):
        log = []
        try:
            if way == "within":
                value = await _within(make(log), timeout)
            else:
                try:
                    value = await asyncio.wait_for(make(log), timeout)
                except asyncio.TimeoutError:
                    raise _SlowBody() from None
            outcomes.append((("value", value), log))
        except BaseException as exc:  # noqa: BLE001
            outcomes.append((("raised", type(exc).__name__, str(exc)), log))
    return outcomes


def _later(delay, value=None, error=None):
    async def receive(log):
        fut = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        if error is not None:
            loop.call_later(delay, lambda: fut.done() or fut.set_exception(error))
        else:
            loop.call_later(delay, lambda: fut.done() or fut.set_result(value))
        try:
            return await fut
        finally:
            log.append("cleanup")
    return receive


async def _immediate(log):
    return {"type": "http.request", "body": b"x"}


async def _bare_yields(log):
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return "after two bare yields"


async def _two_waits(log):
    first = await _later(0.01, "a")(log)
    second = await _later(0.01, "b")(log)
    return first + second


async def _catches(log):
    try:
        return await _later(0.01, error=ValueError("boom"))(log)
    except ValueError as exc:
        return f"caught {exc}"


@pytest.mark.parametrize("make", [
    _immediate, _bare_yields, _two_waits, _catches,
    _later(0.01, "late"), _later(0.01, error=ValueError("boom")), _later(5, "never"),
], ids=["immediate", "bare yields", "two waits", "caught", "late", "failed", "too slow"])
async def test_within_answers_what_wait_for_answers(make):
    within, wait_for = await _both(make)
    assert within == wait_for


async def test_no_timer_when_the_receive_does_not_wait(monkeypatch):
    def no_timer(*_a, **_k):
        raise AssertionError("a timer was armed")

    monkeypatch.setattr(asyncio, "timeout", no_timer)
    assert await _within(_immediate([]), 1) == {"type": "http.request", "body": b"x"}


async def test_a_cancel_from_outside_reaches_the_receive():
    log = []
    task = asyncio.create_task(_within(_later(5, "never")(log), 10))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["cleanup"]


async def test_a_future_is_awaited_under_the_deadline():
    fut = asyncio.get_running_loop().create_future()
    with pytest.raises(_SlowBody):
        await _within(fut, 0.05)
    fut2 = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, fut2.set_result, 7)
    assert await _within(fut2, 1) == 7
