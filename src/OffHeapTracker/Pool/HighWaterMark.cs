namespace OffHeapTracker;

/// <summary>The highest in-use byte count a pool has reached, kept without a shared write per rent.</summary>
/// <remarks>
/// Each thread accumulates its rented-minus-returned bytes in <see cref="PoolThreadState.PendingBytes"/> and
/// folds them into the shared total only when they move by <see cref="FlushBytes"/>; each fold raises the mark
/// if the total passed it. So the mark trails the true peak by at most <see cref="FlushBytes"/> per thread.
/// </remarks>
internal sealed class HighWaterMark
{
    /// <summary>A thread folds its pending bytes into the total each time they move by this much (64 KiB): one atomic per 16 rents of 4 KiB.</summary>
    public const long FlushBytes = 64 * 1024;

    private long _flushedInUseBytes;
    private long _highWaterBytes;

    public long Value => Volatile.Read(ref _highWaterBytes);

    /// <summary>Folds a thread's pending bytes into the total; called by the owning thread, or for a thread that has exited.</summary>
    public void Flush(PoolThreadState state)
    {
        long inUse = Interlocked.Add(ref _flushedInUseBytes, state.PendingBytes);
        state.PendingBytes = 0;
        if (inUse > Volatile.Read(ref _highWaterBytes))
        {
            Raise(inUse);
        }
    }

    /// <summary>Raises the mark to <paramref name="inUse"/> if that is higher.</summary>
    public void Raise(long inUse)
    {
        long seen = Volatile.Read(ref _highWaterBytes);
        while (inUse > seen)
        {
            long previous = Interlocked.CompareExchange(ref _highWaterBytes, inUse, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }
}
