using System.Diagnostics;
using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <content>
/// Per-thread state: block caches and single-writer counters, so renting and returning need no shared write.
/// </content>
/// <remarks>
/// <para>
/// Counters are summed on demand (statistics, disposal, waits), which makes them cheap to keep and
/// O(threads) to read. A thread that has died is folded into the retired totals when the registry grows,
/// so the registry stays bounded by the threads alive at once.
/// </para>
/// <para>
/// Disposal must still know exactly when the last lease comes back, without a shared counter. It uses an
/// asymmetric Dekker handshake. A renter stores <c>Active = 1</c>, then loads <c>_disposed</c>; a returner
/// stores its count, then loads <c>_disposed</c>. <c>Dispose</c> stores <c>_disposed</c>, then runs
/// <see cref="Interlocked.MemoryBarrierProcessWide"/>, then reads their stores. The process-wide barrier makes
/// it impossible for both sides to miss each other, so either the renter sees the pool disposed and backs out,
/// or <c>Dispose</c> sees it in flight and waits. A second flag and barrier, set only after the in-flight
/// rents are done, does the same for returners: either a returner sees renting stopped and re-checks the
/// counts, or <c>Dispose</c> counts its return. A returner must not release earlier, because a rent still in
/// flight could then grow a slab after the release (the rent-vs-dispose test caught exactly this). The costly
/// fences live on the rare side only.
/// </para>
/// <para>
/// Taking cached blocks back from live threads (trimming, a rent about to fall back for capacity) uses the same
/// asymmetric handshake per thread: <see cref="PoolThreadState.Stealing"/> against
/// <see cref="PoolThreadState.Active"/>, which returns set too. A thread's state refers to its pool by id, not by
/// reference, so a thread that once rented from a pool never keeps that pool alive.
/// </para>
/// </remarks>
public sealed partial class DirectBufferPool
{
    private static readonly Lock s_slotLock = new();
    private static readonly Stack<int> s_freeSlots = new();
    private static int s_nextSlot;

    [ThreadStatic]
    private static PoolThreadState?[]? t_states;

    private readonly Lock _registryLock = new();
    private long _lastTakeBackTick;
    private PoolThreadState[] _states = [];
    private int _pruneAt = 16;

    // Totals of pruned (dead) threads' states; written under _registryLock.
    private long _retiredRents;
    private long _retiredReturns;
    private long _retiredRentedBytes;
    private long _retiredReturnedBytes;
    private long _retiredUnpooledRentedBytes;
    private long _retiredUnpooledReturnedBytes;
    private long _retiredPoolTypeRentedBytes;
    private long _retiredPoolTypeReturnedBytes;

    private static int AllocateSlot()
    {
        lock (s_slotLock)
        {
            return s_freeSlots.Count > 0 ? s_freeSlots.Pop() : s_nextSlot++;
        }
    }

    private PoolThreadState GetThreadState()
    {
        PoolThreadState?[]? states = t_states;
        if (states is not null && (uint)_slot < (uint)states.Length && states[_slot] is { } state && state.PoolId == _poolId)
        {
            return state;
        }

        return CreateThreadState();
    }

    private PoolThreadState CreateThreadState()
    {
        var state = new PoolThreadState(_poolId, _classes);
        PoolThreadState?[]? states = t_states;
        if (states is null || states.Length <= _slot)
        {
            Array.Resize(ref states, Math.Max(_slot + 1, (states?.Length ?? 4) * 2));
            t_states = states;
        }

        states[_slot] = state;
        lock (_registryLock)
        {
            if (_states.Length >= _pruneAt)
            {
                PruneDeadThreads();
                _pruneAt = Math.Max(16, _states.Length * 2);
            }

            // Copy-on-write, so a snapshot taken under the lock stays valid after it is released: WaitForRentsInFlight
            // spins on one outside the lock. Sums take the lock, to see the retired totals and the states agree.
            PoolThreadState[] grown = new PoolThreadState[_states.Length + 1];
            _states.CopyTo(grown, 0);
            grown[^1] = state;
            Volatile.Write(ref _states, grown);
        }

        return state;
    }

