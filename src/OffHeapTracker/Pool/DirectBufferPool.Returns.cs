using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <content>Where leases come back: a dispose, a late dispose after a leak, a leak found by the finalizer, a double dispose.</content>
public sealed unsafe partial class DirectBufferPool
{
    // Leases found by their finalizer whose blocks are kept out of circulation; they can only come back through
    // a late Dispose, so waits and the slab release count them as settled.
    private long _leakedOutstanding;
    private long _leakedBytes;

    /// <summary>Takes a disposed lease's block back. Called once per lease, by the thread that won its dispose.</summary>
    internal void Return(DirectBuffer lease)
    {
        _tracker.OnReturned(lease);
        ReturnMemory(lease, reuseLeaseObject: lease.IsRecyclable, cacheBlock: true);
    }

    /// <summary>Takes back the block of a lease its finalizer found undisposed, now disposed late by its owner (typically another object's finalizer).</summary>
    internal void ReturnAfterLeak(DirectBuffer lease)
    {
        // Order matters for the slab release: the block is unmarked and the leak uncounted before the return is
        // counted, so Rents - Returns stays above the leaked count until the block is back on its list.
        Interlocked.Add(ref _leakedBytes, -AccountedBytes(lease));
        bool pushBlock = !lease.IsPooled || _classes[lease.SizeClass].UnmarkLeaked(lease.Block, _budget);
        Interlocked.Decrement(ref _leakedOutstanding);

        // The monitor's record went when the finalizer reported the leak. A late dispose usually runs on the
        // finalizer thread: neither the lease object nor the block is cached there.
        ReturnMemory(lease, reuseLeaseObject: false, cacheBlock: false, pushBlock);
    }

    /// <summary>Handles a lease its finalizer found undisposed: the block is kept out of circulation (or, if the pool reclaims leaks, returned) and the leak reported.</summary>
    /// <remarks>
    /// Runs on the finalizer thread and never throws. A span or pointer taken from the lease may still be in use
    /// (it does not keep the lease alive), so by default the block is never reissued: it stays counted as in use,
    /// and in <see cref="DirectBufferPoolStatistics.LeakedBytes"/>.
    /// </remarks>
    internal void OnLeaseFinalized(DirectBuffer lease, bool reclaim)
    {
        if (!reclaim)
        {
            // Mark the slab before counting the leak: a slab release that sees the count then sees the mark.
            if (lease.IsPooled)
            {
                _classes[lease.SizeClass].MarkLeaked(lease.Block);
            }

            Interlocked.Add(ref _leakedBytes, AccountedBytes(lease));
            Interlocked.Increment(ref _leakedOutstanding);
        }

        // Copied first: from here a late Dispose (an owner's hand-off) may return the block, and with it the lease's
        // core, while the leak it undoes is still being reported.
        LeaseCore core = lease.HeldCore!;
        LeaseTracking tracking = core.Tracking;
        int allocateSize = core.AllocateSize;
        lease.PublishLeaked(reclaim);
        try
        {
            _tracker.OnLeaked(lease, core, in tracking, allocateSize, reclaim);
        }
        finally
        {
            if (reclaim)
            {
                // Never back into the lease recycler: this object is being finalized and must not be resurrected.
                // Nor into the finalizer thread's block cache: that thread never rents, so the block would idle there.
                ReturnMemory(lease, reuseLeaseObject: false, cacheBlock: false);
            }
            else
            {
                // The leak settles this lease as far as waits and the slab release are concerned.
                SettleAfterReturnOrLeak();
            }
        }
    }

    /// <summary>Counts and reports a second dispose of a lease; the call was ignored.</summary>
    internal void OnDoubleDispose(DirectBuffer lease) => _tracker.OnDoubleDispose(lease);

    private void ReturnMemory(DirectBuffer lease, bool reuseLeaseObject, bool cacheBlock, bool pushBlock = true)
    {
        ThreadRoot thread = ThreadRoot.Current;
        PoolThreadState state = _threads.GetState(thread);

        // Store, then load: pairs with the cache take-back's process-wide barrier (see DirectBufferPool.Lifetime.cs).
        Volatile.Write(ref state.Active, 1);
        int length = AccountedBytes(lease);
        if (lease.IsPooled)
        {
            // Unstamp while the block is still ours: once cached or pushed, another renter may stamp it. Also on a
            // late return after the class was released (pushBlock false): stamps are managed, the slab object stays.
            _classes[lease.SizeClass].ClearStamp(lease.Block);

            // This thread's cache first; when it is full, or being taken back, the block goes to the shared list.
            if (pushBlock && (!cacheBlock || Volatile.Read(ref state.Stealing) != 0 || !state.TryKeepBlock(lease.SizeClass, lease.Block)))
            {
                _classes[lease.SizeClass].Push(lease.Block);
            }
        }
        else
        {
            // Safe: this lease alone owned the allocation, and the state exchange in Dispose lets one caller here.
            // An unpooled pinned array needs no free: it goes when the lease does.
            if (!lease.IsArrayBacked)
            {
                _fallback.Free(lease.Pointer);
            }

            state.Counters.Add(PoolCounter.FallbackReturnedBytes, length);
            RemoveFallbackFromCensus(lease.Id);
        }

        if (lease.BufferType == BufferType.Pool)
        {
            state.Counters.Add(PoolCounter.PoolTypeReturnedBytes, length);
        }

        lease.ReleaseArray();
        state.Counters.Add(PoolCounter.ReturnedBytes, length);
        state.Counters.Add(PoolCounter.Returns, 1);
        state.PendingBytes -= length;
        if (state.PendingBytes <= -HighWaterMark.FlushBytes)
        {
            _highWater.Flush(state);
        }

        Volatile.Write(ref state.Active, 0);
        if (reuseLeaseObject)
        {
            // Recycled only where it is safe (see LeaseRecycler.Return); a lease object not kept is left to the GC.
            lease.DetachForReuse(_weakSelf);
            LeaseRecycler.Return(lease, thread);
        }
        else if (!lease.IsReusable)
        {
            // A fresh lease's core goes back for the next one (unless its guard's finalizer ran: see LeaseCores.Return).
            lease.ReleaseCore(_weakSelf, thread);
        }

        // Two field reads on every return; the call only when a disposal or a waiter needs it.
        if (_rentsStopped || Volatile.Read(ref _drained) is not null)
        {
            SettleAfterReturnOrLeak();
        }
    }

    /// <summary>The bytes a lease counts for in the statistics: its whole block when pooled (the lease may be shorter, see <see cref="MaxBufferSize"/>).</summary>
    private static int AccountedBytes(DirectBuffer lease) => lease.IsPooled ? SizeClasses.BlockSizeOf(lease.SizeClass) : lease.Length;
}
