using System.Buffers;
using System.Diagnostics;
using OffHeapTracker.Diagnostics;
using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <content>
/// The pool's lifetime: the dispose handshake with renters and returners, the slab release, waits for leases to
/// come back, and taking cached blocks back from threads (trimming, capacity fallbacks).
/// </content>
/// <remarks>
/// <para>
/// Counters are per thread (see <see cref="ThreadRegistry"/>), so disposal must learn when the last lease comes
/// back without a shared counter. It uses an asymmetric Dekker handshake. A renter stores
/// <see cref="PoolThreadState.Active"/> = 1, then loads <see cref="_disposed"/>; a returner stores its count, then
/// loads <see cref="_rentsStopped"/>. <c>Dispose</c> stores the flag, runs
/// <see cref="Interlocked.MemoryBarrierProcessWide"/>, then reads their stores. The process-wide barrier makes it
/// impossible for both sides to miss each other: either the renter sees the pool disposed and backs out, or
/// <c>Dispose</c> sees it in flight and waits. The second flag and barrier, raised only after the rents in flight
/// are done, do the same for returners: either a returner sees renting stopped and re-checks the counts, or
/// <c>Dispose</c> counts its return. A returner must not release the slabs earlier, because a rent still in
/// flight could then grow a slab after the release. The costly fences live on the rare side only.
/// </para>
/// <para>
/// Taking cached blocks back from live threads uses the same handshake per thread:
/// <see cref="PoolThreadState.Stealing"/> against <see cref="PoolThreadState.Active"/>, which returns set too.
/// </para>
/// </remarks>
public sealed partial class DirectBufferPool
{
    /// <summary>
    /// Guards <see cref="_slabsReleased"/> and everything that must not interleave with the slab release: trim
    /// passes and moving cached blocks from threads' caches to the shared lists. Taken before the thread
    /// registry's lock when both are needed (a sum under it).
    /// </summary>
    private readonly Lock _slabLock = new();
    private readonly ITimer? _trimTimer;
    private bool _slabsReleased;
    private long _lastTakeBackTick;
    private long _trimmedBytes;
    private TaskCompletionSource? _drained;
    private volatile bool _disposed;

    // Set by Dispose once no rent can be in flight; only then may a returner release the slabs.
    private volatile bool _rentsStopped;

    /// <summary>Disposes a pool that became unreachable without <see cref="MemoryPool{T}.Dispose()"/>: its slabs are freed once every lease is back, as on <c>Dispose</c>.</summary>
    ~DirectBufferPool()
    {
        Dispose(disposing: false);
    }

    /// <summary>Throws if any lease is still rented: a test's check that the code under test returned every buffer.</summary>
    /// <exception cref="InvalidOperationException">Leases are outstanding; the message lists them, with stacks and contexts when the monitor recorded them.</exception>
    public void AssertNoOutstanding()
    {
        long outstanding = OutstandingCount;
        if (outstanding > 0)
        {
            throw new InvalidOperationException(_tracker.DescribeOutstanding(outstanding, Volatile.Read(ref _leakedOutstanding)));
        }
    }

