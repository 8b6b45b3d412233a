using System.Runtime.CompilerServices;

namespace OffHeapTracker;

/// <summary>The pool's counters, each named once here; adding a statistic is one more member.</summary>
internal enum PoolCounter
{
    Rents,
    Returns,
    RentedBytes,
    ReturnedBytes,

    /// <summary>Bytes rented through fallback allocations (the request was too large for a slab, or the slabs were full).</summary>
    FallbackRentedBytes,
    FallbackReturnedBytes,

    /// <summary>Bytes rented as <see cref="BufferType.Pool"/> (resident by design), pooled or not.</summary>
    PoolTypeRentedBytes,
    PoolTypeReturnedBytes,

    /// <summary>Not a counter: how many there are.</summary>
    Count,
}

/// <summary>One set of <see cref="PoolCounter"/> values: a thread's own, a dead thread's retired totals, or a sum.</summary>
/// <remarks>
/// A thread's set has one writer, its thread, which adds with <see cref="Add"/> (a plain add published by a
/// volatile store, no interlocked operation); readers sum sets with <see cref="AddVolatile"/>. Byte counts are of
/// whole blocks, what the pool holds for a lease.
/// </remarks>
[InlineArray((int)PoolCounter.Count)]
internal struct PoolCounters
{
    private long _first;

    public readonly long RentsMinusReturns => Get(PoolCounter.Rents) - Get(PoolCounter.Returns);

    public readonly long Outstanding => Math.Max(0, RentsMinusReturns);

    public readonly long InUseBytes => Difference(PoolCounter.RentedBytes, PoolCounter.ReturnedBytes);

    public readonly long FallbackInUseBytes => Difference(PoolCounter.FallbackRentedBytes, PoolCounter.FallbackReturnedBytes);

    public readonly long PoolTypeInUseBytes => Difference(PoolCounter.PoolTypeRentedBytes, PoolCounter.PoolTypeReturnedBytes);

    public readonly long Get(PoolCounter counter) => this[(int)counter];

    /// <summary>Adds to one counter of a set only the calling thread writes; the volatile store publishes it to summing readers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(PoolCounter counter, long value)
    {
        ref long slot = ref this[(int)counter];
        Volatile.Write(ref slot, slot + value);
    }

    /// <summary>Adds every counter of <paramref name="other"/>, read with volatile loads (its owner may be writing).</summary>
    public void AddVolatile(ref PoolCounters other)
    {
        for (int i = 0; i < (int)PoolCounter.Count; i++)
        {
            this[i] += Volatile.Read(ref other[i]);
        }
    }

    private readonly long Difference(PoolCounter added, PoolCounter removed) => Math.Max(0, Get(added) - Get(removed));
}
