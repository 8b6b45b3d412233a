using System.Collections.Concurrent;

namespace OffHeapTracker.Monitoring;

/// <summary>One generation of the resident table: lease id to record, with its own count.</summary>
/// <remarks>
/// The monitor swaps in a fresh table on every <c>Enable</c> and <c>Disable</c> instead of clearing one in
/// place, so clearing is O(1) and a record added by a rent that raced with the switch lands in a table no one
/// reads any more. <see cref="ConcurrentDictionary{TKey, TValue}.Count"/> takes every lock, hence our own count.
/// </remarks>
internal sealed class ResidentTable
{
    private int _count;

    public ConcurrentDictionary<long, ResidentRecord> Records { get; } = new();

    public int Count => Volatile.Read(ref _count);

    public bool TryAdd(long id, in ResidentRecord record, int maxRecords)
    {
        if (Interlocked.Increment(ref _count) > maxRecords)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        if (!Records.TryAdd(id, record))
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        return true;
    }

    public bool TryRemove(long id)
    {
        if (Records.TryRemove(id, out _))
        {
            Interlocked.Decrement(ref _count);
            return true;
        }

        return false;
    }
}
