using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring;

/// <summary>Queries over a large table: the oldest rows without sorting the table, leak sites without copying it.</summary>
public sealed partial class ResidentBufferMonitorTests
{
    [Fact]
    public void GetOldestResident_ReturnsTheOldestRows_OldestFirst_AfterFiltering()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer>();
        for (int i = 0; i < 20; i++)
        {
            leases.Add(pool.Rent(64, i % 3 == 0 ? BufferType.Pool : BufferType.Normal));
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }

        IReadOnlyList<ResidentBuffer> all = monitor.GetResident(TimeSpan.Zero);
        Assert.Equal(leases.Select(l => l.Id), all.Select(r => r.Id));
        Assert.Equal(all.Take(5), monitor.GetOldestResident(5, TimeSpan.Zero));
        Assert.Equal(all, monitor.GetOldestResident(1_000, TimeSpan.Zero));
        Assert.Equal(monitor.GetResident(null, BufferType.Normal).Take(3), monitor.GetOldestResident(3, null, BufferType.Normal));
        Assert.Equal(monitor.GetResident(TimeSpan.FromSeconds(1.5)), monitor.GetOldestResident(100, TimeSpan.FromSeconds(1.5)));
        Assert.Equal(6, monitor.GetOldestResident(100, TimeSpan.FromSeconds(1.5)).Count);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void GetOldestResident_BreaksTiesInAgeById()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.StackTraceDepth = 0);
        for (long id = 50; id > 0; id--)
        {
            Record(monitor, id);
        }

        Assert.Equal([1L, 2L, 3L], monitor.GetOldestResident(3, TimeSpan.Zero).Select(r => r.Id));
    }

    [Fact]
    public void GetOldestResident_RejectsBadArguments()
    {
        var monitor = new ResidentBufferMonitor();
        Assert.Equal("limit", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.GetOldestResident(0)).ParamName);
        Assert.Equal("minAge", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.GetOldestResident(5, TimeSpan.FromSeconds(-1))).ParamName);
        Assert.Equal("type", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.GetOldestResident(5, null, (BufferType)9)).ParamName);
    }

    [Fact]
    public void GetOldestResident_AllocatesForTheRowsItReturns_NotForTheWholeTable()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.StackTraceDepth = 0);
        Fill(monitor, 100_000);
        _ = monitor.GetOldestResident(10, TimeSpan.Zero);

        long before = GC.GetAllocatedBytesForCurrentThread();
        IReadOnlyList<ResidentBuffer> rows = monitor.GetOldestResident(10, TimeSpan.Zero);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), rows.Select(r => r.Id));

        // Copying and sorting the table, then building every row, costs about 20 MB here; ten rows and a
        // ten-entry heap cost a few KB. The bound sits far from both.
        Assert.True(allocated < 256 * 1024, $"{allocated:N0} bytes allocated to return 10 of 100,000 rows");
    }

    [Fact]
    public void GetLeakSites_AllocatesPerSite_NotPerRecord()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        for (long id = 1; id <= 100_000; id++)
        {
            // One record in seven carries a stack, as a pool sampling 1 in 7 would pass them: the rest form the no-stack site.
            bool sampled = id % 7 == 0;
            if (id % 2 == 0)
            {
                RecordFromSiteA(monitor, id, sampled);
            }
            else
            {
                RecordFromSiteB(monitor, id, sampled);
            }
        }

        _time.Advance(TimeSpan.FromSeconds(2));
        _ = monitor.GetLeakSites();

        long before = GC.GetAllocatedBytesForCurrentThread();
        IReadOnlyList<LeakSite> sites = monitor.GetLeakSites();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(3, sites.Count);
        Assert.Equal(100_000, sites.Sum(s => s.Count));
        Assert.Equal(100_000 * 64L, sites.Sum(s => s.TotalBytes));
        Assert.Contains(sites, s => s.StackTrace.Contains("ResidentBufferMonitorTests.RecordFromSiteA", StringComparison.Ordinal));
        Assert.Contains(sites, s => s.StackTrace.Contains("ResidentBufferMonitorTests.RecordFromSiteB", StringComparison.Ordinal));

        // The unsampled records are shared out between the two sampled sites, half each; none is left unexplained.
        Assert.Equal(LeakSite.NoStack, sites[2].StackTrace);
        Assert.Equal(0, sites[2].EstimatedCount);
        Assert.All(sites.Take(2), s => Assert.InRange(s.EstimatedCount, 49_000, 51_000));
        Assert.All(sites, s => Assert.True(s.IsEstimate));

        // One row per record costs about 15 MB here; a few sites cost a few KB.
        Assert.True(allocated < 256 * 1024, $"{allocated:N0} bytes allocated to group 100,000 records into 3 sites");
    }

    private void Fill(ResidentBufferMonitor monitor, int count)
    {
        for (long id = 1; id <= count; id++)
        {
            Record(monitor, id);
            if (id % 1000 == 0)
            {
                _time.Advance(TimeSpan.FromMilliseconds(1));
            }
        }
    }

    // Called directly, as a pool's tracker would: the stack comes from the monitor's own capture policy.
    private static void Record(ResidentBufferMonitor monitor, long id, bool withStack = true) =>
        Assert.True(((IBufferMonitor)monitor).OnAllocated(new BufferAllocation(id, (nint)(0x10000 + (id * 64)), 64, 64, BufferType.Normal, "fill", IsPooled: true)
        {
            Stack = withStack ? monitor.StackCapture?.Capture() : null,
        }));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordFromSiteA(ResidentBufferMonitor monitor, long id, bool withStack) => Record(monitor, id, withStack);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RecordFromSiteB(ResidentBufferMonitor monitor, long id, bool withStack) => Record(monitor, id, withStack);
}
