namespace OffHeapTracker;

/// <summary>Hands out process-unique lease ids without a shared write per rent.</summary>
/// <remarks>
/// Each thread takes a block of ids from the global counter and uses it up alone, so renting touches a shared
/// cache line once per <see cref="BlockSize"/> leases. Ids are unique but only increase within one thread;
/// age order comes from allocation timestamps, never from ids.
/// </remarks>
internal static class LeaseIds
{
    private const int BlockSize = 256;

    private static long s_lastReserved;

    [ThreadStatic]
    private static long t_next;

    [ThreadStatic]
    private static long t_end;

    public static long Next()
    {
        long next = t_next;
        if (next == t_end)
        {
            long end = Interlocked.Add(ref s_lastReserved, BlockSize);
            next = end - BlockSize;
            t_end = end;
        }

        next++;
        t_next = next;
        return next;
    }
}
