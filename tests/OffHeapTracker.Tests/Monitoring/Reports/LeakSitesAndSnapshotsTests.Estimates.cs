using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Reports;

/// <summary>Leak sites when only some records carry a stack: the table's exact total, shared out by the sampled records' weights.</summary>
public sealed partial class LeakSitesAndSnapshotsTests
{
    [Fact]
    public void SampledRecords_ShareTheExactTotalBetweenSites_ByTheirWeights()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        long id = 0;

        // A small leak: 200 buffers of 4 KiB, 4 of them sampled one in 50. A big flat site: 1,000 of 512 B, 10 sampled one in 100.
        for (int i = 0; i < 200; i++)
        {
            RecordAtSmallLeak(monitor, ++id, 4096, sampledWeight: i % 50 == 0 ? 50 : 0);
        }

        for (int i = 0; i < 1000; i++)
        {
            RecordAtBigFlatSite(monitor, ++id, 512, sampledWeight: i % 100 == 0 ? 100 : 0);
        }

        _time.Advance(TimeSpan.FromSeconds(2));
        IReadOnlyList<LeakSite> sites = monitor.GetLeakSites();

        LeakSite leak = sites[0];
        Assert.Contains("\nOffHeapTracker.Tests.Monitoring.Reports.LeakSitesAndSnapshotsTests.RecordAtSmallLeak", leak.StackTrace, StringComparison.Ordinal);
        Assert.Equal(4, leak.Count);
        Assert.Equal(200, leak.EstimatedCount);
        Assert.Equal(200 * 4096L, leak.EstimatedBytes);
        Assert.True(leak.IsEstimate);

        LeakSite flat = sites[1];
        Assert.Contains("\nOffHeapTracker.Tests.Monitoring.Reports.LeakSitesAndSnapshotsTests.RecordAtBigFlatSite", flat.StackTrace, StringComparison.Ordinal);
        Assert.Equal(1000, flat.EstimatedCount);

        // The 1,186 unsampled records are all accounted for by the two sites.
        LeakSite rest = sites[2];
        Assert.Equal(LeakSite.NoStack, rest.StackTrace);
        Assert.Equal(1186, rest.Count);
        Assert.Equal(0, rest.EstimatedCount);
    }

    [Fact]
    public void EveryRecordWithAStack_EstimatesAreTheCounts_AndNotMarkedAsEstimates()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        for (long id = 1; id <= 30; id++)
        {
            RecordAtSmallLeak(monitor, id, 4096, sampledWeight: 1);
        }

        _time.Advance(TimeSpan.FromSeconds(2));
        LeakSite site = Assert.Single(monitor.GetLeakSites());

        Assert.Equal(30, site.EstimatedCount);
        Assert.Equal(30 * 4096L, site.EstimatedBytes);
        Assert.False(site.IsEstimate);
    }

    [Fact]
    public void EveryMatchingRecordSampled_EstimatesAreExactWhateverTheWeights()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        RecordAtSmallLeak(monitor, 1, 4096, sampledWeight: 500);

        _time.Advance(TimeSpan.FromSeconds(2));
        LeakSite site = Assert.Single(monitor.GetLeakSites());

        // The one buffer left is this one: the other 499 it stood for came back.
        Assert.Equal(1, site.EstimatedCount);
        Assert.Equal(4096, site.EstimatedBytes);
        Assert.False(site.IsEstimate);
    }

    [Fact]
    public void NothingSampled_TheNoStackSiteKeepsItsCount()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.Stacks = StackPolicy.None);
        using var pool = Pools.Create(monitor);
        var leases = Enumerable.Range(0, 5).Select(_ => pool.Rent(4096)).ToList();

        _time.Advance(TimeSpan.FromSeconds(2));
        LeakSite site = Assert.Single(monitor.GetLeakSites());

        Assert.Equal(LeakSite.NoStack, site.StackTrace);
        Assert.Equal(5, site.EstimatedCount);
        Assert.False(site.IsEstimate);
        Assert.Null(monitor.StackCapture);
        leases.ForEach(l => l.Dispose());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordAtSmallLeak(ResidentBufferMonitor monitor, long id, int size, int sampledWeight) => RecordWithWeight(monitor, id, size, sampledWeight);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordAtBigFlatSite(ResidentBufferMonitor monitor, long id, int size, int sampledWeight) => RecordWithWeight(monitor, id, size, sampledWeight);

    // As a pool's tracker passes them: a stack and its weight for a sampled buffer, neither for the others.
    private static void RecordWithWeight(ResidentBufferMonitor monitor, long id, int size, int sampledWeight) =>
        Assert.True(((IBufferMonitor)monitor).OnAllocated(new BufferAllocation(id, (nint)(0x10000 + (id * 8192)), size, size, BufferType.Normal, "test", IsPooled: true)
        {
            Stack = sampledWeight > 0 ? monitor.StackCapture!.Capture() : null,
            StackWeight = sampledWeight,
        }));
}
