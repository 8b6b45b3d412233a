using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Reports;

/// <summary>Leak sites, snapshots and their exports: grouping, ordering, exact differences, formats that parse.</summary>
public sealed partial class LeakSitesAndSnapshotsTests
{
    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void GetLeakSites_GroupsByStack_AndSortsByBytes()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer>();
        for (int i = 0; i < 10; i++)
        {
            leases.Add(SmallSite(pool));
        }

        _time.Advance(TimeSpan.FromSeconds(1));
        for (int i = 0; i < 3; i++)
        {
            leases.Add(BigSite(pool, i == 0 ? BufferType.Pool : BufferType.Normal));
        }

        _time.Advance(TimeSpan.FromSeconds(1));
        IReadOnlyList<LeakSite> sites = monitor.GetLeakSites();

        Assert.Equal(2, sites.Count);
        LeakSite big = sites[0];
        Assert.StartsWith("OffHeapTracker.Tests.Monitoring.Reports.LeakSitesAndSnapshotsTests.BigSite", big.StackTrace, StringComparison.Ordinal);
        Assert.Equal(3, big.Count);
        Assert.Equal(3 * 65_536, big.TotalBytes);
        Assert.Equal([BufferType.Normal, BufferType.Pool], big.BufferTypes);
        Assert.Equal(1.0, big.OldestAgeSeconds, 6);
        Assert.Equal(leases.Skip(10).Select(l => l.Id), big.SampleIds);

        LeakSite small = sites[1];
        Assert.Equal(10, small.Count);
        Assert.Equal(10 * 512, small.TotalBytes);
        Assert.Equal(2.0, small.OldestAgeSeconds, 6);
        Assert.Equal(5, small.SampleIds.Count);
        Assert.Equal([BufferType.Normal], small.BufferTypes);

