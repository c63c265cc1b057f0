"""Cluster mode in the PostgreSQL journal: partition leases, fences, and shared counters.

Partitions are owned through leases (:meth:`PostgresLeases.acquire_lease`), each tenure with a
new epoch. ``complete``/``bury`` carrying a :class:`Fence` check the lease row in the same
transaction (:func:`fence_holds`: ``FOR SHARE``, so a takeover waits for the write to commit)
and write nothing when it has moved on. Lease writes run on the node's own session
(:mod:`.liveness`), whose advisory locks show which owners are alive; reads use the bridge's
own small pool: neither queues behind deliveries. Counters per time window
(:meth:`PostgresLeases.claim_window`) let every node share one rate budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._journal import Fence, Lease
from .aio import Conn, SessionConn
from .bridge import PostgresBridge
from .liveness import session_held_sql

__all__ = ["PostgresLeases", "fence_holds"]

_ACQUIRE_LEASE = (
    "INSERT INTO journal_leases AS l (partition, owner, epoch, expires_at)"
    " VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))"
    " ON CONFLICT (partition) DO UPDATE"
    " SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at"
    " WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()"
    f" OR (l.owner = ANY($4::text[]) AND NOT {session_held_sql('l.owner')})"
    " RETURNING epoch"
)
_ACQUIRE_LEASES = (
    "INSERT INTO journal_leases AS l (partition, owner, epoch, expires_at)"
    " SELECT p, $2, 1, clock_timestamp() + make_interval(secs => $3)"
    " FROM unnest($1::int[]) AS p ORDER BY p"
    " ON CONFLICT (partition) DO UPDATE"
    " SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at"
    " WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()"
    f" OR (l.owner = ANY($4::text[]) AND NOT {session_held_sql('l.owner')})"
    " RETURNING partition, epoch"
)
_LEASE_OWNERS = (
    f"SELECT owner, {session_held_sql('owner')} AS up FROM"
    " (SELECT DISTINCT owner FROM journal_leases WHERE expires_at > clock_timestamp()) AS o"
)
# One row per counter, holding its latest window: a newer window starts from the floor, the
# same window grows up to the limit, an older one (a caller whose clock lags) gets nothing.
# ``granted`` is computed from the old row in the same statement, so one round trip suffices.
_CLAIM_WINDOW = (
    "INSERT INTO journal_windows AS w (name, window_, used, granted)"
    " SELECT n, k, GREATEST(f, LEAST(l, f + q)), GREATEST(f, LEAST(l, f + q)) - f"
    " FROM (SELECT $1::text, $2::bigint, $3::int, $4::int, $5::int) AS p (n, k, q, l, f)"
    " ON CONFLICT (name) DO UPDATE SET"
    " window_ = GREATEST(w.window_, excluded.window_),"
    " used = CASE WHEN w.window_ < excluded.window_ THEN excluded.used"
    " WHEN w.window_ > excluded.window_ THEN w.used"
    " ELSE GREATEST(w.used, $5, LEAST($4, GREATEST(w.used, $5) + $3)) END,"
    " granted = CASE WHEN w.window_ < excluded.window_ THEN excluded.granted"
    " WHEN w.window_ > excluded.window_ THEN 0"
    " ELSE GREATEST(w.used, $5, LEAST($4, GREATEST(w.used, $5) + $3)) - GREATEST(w.used, $5) END"
    " RETURNING granted"
)
_FENCE_HOLDS = """
SELECT (SELECT e.partition FROM journal_entries e WHERE e.id = $4) AS entry_partition
FROM journal_leases WHERE partition = $1 AND owner = $2 AND epoch = $3
FOR SHARE OF journal_leases
"""


class PostgresLeases(PostgresBridge):
    """The lease and window methods of :class:`PostgresJournal`."""

    async def acquire_lease(
        self, partition: int, owner: str, *, ttl: float, dead: Sequence[str] = ()
    ) -> Fence | None:
        """Start a tenure of ``owner`` over ``partition`` for ``ttl`` seconds, or None when
        another owner's lease has not expired yet. A lease of an owner in ``dead`` is taken
        before it expires if no session holds that owner's liveness lock (checked in the same
        statement; see :meth:`lease_owners`).

        Every tenure gets a new epoch, even when ``owner`` held the partition before (a restarted
        node re-acquiring under the same name fences out its stale predecessor). Expiry is
        judged by the database clock, so node clocks need not agree.
        """

        async def take(conn: SessionConn) -> int | None:
            epoch: int | None = await conn.fetchval(
                _ACQUIRE_LEASE, partition, owner, ttl, list(dead)
            )
            return epoch

        epoch = await self._session.run(owner, ttl, take)
        return None if epoch is None else Fence(partition, owner, epoch)

    async def acquire_leases(
        self, partitions: Sequence[int], owner: str, *, ttl: float, dead: Sequence[str] = ()
    ) -> dict[int, Fence]:
        """:meth:`acquire_lease` for many partitions in one statement: the tenures begun, by
        partition (the others are held by live owners). One round trip, so a node taking over
        a dead node's partitions, or starting, does not trust its first leases for longer than
        their validity while it asks for the rest."""
        if not partitions:
            return {}

        async def take(conn: SessionConn) -> dict[int, Fence]:
            rows = await conn.fetch(_ACQUIRE_LEASES, list(partitions), owner, ttl, list(dead))
            return {r["partition"]: Fence(r["partition"], owner, r["epoch"]) for r in rows}

        return await self._session.run(owner, ttl, take)

    async def lease_owners(self) -> dict[str, bool]:
        """The owners of live (unexpired) leases, each with whether a session holds its
        liveness lock: False means the owner's lease session ended (its process died, or its
        connection was lost), so its leases may be taken over at once (``dead=``)."""

        async def query(conn: Conn) -> dict[str, bool]:
            return {row["owner"]: row["up"] for row in await conn.fetch(_LEASE_OWNERS)}

        return await self._call(query, write=False, what="lease owners", control=True)

    def session_holds(self, owner: str) -> bool:
        """Whether this journal's lease session is up and holds ``owner``'s liveness lock, as
        far as this process knows. When it does not, others may take ``owner``'s leases."""
        return self._session.holds(owner)

    async def renew_lease(self, fence: Fence, *, ttl: float) -> bool:
        """Extend the tenure ``fence`` proves to ``ttl`` seconds from now. False when another
        tenure has begun (then stop working on the partition). An expired lease nobody took over
        is renewed: no one else can have written under it."""

        async def extend(conn: SessionConn) -> bool:
            status = await conn.execute(
                "UPDATE journal_leases"
                " SET expires_at = clock_timestamp() + make_interval(secs => $4)"
                " WHERE partition = $1 AND owner = $2 AND epoch = $3",
                fence.partition,
                fence.owner,
                fence.epoch,
                ttl,
            )
            return status == "UPDATE 1"

        return await self._session.run(fence.owner, ttl, extend)

    async def renew_leases(self, fences: Sequence[Fence], *, ttl: float) -> set[int]:
        """:meth:`renew_lease` for many tenures in one round trip; returns the partitions
        renewed (the others have moved). A node renews all its partitions at each tick: one
        statement keeps that fast while its deliveries keep the process busy."""
        if not fences:
            return set()

        async def extend(conn: SessionConn) -> set[int]:
            rows = await conn.fetch(
                "UPDATE journal_leases AS l"
                " SET expires_at = clock_timestamp() + make_interval(secs => $4)"
                " FROM unnest($1::int[], $2::text[], $3::bigint[]) AS f (partition, owner, epoch)"
                " WHERE l.partition = f.partition AND l.owner = f.owner AND l.epoch = f.epoch"
                " RETURNING l.partition",
                [f.partition for f in fences],
                [f.owner for f in fences],
                [f.epoch for f in fences],
                ttl,
            )
            return {row["partition"] for row in rows}

        owners = {f.owner for f in fences}
        if len(owners) > 1:  # one session statement per owner (its liveness lock first)
            renewed: set[int] = set()
            for owner in sorted(owners):
                renewed |= await self.renew_leases([f for f in fences if f.owner == owner], ttl=ttl)
            return renewed
        return await self._session.run(fences[0].owner, ttl, extend)

    async def leases(self) -> list[Lease]:
        """Every lease row (live or expired), judged by the database clock."""

        async def query(conn: Conn) -> list[Lease]:
            rows = await conn.fetch(
                "SELECT partition, owner, epoch, expires_at > clock_timestamp() AS live"
                " FROM journal_leases ORDER BY partition"
            )
            return [Lease(r["partition"], r["owner"], r["epoch"], r["live"]) for r in rows]

        return await self._call(query, write=False, what="lease read", control=True)

    async def release_lease(self, fence: Fence) -> bool:
        """End the tenure ``fence`` proves, so another node may acquire the partition at once.
        The row stays (expired) so that epochs keep growing. False when it had already moved."""

        async def end(conn: SessionConn) -> bool:
            status = await conn.execute(
                "UPDATE journal_leases SET expires_at = '-infinity'"
                " WHERE partition = $1 AND owner = $2 AND epoch = $3",
                fence.partition,
                fence.owner,
                fence.epoch,
            )
            return status == "UPDATE 1"

        return await self._session.run(fence.owner, 0.0, end)

    # --- shared counters per time window (cluster mode) ---------------------------------------

    async def claim_window(
        self, name: str, window: int, want: int, *, limit: int, floor: int = 0
    ) -> int:
        """Take up to ``want`` units of counter ``name`` in ``window`` (any increasing window
        number the callers agree on), never more than ``limit`` per window across every
        process; first raise the window's count to at least ``floor``. Returns the units taken:
        0 when the window is full, or when the counter has already moved to a later window.

        One statement, one round trip; concurrent claims serialise on the counter's row.
        """
        if want < 0 or limit < 0 or floor < 0:
            raise ValueError("want, limit and floor must be >= 0")

        async def take(conn: Conn) -> int:
            granted: int = await conn.fetchval(_CLAIM_WINDOW, name, window, want, limit, floor)
            return granted

        return await self._call(take, write=True, what="window claim", transaction=False)


async def fence_holds(conn: Conn, fence: Fence, entry_id: int) -> bool:
    # FOR SHARE: a takeover (which updates the row) waits until this transaction commits, so
    # the new owner reads pending entries only after this write is visible.
    # One round trip: the lease (locked) and the entry's partition.
    held = await conn.fetchrow(_FENCE_HOLDS, fence.partition, fence.owner, fence.epoch, entry_id)
    if held is None:
        return False
    partition = held["entry_partition"]
    return partition is None or partition == fence.partition