    /// <summary>Folds the counters of threads that have exited into the retired totals and gives their cached blocks back. Called under <c>_registryLock</c>.</summary>
    private void PruneDeadThreads()
    {
        var alive = new List<PoolThreadState>(_states.Length);
        foreach (PoolThreadState state in _states)
        {
            if (state.Thread.IsAlive)
            {
                alive.Add(state);
                continue;
            }

            // The thread is gone, so nothing writes these any more.
            _retiredRents += state.Rents;
            _retiredReturns += state.Returns;
            _retiredRentedBytes += state.RentedBytes;
            _retiredReturnedBytes += state.ReturnedBytes;
            _retiredUnpooledRentedBytes += state.UnpooledRentedBytes;
            _retiredUnpooledReturnedBytes += state.UnpooledReturnedBytes;
            _retiredPoolTypeRentedBytes += state.PoolTypeRentedBytes;
            _retiredPoolTypeReturnedBytes += state.PoolTypeReturnedBytes;
            Interlocked.Add(ref _flushedInUseBytes, state.PendingBytes);

            // Once the slabs are released, cached blocks point into freed memory (or a kept slab): drop them.
            if (!_slabsReleased)
            {
                state.DrainTo(_classes);
            }
        }

        Volatile.Write(ref _states, alive.ToArray());
    }

    private Totals Sum()
    {
        Totals totals;
        lock (_registryLock)
        {
            totals = new Totals(
                _retiredRents,
                _retiredReturns,
                _retiredRentedBytes,
                _retiredReturnedBytes,
                _retiredUnpooledRentedBytes,
                _retiredUnpooledReturnedBytes,
                _retiredPoolTypeRentedBytes,
                _retiredPoolTypeReturnedBytes);
            foreach (PoolThreadState state in _states)
            {
                totals.Rents += Volatile.Read(ref state.Rents);
                totals.Returns += Volatile.Read(ref state.Returns);
                totals.RentedBytes += Volatile.Read(ref state.RentedBytes);
                totals.ReturnedBytes += Volatile.Read(ref state.ReturnedBytes);
                totals.UnpooledRentedBytes += Volatile.Read(ref state.UnpooledRentedBytes);
                totals.UnpooledReturnedBytes += Volatile.Read(ref state.UnpooledReturnedBytes);
                totals.PoolTypeRentedBytes += Volatile.Read(ref state.PoolTypeRentedBytes);
                totals.PoolTypeReturnedBytes += Volatile.Read(ref state.PoolTypeReturnedBytes);
            }
        }

        return totals;
    }

    /// <summary>Called after <c>_disposed</c> is set and the process-wide barrier ran: waits out rents in flight.</summary>
    private void WaitForRentsInFlight()
    {
        PoolThreadState[] states;
        lock (_registryLock)
        {
            // Under the lock: a thread registering after this snapshot registers after Dispose's barrier, so its
            // first rent sees _disposed.
            states = _states;
        }

        foreach (PoolThreadState state in states)
        {
            SpinWait spinner = default;
            while (Volatile.Read(ref state.Active) != 0)
            {
                spinner.SpinOnce();
            }
        }
    }

    /// <summary>Frees the slabs once every lease is back. Safe to call from any number of threads, any number of times.</summary>
    private void ReleaseSlabsIfDrained()
    {
        lock (_registryLock)
        {
            if (_slabsReleased)
            {
                return;
            }

            // Each caller published its own return (or leak) before taking the lock, so the last one in sees them
            // all. Leaked blocks never come back on their own: their slabs are kept (SizeClass.Release).
            if (!IsSettled(Sum()))
            {
                return;
            }

            _slabsReleased = true;
            foreach (SizeClass blocks in _classes)
            {
                blocks.Release(_budget);
            }
        }

        lock (s_slotLock)
        {
            s_freeSlots.Push(_slot);
        }
    }

