"""Impersonation's promises: nested blocks, the revert before the delete, finalizers.

On FakeSspi (sspi-rs cannot impersonate), with every provider call recorded in order
(``wrapped.Wrapped``):

- nested ``impersonate()`` blocks on one context keep the client's identity until the
  outermost block ends, also when an inner block raises (issue 19, item 10); a block
  for another context inside one is refused before any call;
- the context is never deleted while its client is impersonated: ``close()`` inside
  the block deletes it after the revert, and a context collected while impersonating
  (its block abandoned in a suspended generator that forms a reference cycle) is
  reverted, then deleted, whichever finalizer the collector runs first (item 9).
"""

from __future__ import annotations

import gc
import threading
import warnings
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import sspi_import
from sspi_import import SecurityContext
from sspi_import.testing import FakeSspi
from wrapped import TIMEOUT, Wrapped

ALICE = "EXAMPLE\\alice"
RECORDED = ("ImpersonateSecurityContext", "RevertSecurityContext", "DeleteSecurityContext")


class Calls:
    """The impersonation calls and deletes the provider saw, in order, with their status."""

    def __init__(self, wrapped: Wrapped) -> None:
        self.seen: list[str] = []
        for name in RECORDED:
            wrapped.before(name, lambda *args, name=name: self.seen.append(name))

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def fake() -> Iterator[FakeSspi]:
    """A FakeSspi of its own: some tests leave a context to its finalizer on purpose."""
    with FakeSspi() as simulated:
        yield simulated
    assert not simulated.misuses, simulated.misuses
    simulated.assert_no_leaks()


@pytest.fixture
def calls(fake: FakeSspi) -> Calls:
    return Calls(Wrapped(fake).install())


@pytest.fixture
def server(fake: FakeSspi, calls: Calls) -> Iterator[SecurityContext]:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        calls.take()
        yield server


# Nested blocks -------------------------------------------------------------------------


def test_nested_blocks_keep_the_client_until_the_outermost_ends(
    fake: FakeSspi, calls: Calls, server: SecurityContext
) -> None:
    with server.impersonate():
        with server.impersonate():
            with server.impersonate():
                assert fake.impersonating == ALICE
            assert fake.impersonating == ALICE  # the innermost end did not revert
        assert fake.impersonating == ALICE
        assert calls.take() == ["ImpersonateSecurityContext"]
    assert fake.impersonating is None
    assert calls.take() == ["RevertSecurityContext"]


def test_an_exception_in_an_inner_block_reverts_at_the_outermost_exit(
    fake: FakeSspi, calls: Calls, server: SecurityContext
) -> None:
    with server.impersonate():
        with pytest.raises(KeyError), server.impersonate():
            raise KeyError("inner")
        assert fake.impersonating == ALICE  # caught inside the outer block: still the client
    assert fake.impersonating is None
    with pytest.raises(KeyError), server.impersonate(), server.impersonate():
        raise KeyError("through both")
    assert fake.impersonating is None
    assert calls.take() == ["ImpersonateSecurityContext", "RevertSecurityContext"] * 2


def test_a_block_for_another_context_inside_one_is_refused(
    fake: FakeSspi, calls: Calls, server: SecurityContext
) -> None:
    client2, server2 = sspi_import.loopback("NTLM")
    with client2, server2:
        calls.take()
        with server.impersonate():
            with (
                pytest.raises(RuntimeError, match="another context") as info,
                server2.impersonate(),
            ):
                pytest.fail("the block ran")  # pragma: no cover
            assert "end that block first" in str(info.value)
            assert fake.impersonating == ALICE  # the outer client still
            assert calls.take() == ["ImpersonateSecurityContext"]  # none for server2
        assert calls.take() == ["RevertSecurityContext"]
        with server2.impersonate():  # once the outer block ended, it may
            assert fake.impersonating == ALICE
        assert calls.take() == ["ImpersonateSecurityContext", "RevertSecurityContext"]


def test_nesting_is_per_thread(fake: FakeSspi, calls: Calls, server: SecurityContext) -> None:
    """Another thread's block on another context is not nested in this thread's."""
    client2, server2 = sspi_import.loopback("NTLM")
    with client2, server2:
        errors: list[BaseException] = []

        def other() -> None:
            try:
                with server2.impersonate():
                    pass
            except BaseException as exc:  # judged below
                errors.append(exc)

        with server.impersonate():
            thread = threading.Thread(target=other)
            thread.start()
            thread.join(TIMEOUT)
        assert errors == []


# Never deleted while impersonated -------------------------------------------------------


def test_close_inside_the_block_deletes_after_the_revert(
    fake: FakeSspi, calls: Calls, server: SecurityContext
) -> None:
    with server.impersonate():
        server.close()
        assert server.closed
        assert fake.impersonating == ALICE  # still the client until the block ends
        with pytest.raises(ValueError, match="closed"):
            server.sizes()
        assert calls.take() == ["ImpersonateSecurityContext"]  # not deleted yet
    assert calls.take() == ["RevertSecurityContext", "DeleteSecurityContext"]
    assert fake.impersonating is None
    assert fake.outstanding().contexts == 1  # the client's only


