using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <content>The age census: every outstanding lease's rent time and type, kept by the pool itself whether or not the monitor is on.</content>
public sealed unsafe partial class DirectBufferPool
{
    // Null: stamp rents with CoarseClock (the system clock, read for free). Otherwise the injected TimeProvider,
    // read on every rent, so tests that advance a manual clock see exact ages.
    private readonly TimeProvider? _censusClock;

    // Unpooled leases are rare and cost a native allocation anyway, so a dictionary add per rent is in proportion;
    // pooled blocks are stamped in their slab instead (see Slab.RentedAt). Keyed by lease id, unique in the process.
    private readonly ConcurrentDictionary<long, FallbackCensusEntry> _fallbackCensus = new();
    private long _fallbackCensusMisses;

    /// <summary>Takes a census of the buffers rented from this pool and not yet returned: their ages, sizes and types.</summary>
    /// <returns>A snapshot the caller owns; it does not change as buffers come and go.</returns>
    /// <remarks>
    /// <para>
    /// Works with the monitor off: the pool stamps every rent with a coarse time (within about 0.1 s; see
    /// <see cref="BufferCensus"/>) and its <see cref="BufferType"/>, so this answers "are there old
    /// <see cref="BufferType.Normal"/> buffers at all?" before any stack was ever captured, including for buffers
    /// rented before the monitor was switched on. Leases found undisposed by their finalizer stay counted: their
    /// blocks are still out of circulation. A pool created with a <see cref="DirectBufferPoolOptions.TimeProvider"/>
    /// other than <see cref="TimeProvider.System"/> stamps rents with that provider's timestamps.
    /// </para>
    /// <para>
    /// Cost: a walk over every block of every slab (O(pool capacity / block size), about 256 blocks per MiB of 4 KiB
    /// blocks), plus the unpooled leases, plus sorting the outstanding ones. No lock is taken and rents and returns
    /// go on meanwhile: every buffer outstanding for the whole walk is counted once, and one rented or returned
    /// during the walk may or may not be (a block returned after it was visited and another rented before it is
    /// visited are both seen). So the counts may be off by the rents and returns that overlap the walk, a
    /// fraction of a millisecond per MiB of slabs; ages and types are as stamped. Thread-safe.
    /// </para>
    /// </remarks>
    public BufferCensus TakeCensus()
    {
        CensusTime time = CensusTimeNow();
        var builder = new BufferCensus.Builder(time);
        VisitOutstanding(ref builder);
        return builder.Build(Name, (_censusClock ?? TimeProvider.System).GetUtcNow());
    }

    /// <summary>Summarizes the <see cref="BufferType.Normal"/> buffers outstanding now, without allocating (the meter's gauges).</summary>
    internal NormalAgeSummary SummarizeNormalAges()
    {
        var summary = new NormalAgeSummary(CensusTimeNow());
        VisitOutstanding(ref summary);
        return summary;
    }

    /// <summary>Gets the number of unpooled leases the census missed because its map could not grow (out of memory).</summary>
    internal long FallbackCensusMisses => Volatile.Read(ref _fallbackCensusMisses);

    private void VisitOutstanding<TVisitor>(ref TVisitor visitor)
        where TVisitor : struct, IRentStampVisitor
    {
        foreach (SizeClass sizeClass in _classes)
        {
            sizeClass.VisitRented(ref visitor);
        }

        // ConcurrentDictionary's enumerator is safe alongside adds and removes (a moment-in-time view per bucket).
        foreach (KeyValuePair<long, FallbackCensusEntry> entry in _fallbackCensus)
        {
            visitor.Visit(entry.Value.Stamp, entry.Value.Bytes);
        }
    }

    private static TimeProvider? ChooseCensusClock(TimeProvider clock) =>
        CoarseClock.CanStandInFor(clock) ? null : clock;

    private CensusTime CensusTimeNow() =>
        _censusClock is null
            ? new CensusTime(Stopwatch.GetTimestamp(), Stopwatch.Frequency)
            : new CensusTime(ReadCensusClock(), _censusClock.TimestampFrequency);

    // The rent fast path: with the system clock, one static load and one branch (see CoarseClock for why not a
    // clock read).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
#if CENSUS_COMPILED_OUT
    private long CensusNow() => 0;
#else
    private long CensusNow() => _censusClock is null ? CoarseClock.Now : ReadCensusClock();
#endif

    [MethodImpl(MethodImplOptions.NoInlining)]
    private long ReadCensusClock()
    {
        try
        {
            return _censusClock!.GetTimestamp();
        }
        catch (Exception)
        {
            // An injected clock that throws misdates the buffer in the census; it must not fail the rent.
            return 0;
        }
    }

    private void AddFallbackToCensus(long leaseId, long rentStamp, int bytes)
    {
        try
        {
            bool added = _fallbackCensus.TryAdd(leaseId, new FallbackCensusEntry(rentStamp, bytes));
            Debug.Assert(added, "lease ids are unique in the process");
        }
        catch (OutOfMemoryException)
        {
            // The rent has succeeded and its lease is counted; failing it now would leak it. The census undercounts.
            Interlocked.Increment(ref _fallbackCensusMisses);
        }
    }

    // Cannot throw: a removal allocates nothing. A lease the census missed is simply not found.
    private void RemoveFallbackFromCensus(long leaseId) => _fallbackCensus.TryRemove(leaseId, out _);

    private readonly record struct FallbackCensusEntry(long Stamp, int Bytes);
}