    /// <summary>
    /// When a rent would fall back for capacity: takes back the blocks of <paramref name="sizeClass"/>'s size that
    /// other threads park, if a racy look says there are any.
    /// </summary>
    /// <returns>True if any block was taken back.</returns>
    private bool TakeBackCachedBlocks(int sizeClass)
    {
        bool anyParked = false;
        foreach (PoolThreadState other in Volatile.Read(ref _states))
        {
            // A racy read of another thread's count: a stale answer costs one missed or one useless pass.
            if (other.BlockCounts[sizeClass] > 0)
            {
                anyParked = true;
                break;
            }
        }

        // At most one pass at a time and one per clock tick: when the pool is full and busy, caches refill at
        // once, and a pass per fallback would put a process-wide barrier and the registry lock on every rent.
        long now = Environment.TickCount64;
        if (!anyParked || now == Volatile.Read(ref _lastTakeBackTick) || !_registryLock.TryEnter())
        {
            return false;
        }

        try
        {
            Volatile.Write(ref _lastTakeBackTick, now);
            return !_slabsReleased && TakeBackCachedBlocksUnsynchronized(idleOnly: false) > 0;
        }
        finally
        {
            _registryLock.Exit();
        }
    }

    /// <summary>Moves cached blocks of exited threads, and of live threads not inside a rent or return, to the shared lists. Called under <c>_registryLock</c>, before the slabs are released.</summary>
    /// <param name="idleOnly">True for a trim pass: only threads that neither rented nor returned since the previous pass give their blocks back.</param>
    /// <returns>The bytes taken back.</returns>
    private long TakeBackCachedBlocksUnsynchronized(bool idleOnly)
    {
        Debug.Assert(_registryLock.IsHeldByCurrentThread, "the caller holds the registry lock");
        Debug.Assert(!_slabsReleased, "cached blocks are taken back only while the slabs exist");
        long taken = 0;
        List<PoolThreadState>? asked = null;
        foreach (PoolThreadState state in _states)
        {
            if (!state.Thread.IsAlive)
            {
                // No owner is left to race with.
                taken += state.CachedBytes;
                state.DrainTo(_classes);
                continue;
            }

            long operations = Volatile.Read(ref state.Rents) + Volatile.Read(ref state.Returns);
            bool idle = operations == state.OperationsAtLastTrim;
            if (idleOnly)
            {
                state.OperationsAtLastTrim = operations;
            }

            if ((idleOnly && !idle) || Volatile.Read(ref state.CachedBytes) == 0)
            {
                continue;
            }

            Volatile.Write(ref state.Stealing, 1);
            (asked ??= []).Add(state);
        }

        if (asked is null)
        {
            return taken;
        }

        // The rare side of the handshake: after this barrier, an owner that had not yet announced itself will see
        // Stealing, and one that had is seen Active here and left alone.
        Interlocked.MemoryBarrierProcessWide();
        foreach (PoolThreadState state in asked)
        {
            if (Volatile.Read(ref state.Active) == 0)
            {
                taken += state.CachedBytes;
                state.DrainTo(_classes);
            }

            // Release: the drained cache is visible to the owner before it may touch the cache again.
            Volatile.Write(ref state.Stealing, 0);
        }

        return taken;
    }

    /// <summary>Gets a value indicating whether nothing more can come back: every lease is returned, or found leaked and kept.</summary>
    private bool IsSettled(Totals totals) => totals.Rents - totals.Returns <= Volatile.Read(ref _leakedOutstanding);

    private record struct Totals(
        long Rents,
        long Returns,
        long RentedBytes,
        long ReturnedBytes,
        long UnpooledRentedBytes,
        long UnpooledReturnedBytes,
        long PoolTypeRentedBytes,
        long PoolTypeReturnedBytes)
    {
        public readonly long PoolTypeInUseBytes => Math.Max(0, PoolTypeRentedBytes - PoolTypeReturnedBytes);

        public readonly long Outstanding => Math.Max(0, Rents - Returns);

        public readonly long InUseBytes => Math.Max(0, RentedBytes - ReturnedBytes);

        public readonly long UnpooledInUseBytes => Math.Max(0, UnpooledRentedBytes - UnpooledReturnedBytes);
    }
}
