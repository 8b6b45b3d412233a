using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

/// <summary>Leases found undisposed by their finalizer, in the census: outstanding while their block is kept out of circulation.</summary>
[Collection(ProcessWideState.Name)] // drops leases for the finalizer
public sealed class BufferCensusLeakTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LeakedBuffers_StayCounted_UnlessThePoolReclaimsThem(bool reclaim)
    {
        var time = new ManualTimeProvider();
        using DirectBufferPool pool = Pools.Create(new ResidentBufferMonitor(), o =>
        {
            o.TimeProvider = time;
            o.TrimAfter = Timeout.InfiniteTimeSpan;
            o.MaxPooledBufferSize = 4096;
            o.ReclaimLeakedBuffers = reclaim;
        });
        DropBuffers(pool);
        Gc.CollectAndFinalize();
        Assert.Equal(2, pool.GetStatistics().LeakedCount);
        time.Advance(TimeSpan.FromHours(2));

        BufferCensus census = pool.TakeCensus();

        long expected = reclaim ? 0 : 2;
        Assert.Equal(expected, census.CountOlderThan(TimeSpan.FromHours(1), BufferType.Normal));
        Assert.Equal(reclaim ? 0 : 4096 + 10_000, census.BytesOlderThan(TimeSpan.FromHours(1), BufferType.Normal));
        Assert.Equal(reclaim ? null : TimeSpan.FromHours(2), census.GetOldestAge(BufferType.Normal));
    }

    // One pooled and one unpooled buffer, dropped undisposed.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropBuffers(DirectBufferPool pool)
    {
        pool.Rent(4096);
        pool.Rent(10_000);
    }
}