    /// <summary>Completes when every lease that can still come back has been returned, for tests and graceful shutdown.</summary>
    /// <remarks>Leases found leaked by their finalizer (see <see cref="DirectBufferPoolStatistics.LeakedBytes"/>) cannot come back and are not waited for.</remarks>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> to wait forever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when <see cref="OutstandingCount"/> reaches zero.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not infinite.</exception>
    /// <exception cref="TimeoutException">The timeout passed with leases still out; the message lists them, as <see cref="AssertNoOutstanding"/> does.</exception>
    public Task WhenAllReturnedAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            Guard.InRange(timeout, TimeSpan.Zero, TimeSpan.MaxValue, nameof(timeout));
        }

        return IsSettled(_threads.Sum()) ? Task.CompletedTask : WaitForDrainAsync(timeout, cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>Called with <paramref name="disposing"/> false by the finalizer of a pool nobody disposed: the same steps, without logging.</remarks>
    protected override void Dispose(bool disposing)
    {
        // A pool whose constructor threw before its registry existed has nothing to release.
        if (_disposed || _threads is null)
        {
            return;
        }

        _disposed = true;
        _trimTimer?.Dispose();
        if (disposing)
        {
            // Both hold the pool weakly; from the finalizer there is nothing to remove.
            OffHeapTrackerMetrics.Unregister(_meter, this);
            PoolRegistry.Remove(this);
        }

        // First barrier: no rent starts from here on, and those in flight finish.
        Interlocked.MemoryBarrierProcessWide();
        WaitForRentsInFlightAfterDisposed();

        // Second barrier: from here the count of rents is final, so a returner that sees _rentsStopped may
        // release; one that returned before this barrier is counted by the sum below.
        _rentsStopped = true;
        Interlocked.MemoryBarrierProcessWide();
        long outstanding = _threads.Sum().Outstanding;
        if (outstanding > 0 && disposing)
        {
            Log.PoolDisposedWithOutstanding(_logger, Name, outstanding);
        }

        ReleaseSlabsIfSettledAfterRentsStopped();
    }

    /// <summary>Gives back slabs that stayed wholly free since the previous pass (one <see cref="DirectBufferPoolOptions.TrimAfter"/> apart).</summary>
    /// <returns>The bytes given back by this pass.</returns>
    /// <remarks>
    /// First takes back the cached blocks of threads that have exited and of threads that neither rented nor
    /// returned since the previous pass, so an idle thread's cache cannot keep a slab alive.
    /// </remarks>
    internal long TrimIdleSlabs()
    {
        long trimmed = 0;
        lock (_slabLock)
        {
            if (_slabsReleased)
            {
                return 0;
            }

            TakeBackCachedBlocksUnsynchronized(idleOnly: true);
            foreach (SizeClass blocks in _classes)
            {
                trimmed += blocks.Trim(_budget);
            }
        }

        Interlocked.Add(ref _trimmedBytes, trimmed);
        return trimmed;
    }

    /// <summary>The trim timer's pass: never throws (a timer callback must not), and does nothing once the pool is disposed.</summary>
    internal void TrimOnTimer()
    {
        try
        {
            if (!_disposed)
            {
                TrimIdleSlabs();
            }
        }
        catch (Exception ex)
        {
            // A failed pass leaves every slab in place and is retried next tick.
            Log.TrimFailed(_logger, ex, Name);
        }
    }

    /// <summary>Called when a rent would fall back for capacity: takes back the blocks of <paramref name="sizeClass"/>'s size that other threads park, if a racy look says there are any.</summary>
    /// <returns>True if any block was taken back.</returns>
    private bool TakeBackCachedBlocks(int sizeClass)
    {
        // At most one pass at a time and one per clock tick: when the pool is full and busy, caches refill at
        // once, and a pass per fallback would put a process-wide barrier and a lock on every rent.
        long now = Environment.TickCount64;
        if (!_threads.AnyParked(sizeClass) || now == Volatile.Read(ref _lastTakeBackTick) || !_slabLock.TryEnter())
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
            _slabLock.Exit();
        }
    }

    /// <summary>Moves cached blocks of exited threads, and of live threads not inside a rent or return, to the shared lists. Called under <see cref="_slabLock"/>, before the slabs are released.</summary>
    /// <param name="idleOnly">True for a trim pass: only threads that neither rented nor returned since the previous pass give their blocks back.</param>
    /// <returns>The bytes taken back.</returns>
    private long TakeBackCachedBlocksUnsynchronized(bool idleOnly)
    {
        Debug.Assert(_slabLock.IsHeldByCurrentThread, "the caller holds the slab lock");
        Debug.Assert(!_slabsReleased, "cached blocks are taken back only while the slabs exist");
        long taken = 0;
        List<PoolThreadState>? asked = null;
        foreach (PoolThreadState state in _threads.States)
        {
            if (!state.Thread.IsAlive)
            {
                // No owner is left to race with.
                taken += state.CachedBytes;
                state.DrainTo(_classes);
                continue;
            }

            long operations = state.Operations;
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

    /// <summary>Gives back the cached blocks of threads that have exited, so the registry can unlist them; called by the registry before it prunes, outside its own lock.</summary>
    /// <remarks>Skipped when another pass holds the slab lock: that pass drains them too (exited threads first).</remarks>
    private void DrainExitedThreads()
    {
        if (!_slabLock.TryEnter())
        {
            return;
        }

        try
        {
            if (_slabsReleased)
            {
                return;
            }

            foreach (PoolThreadState state in _threads.States)
            {
                if (!state.Thread.IsAlive && Volatile.Read(ref state.CachedBytes) != 0)
                {
                    // No owner is left to race with.
                    state.DrainTo(_classes);
                }
            }
        }
        finally
        {
            _slabLock.Exit();
        }
    }

    /// <summary>Waits out rents in flight. Precondition: <see cref="_disposed"/> is set and a process-wide barrier ran since.</summary>
    private void WaitForRentsInFlightAfterDisposed()
    {
        Debug.Assert(_disposed, "rents stop only after the pool is marked disposed");

        // A thread registering after this snapshot registers after Dispose's barrier, so its first rent sees _disposed.
        foreach (PoolThreadState state in _threads.SnapshotStates())
        {
            SpinWait spinner = default;
            while (Volatile.Read(ref state.Active) != 0)
            {
                spinner.SpinOnce();
            }
        }
    }

    /// <summary>After a return or a leak: releases the slabs of a disposed pool and wakes waiters once nothing more can come back.</summary>
    private void SettleAfterReturnOrLeak()
    {
        // Store (the count), then load: pairs with Dispose's second process-wide barrier. The waiter check costs
        // one field read; only a pending WhenAllReturnedAsync makes it sum the counters.
        if (_rentsStopped)
        {
            ReleaseSlabsIfSettledAfterRentsStopped();
        }

        if (Volatile.Read(ref _drained) is not null)
        {
            SignalIfSettled();
        }
    }

    /// <summary>Frees the slabs once nothing more can come back. Precondition: <see cref="_rentsStopped"/> is set, so the count of rents is final. Safe from any number of threads, any number of times.</summary>
    private void ReleaseSlabsIfSettledAfterRentsStopped()
    {
        Debug.Assert(_rentsStopped, "the slabs are released only once no rent can start or be in flight");
        lock (_slabLock)
        {
            if (_slabsReleased)
            {
                return;
            }

            // Each caller published its own return (or leak) before taking the lock, so the last one in sees them
            // all. Leaked blocks never come back on their own: their slabs are kept (SizeClass.Release).
            if (!IsSettled(_threads.Sum()))
            {
                return;
            }

            _slabsReleased = true;
            foreach (SizeClass blocks in _classes)
            {
                blocks.Release(_budget);
            }
        }

        _threads.ReleaseSlot();
    }

    private async Task WaitForDrainAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        TaskCompletionSource drained;
        while (true)
        {
            TaskCompletionSource? current = Volatile.Read(ref _drained);
            if (current is not null)
            {
                drained = current;
                break;
            }

            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (Interlocked.CompareExchange(ref _drained, created, null) is null)
            {
                drained = created;
                break;
            }
        }

        // Publish the signal, then read the counts. A returner stores its count, then reads the signal. The
        // process-wide barrier (the rare side pays) means at least one of us sees the other, so no wake-up is lost.
        Interlocked.MemoryBarrierProcessWide();
        SignalIfSettled();

        try
        {
            await drained.Task.WaitAsync(timeout, _clock, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            PoolCounters totals = _threads.Sum();
            if (IsSettled(totals))
            {
                return;
            }

            string outstanding = _tracker.DescribeOutstanding(totals.Outstanding, Volatile.Read(ref _leakedOutstanding));
            throw new TimeoutException($"Timed out after {timeout} waiting for leases to come back. {outstanding}");
        }
    }

    private void SignalIfSettled()
    {
        if (Volatile.Read(ref _drained) is { } drained && IsSettled(_threads.Sum()))
        {
            Interlocked.CompareExchange(ref _drained, null, drained);
            drained.TrySetResult();
        }
    }

    /// <summary>Gets a value indicating whether nothing more can come back: every lease is returned, or found leaked and kept.</summary>
    private bool IsSettled(PoolCounters totals) => totals.RentsMinusReturns <= Volatile.Read(ref _leakedOutstanding);
}
