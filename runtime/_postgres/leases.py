"""Cluster mode in the PostgreSQL journal: partition leases, fences, and shared counters.

Partitions are owned through leases (:meth:`PostgresLeases.acquire_lease`), each tenure with a
new epoch. ``complete``/``bury`` carrying a :class:`Fence` check the lease row in the same
transaction (:func:`fence_holds`: ``FOR SHARE``, so a takeover waits for the write to commit)
and write nothing when it has moved on. Lease calls use the bridge's own small pool, so they
never queue behind deliveries. Counters per time window (:meth:`PostgresLeases.claim_window`)
let every node share one rate budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._journal import Fence, Lease
from .aio import Conn
from .bridge import PostgresBridge

__all__ = ["PostgresLeases", "fence_holds"]

_ACQUIRE_LEASE = (
    "INSERT INTO journal_leases AS l (partition, owner, epoch, expires_at)"
    " VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))"
    " ON CONFLICT (partition) DO UPDATE"
    " SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at"
    " WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()"
    " RETURNING epoch"
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
_FENCE_HOLDS = (
    "SELECT 1 FROM journal_leases WHERE partition = $1 AND owner = $2 AND epoch = $3 FOR SHARE"
)


class PostgresLeases(PostgresBridge):
    """The lease and window methods of :class:`PostgresJournal`."""

    async def acquire_lease(self, partition: int, owner: str, *, ttl: float) -> Fence | None:
        """Start a tenure of ``owner`` over ``partition`` for ``ttl`` seconds, or None when
        another owner's lease has not expired yet.

        Every tenure gets a new epoch, even when ``owner`` held the partition before (a restarted
        node re-acquiring under the same name fences out its stale predecessor). Expiry is
        judged by the database clock, so node clocks need not agree.
        """

        async def take(conn: Conn) -> int | None:
            epoch: int | None = await conn.fetchval(_ACQUIRE_LEASE, partition, owner, ttl)
            return epoch

        epoch = await self._call(take, write=True, what="lease acquire", control=True)
        return None if epoch is None else Fence(partition, owner, epoch)

    async def renew_lease(self, fence: Fence, *, ttl: float) -> bool:
        """Extend the tenure ``fence`` proves to ``ttl`` seconds from now. False when another
        tenure has begun (then stop working on the partition). An expired lease nobody took over
        is renewed: no one else can have written under it."""

        async def extend(conn: Conn) -> bool:
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

        return await self._call(extend, write=True, what="lease renew", control=True)

    async def renew_leases(self, fences: Sequence[Fence], *, ttl: float) -> set[int]:
        """:meth:`renew_lease` for many tenures in one round trip; returns the partitions
        renewed (the others have moved). A node renews all its partitions at each tick: one
        statement keeps that fast while its deliveries keep the process busy."""
        if not fences:
            return set()

        async def extend(conn: Conn) -> set[int]:
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

        return await self._call(
            extend, write=True, what="lease renew", transaction=False, control=True
        )

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

        async def end(conn: Conn) -> bool:
            status = await conn.execute(
                "UPDATE journal_leases SET expires_at = '-infinity'"
                " WHERE partition = $1 AND owner = $2 AND epoch = $3",
                fence.partition,
                fence.owner,
                fence.epoch,
            )
            return status == "UPDATE 1"

        return await self._call(end, write=True, what="lease release", control=True)

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
    held = await conn.fetchval(_FENCE_HOLDS, fence.partition, fence.owner, fence.epoch)
    if held is None:
        return False
    partition = await conn.fetchval("SELECT partition FROM journal_entries WHERE id = $1", entry_id)
    return partition is None or partition == fence.partition