        Assert.Single(monitor.GetLeakSites(top: 1));
        Assert.Single(monitor.GetLeakSites(type: BufferType.Pool));
        Assert.Single(monitor.GetLeakSites(minAge: TimeSpan.FromSeconds(1.5)));
        Assert.Equal("top", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.GetLeakSites(top: 0)).ParamName);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void GetLeakSites_PutsBuffersWithoutAStackInOneSite()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.StackTraceDepth = 0);
        using var pool = Pools.Create(monitor);
        using DirectBuffer a = SmallSite(pool);
        using DirectBuffer b = BigSite(pool, BufferType.Normal);
        LeakSite site = Assert.Single(monitor.GetLeakSites(TimeSpan.Zero));
        Assert.Equal(LeakSite.NoStack, site.StackTrace);
        Assert.Equal(2, site.Count);
    }

    [Fact]
    public void SnapshotComparison_ReportsAddedFreedAndStillResidentPerSite()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        DirectBuffer small1 = SmallSite(pool);
        DirectBuffer small2 = SmallSite(pool);
        DirectBuffer big1 = BigSite(pool, BufferType.Normal);
        BufferSnapshot before = monitor.TakeSnapshot();

        small1.Dispose();
        DirectBuffer big2 = BigSite(pool, BufferType.Normal);
        DirectBuffer big3 = BigSite(pool, BufferType.Normal);
        _time.Advance(TimeSpan.FromSeconds(5));
        BufferSnapshot after = monitor.TakeSnapshot();
        SnapshotComparison diff = before.CompareTo(after);

        Assert.Equal(before.TakenAt.AddSeconds(5), diff.After);
        Assert.Equal(2, diff.Sites.Count);
        SiteChange big = diff.Sites[0];
        Assert.Contains("BigSite", big.StackTrace, StringComparison.Ordinal);
        Assert.Equal((2, 2 * 65_536L, 0, 0L, 1, 65_536L), (big.AddedCount, big.AddedBytes, big.FreedCount, big.FreedBytes, big.StillResidentCount, big.StillResidentBytes));
        Assert.Equal(2 * 65_536L, big.NetBytes);

        SiteChange small = diff.Sites[1];
        Assert.Contains("SmallSite", small.StackTrace, StringComparison.Ordinal);
        Assert.Equal((0, 0L, 1, 512L, 1, 512L), (small.AddedCount, small.AddedBytes, small.FreedCount, small.FreedBytes, small.StillResidentCount, small.StillResidentBytes));

        // The JSON carries the same numbers under snake_case names.
        string json = BufferReportFormatter.ToJson(diff);
        Assert.Contains("\"added_bytes\":131072", json, StringComparison.Ordinal);
        Assert.Contains("\"freed_count\":1", json, StringComparison.Ordinal);
        foreach (DirectBuffer lease in new[] { small2, big1, big2, big3 })
        {
            lease.Dispose();
        }
    }

    [Fact]
    public void ResidentJson_UsesDblesColumnNames_AndRoundTrips()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using (BufferMonitor.BeginContext("SELECT * FROM t WHERE \"x\" = 1"))
        {
            using DirectBuffer pooled = pool.Rent(3000, BufferType.Pool);
            using DirectBuffer normal = SmallSite(pool);
            _time.Advance(TimeSpan.FromSeconds(2.5));
            IReadOnlyList<ResidentBuffer> rows = monitor.GetResident();

            string json = BufferReportFormatter.ToJson(rows);
            foreach (string name in new[] { "id", "alive_second", "stacktrace", "buffer_type", "allocate_size", "allocate_time", "context", "actual_size", "pool_name", "thread_id", "address" })
            {
                Assert.Contains($"\"{name}\":", json, StringComparison.Ordinal);
            }

            Assert.Contains("\"buffer_type\":\"POOL\"", json, StringComparison.Ordinal);
            Assert.Contains("\"buffer_type\":\"NORMAL\"", json, StringComparison.Ordinal);
            Assert.Contains("\"alive_second\":2.5", json, StringComparison.Ordinal);
            Assert.Equal(rows, BufferReportFormatter.ParseResidentJson(json));
        }

        Assert.Throws<System.Text.Json.JsonException>(() => BufferReportFormatter.ParseResidentJson("null"));
    }

    [Fact]
    public void LeakSitesJson_UsesSnakeCase()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = SmallSite(pool);
        string json = BufferReportFormatter.ToJson(monitor.GetLeakSites(TimeSpan.Zero));
        Assert.Contains("\"total_bytes\":512", json, StringComparison.Ordinal);
        Assert.Contains("\"buffer_types\":[\"NORMAL\"]", json, StringComparison.Ordinal);
        Assert.Contains($"\"sample_ids\":[{lease.Id}]", json, StringComparison.Ordinal);
    }

    [Fact]
    public void CollapsedStacks_ParseAsFramesSpaceBytes_RootFirst()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer a = SmallSite(pool);
        using DirectBuffer b = BigSite(pool, BufferType.Normal);
        string collapsed = BufferReportFormatter.FormatCollapsed(monitor.GetLeakSites(TimeSpan.Zero));

        string[] lines = collapsed.TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        foreach (string line in lines)
        {
            Match match = CollapsedLine().Match(line);
            Assert.True(match.Success, line);
            string[] frames = match.Groups["frames"].Value.Split(';');
            Assert.True(frames.Length > 1);
            Assert.DoesNotContain(frames, string.IsNullOrWhiteSpace);
        }

        // Root first: the renting helper, the innermost frame, comes last.
        Assert.Matches(@"LeakSitesAndSnapshotsTests\.BigSite\(DirectBufferPool, BufferType\) 65536$", lines[0]);
        Assert.EndsWith("LeakSitesAndSnapshotsTests.SmallSite(DirectBufferPool) 512", lines[1], StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^(?<frames>[^\n]+) (?<bytes>\d+)$")]
    private static partial Regex CollapsedLine();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer SmallSite(DirectBufferPool pool) => pool.Rent(500);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer BigSite(DirectBufferPool pool, BufferType type) => pool.Rent(60_000, type);
}
