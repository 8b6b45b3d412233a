namespace OffHeapTracker;

/// <summary>Hands out process-unique lease ids without a shared write per rent.</summary>
/// <remarks>
/// Each thread takes a block of ids from the global counter and uses it up alone (the block lives in its
/// <see cref="ThreadRoot"/>), so renting touches a shared cache line once per <see cref="BlockSize"/> leases.
/// Ids are unique but only increase within one thread; age order comes from allocation timestamps, never from ids.
/// </remarks>
internal static class LeaseIds
{
    public const int BlockSize = 256;

    private static long s_lastReserved;

    public static long Next(ThreadRoot thread)
    {
        long next = thread.NextLeaseId;
        if (next == thread.LeaseIdEnd)
        {
            long end = Interlocked.Add(ref s_lastReserved, BlockSize);
            next = end - BlockSize;
            thread.LeaseIdEnd = end;
        }

        next++;
        thread.NextLeaseId = next;
        return next;
    }
}