def _abandon_in_a_cycle(
    fake: FakeSspi, calls: Calls, *, generator_first: bool
) -> tuple[sspi_import.SecurityContext, list[str]]:
    """A context left impersonating inside a suspended generator, both in one cycle.

    The collector runs the finalizers of a cycle in the order its objects are listed,
    the order they were made in: ``generator_first`` makes the generator before the
    context, so that the block is ended first; otherwise the context's finalizer runs
    first (and must leave the handle to the block's end).
    """

    class Holder:
        context: Any = None
        generator: Any = None

    def block(holder: Holder) -> Generator[None, Any, None]:
        holder.context = yield  # made after the generator when generator_first
        with holder.context.impersonate():
            yield

    holder = Holder()
    if generator_first:
        holder.generator = block(holder)
        next(holder.generator)
        client, server = sspi_import.loopback("NTLM")
    else:
        client, server = sspi_import.loopback("NTLM")
        holder.generator = block(holder)
        next(holder.generator)
    holder.generator.send(server)
    assert fake.impersonating == ALICE
    del server, holder  # the cycle: holder -> generator -> frame -> holder
    calls.take()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return client, [str(w.message) for w in caught]


@pytest.mark.parametrize("generator_first", [True, False], ids=["block-first", "context-first"])
def test_a_context_collected_while_impersonating_is_reverted_before_it_is_deleted(
    fake: FakeSspi, calls: Calls, generator_first: bool
) -> None:
    client, messages = _abandon_in_a_cycle(fake, calls, generator_first=generator_first)
    # Which finalizer ran first: the block's end (then the context, no longer pinned,
    # was freed by its own finalizer, which warns) or the context's (it left the handle
    # to the block's end, which freed it: no warning).
    unclosed = [m for m in messages if m.startswith("unclosed <SecurityContext")]
    assert len(unclosed) == (1 if generator_first else 0), messages
    with client:
        assert calls.take() == ["RevertSecurityContext", "DeleteSecurityContext"]
        assert fake.impersonating is None
        assert fake.outstanding().contexts == 1  # the client's only
        assert fake.outstanding().impersonations == 0


# Blocks that end out of order, or on another thread (found by a review) -----------------


def test_blocks_on_one_context_ending_out_of_order_keep_the_client_until_the_last(
    fake: FakeSspi, calls: Calls, server: SecurityContext
) -> None:
    """A generator suspended in a block, another block opened meanwhile: the first one
    entered ends first. The one still open keeps running as the client."""

    def stream() -> Generator[None, None, None]:
        with server.impersonate():
            yield

    suspended = stream()
    next(suspended)
    with server.impersonate():
        suspended.close()  # the block entered first ends here
        assert fake.impersonating == ALICE  # this block's code still runs as the client
        assert calls.take() == ["ImpersonateSecurityContext"]
    assert fake.impersonating is None
    assert calls.take() == ["RevertSecurityContext"]
    with server.impersonate():  # and the bookkeeping is whole: a new block impersonates
        assert calls.take() == ["ImpersonateSecurityContext"]
    assert calls.take() == ["RevertSecurityContext"]


def test_two_tasks_impersonating_on_one_context_keep_the_client_until_both_end(
    fake: FakeSspi, calls: Calls, server: SecurityContext
) -> None:
    import asyncio

    seen: dict[str, object] = {}

    async def serve(name: str, go: asyncio.Event, done: asyncio.Event | None) -> None:
        with server.impersonate():
            await go.wait()
            seen[name] = fake.impersonating
        if done is not None:
            done.set()

    async def main() -> None:
        first, second, first_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(serve("a", first, first_done))
        b = asyncio.create_task(serve("b", second, None))
        await asyncio.sleep(0)
        first.set()
        await first_done.wait()  # a's block ended while b's is open
        second.set()
        await asyncio.gather(a, b)

    asyncio.run(main())
    assert seen == {"a": ALICE, "b": ALICE}
    assert fake.impersonating is None
    assert calls.take() == ["ImpersonateSecurityContext", "RevertSecurityContext"]


def test_a_block_ended_on_another_thread_reverts_nothing_there(fake: FakeSspi) -> None:
    """A revert acts on the calling thread: ending a block resumed elsewhere must not
    end that thread's impersonation (nor forget it)."""
    contexts = [sspi_import.loopback("NTLM") for _ in range(3)]
    servers = [server for _client, server in contexts]
    errors: list[str] = []  # texts: a traceback would keep the abandoned block alive

    def body() -> Generator[None, None, None]:
        with servers[0].impersonate():
            yield

    suspended = [body()]  # a box: dropped at the end, to be collected
    entered = threading.Thread(target=lambda: next(suspended[0]))
    entered.start()
    entered.join(TIMEOUT)

    def elsewhere() -> None:
        with servers[1].impersonate():
            reverts = fake.calls("RevertSecurityContext")
            try:
                suspended[0].close()
            except RuntimeError as exc:
                errors.append(str(exc))
            assert fake.calls("RevertSecurityContext") == reverts  # nothing reverted here
            try:
                with servers[2].impersonate():
                    pass
            except RuntimeError as exc:  # this thread's own block is still known
                errors.append(str(exc))

    other = threading.Thread(target=elsewhere)
    other.start()
    other.join(TIMEOUT)
    assert len(errors) == 2
    assert "ending on another thread" in errors[0]
    assert "another context" in errors[1]
    suspended.clear()
    gc.collect()  # the abandoned block's finalizer, on this third thread: no revert here
    for client, server in contexts:
        client.close()
        server.close()
    fake.misuses.clear()
