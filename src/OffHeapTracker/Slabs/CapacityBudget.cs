namespace OffHeapTracker.Slabs;

/// <summary>The pool-wide bound on slab bytes, shared by all size classes.</summary>
internal sealed class CapacityBudget(long capacityBytes)
{
    private long _reservedBytes;

    public long CapacityBytes { get; } = capacityBytes;

    public long ReservedBytes => Volatile.Read(ref _reservedBytes);

    /// <summary>Reserves <paramref name="bytes"/> if that keeps the total within the capacity.</summary>
    public bool TryReserve(long bytes)
    {
        long current = Volatile.Read(ref _reservedBytes);
        while (true)
        {
            if (bytes > CapacityBytes - current)
            {
                return false;
            }

            long seen = Interlocked.CompareExchange(ref _reservedBytes, current + bytes, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _reservedBytes, -bytes);
}
