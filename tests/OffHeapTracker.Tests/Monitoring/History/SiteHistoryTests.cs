using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.History;

/// <summary>The monitor's site history: sampled on its clock's timer, bounded, forgotten on Disable, read back as each site's growth.</summary>
public sealed class SiteHistoryTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void GrowingSite_IsFlagged_AndListedAheadOfABiggerFlatSite()
    {
        ResidentBufferMonitor monitor = Monitor();
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer>();

        // A connection's read buffers: big, and flat for the whole run.
        for (int i = 0; i < 16; i++)
        {
            leases.Add(FlatSite(pool));
        }

        // A leak: two more buffers before each sample.
        for (int sample = 0; sample < 5; sample++)
        {
            leases.Add(GrowingSite(pool));
            leases.Add(GrowingSite(pool));
            _time.Advance(Interval);
        }

        IReadOnlyList<LeakSite> sites = monitor.GetLeakSites(TimeSpan.Zero);

        Assert.Equal(2, sites.Count);
        LeakSite growing = sites[0];
        LeakSite flat = sites[1];
        Assert.Contains(nameof(GrowingSite), growing.StackTrace.Split('\n')[0], StringComparison.Ordinal);
        Assert.Contains(nameof(FlatSite), flat.StackTrace.Split('\n')[0], StringComparison.Ordinal);
        Assert.True(flat.EstimatedBytes > 10 * growing.EstimatedBytes, "the flat site must be the bigger one, or the order proves nothing");

        Assert.True(growing.IsSuspect);
        LeakSiteGrowth growth = growing.Growth!;
        Assert.True(growth.OnlyGrows);
        Assert.True(growth.HasVerdict);
        Assert.Equal(5, growth.Points);
        Assert.Equal(2 * 4096, growth.FirstBytes);
        Assert.Equal(10 * 4096, growth.LastBytes);
        Assert.Equal(2, growth.FirstCount);
        Assert.Equal(10, growth.LastCount);
        Assert.Equal(TimeSpan.FromSeconds(40), growth.Span);
        Assert.Equal(8 * 4096 / (40 / 60.0), growth.BytesPerMinute, 6);

        Assert.False(flat.IsSuspect);
        Assert.Equal(5, flat.Growth!.Points);
        Assert.True(flat.Growth.HasVerdict);
        Assert.False(flat.Growth.OnlyGrows);
        Assert.Equal(0, flat.Growth.GrowthBytes);

        // The text report marks the suspect, and only it, with its growth.
        string text = BufferReportFormatter.FormatSites(sites);
        Assert.Contains("  suspect: +32 KiB over 40 s, only growing (+48 KiB/min)\n    at " + growing.StackTrace.Split('\n')[0], text, StringComparison.Ordinal);
        Assert.Single(text.Split('\n'), line => line.StartsWith("  suspect:", StringComparison.Ordinal));

        string json = BufferReportFormatter.ToJson(sites);
        Assert.Contains("\"only_grows\":true", json, StringComparison.Ordinal);
        Assert.Contains("\"only_grows\":false", json, StringComparison.Ordinal);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void SiteThatGrewThenFell_IsNotFlagged()
    {
        ResidentBufferMonitor monitor = Monitor();
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer>();
        for (int sample = 0; sample < 3; sample++)
        {
            leases.Add(GrowingSite(pool));
            leases.Add(GrowingSite(pool));
            _time.Advance(Interval);
        }

        Assert.True(Assert.Single(monitor.GetLeakSites(TimeSpan.Zero)).IsSuspect);

        // Half of it comes back, then it grows again, ending well above where it began: a fall is not a leak's shape.
        leases[^1].Dispose();
        leases[^2].Dispose();
        leases[^3].Dispose();
        leases.RemoveRange(leases.Count - 3, 3);
        _time.Advance(Interval);
        for (int sample = 0; sample < 2; sample++)
        {
            leases.Add(GrowingSite(pool));
            leases.Add(GrowingSite(pool));
            _time.Advance(Interval);
        }

        LeakSite site = Assert.Single(monitor.GetLeakSites(TimeSpan.Zero));
        Assert.Equal(6, site.Growth!.Points);
        Assert.True(site.Growth.LastBytes >= site.Growth.FirstBytes * 1.1);
        Assert.False(site.Growth.OnlyGrows);
        Assert.False(site.IsSuspect);
        Assert.DoesNotContain("suspect:", BufferReportFormatter.FormatSites([site]), StringComparison.Ordinal);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void SiteWithFewerThanThreePoints_HasNoVerdict()
    {
        ResidentBufferMonitor monitor = Monitor();
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer> { GrowingSite(pool) };
        _time.Advance(Interval);
        leases.Add(GrowingSite(pool));
        leases.Add(GrowingSite(pool));
        _time.Advance(Interval);
        leases.Add(FlatSite(pool));

        IReadOnlyList<LeakSite> sites = monitor.GetLeakSites(TimeSpan.Zero);

        LeakSite growing = Assert.Single(sites, s => s.StackTrace.Contains(nameof(GrowingSite), StringComparison.Ordinal));
        Assert.Equal(2, growing.Growth!.Points);
        Assert.False(growing.Growth.HasVerdict);
        Assert.False(growing.Growth.OnlyGrows);
        Assert.False(growing.IsSuspect);

        // Rented after the last sample: no point yet, so no growth at all, and the order is by bytes.
        Assert.Null(sites[0].Growth);
        Assert.Contains(nameof(FlatSite), sites[0].StackTrace, StringComparison.Ordinal);
        Assert.DoesNotContain("\"growth\"", BufferReportFormatter.ToJson([sites[0]]), StringComparison.Ordinal);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void History_IsBounded_WhateverTheNumberOfSitesAndSamples()
    {
        ResidentBufferMonitor monitor = Monitor(o =>
        {
            o.SiteHistoryLength = TimeSpan.FromMinutes(1);
            o.SiteHistoryTopSites = 4;
            o.StackTraceDepth = 64;
        });
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer>();
        for (int sample = 0; sample < 50; sample++)
        {
            // A new distinct site every sample (a deeper recursion is a different stack), each bigger than the last.
            for (int i = 0; i <= sample; i++)
            {
                leases.Add(Nested(pool, sample + 1));
            }

            _time.Advance(Interval);
            Assert.True(monitor.SampleSites());
        }

        Assert.Equal(50, monitor.GetLeakSites(TimeSpan.Zero, top: 10_000).Count);
        SiteHistory history = monitor.CurrentSiteHistory!;
        Assert.Equal(7, history.Capacity);
        Assert.Equal(7, history.SampleCount);
        Assert.Equal(7 * 4, history.ReadingCount);

        // Growth is read from the last minute only, and only the sites sampled in it carry it.
        IReadOnlyList<LeakSite> sampled = [.. monitor.GetLeakSites(TimeSpan.Zero, top: 10_000).Where(s => s.Growth is not null)];
        Assert.InRange(sampled.Count, 4, 8);
        Assert.All(sampled, s => Assert.InRange(s.Growth!.Points, 1, 7));
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void DisableThenEnable_ForgetsTheHistory()
    {
        ResidentBufferMonitor monitor = Monitor();
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer>();
        for (int sample = 0; sample < 4; sample++)
        {
            leases.Add(GrowingSite(pool));
            _time.Advance(Interval);
        }

        Assert.True(Assert.Single(monitor.GetLeakSites(TimeSpan.Zero)).IsSuspect);
        SiteHistoryTimer before = monitor.CurrentSiteHistory!.Timer!;

        monitor.Disable();
        Assert.Null(monitor.CurrentSiteHistory);
        Assert.False(monitor.SampleSites());
        monitor.Enable();
        leases.Add(GrowingSite(pool));
        leases.Add(GrowingSite(pool));

        // A tick of the old session's timer that was already running when it stopped adds nothing to the new history.
        monitor.OnSiteHistoryTick(before);
        Assert.Equal(0, monitor.CurrentSiteHistory!.SampleCount);

        _time.Advance(Interval);
        LeakSite site = Assert.Single(monitor.GetLeakSites(TimeSpan.Zero));
        Assert.Equal(1, site.Growth!.Points);
        Assert.Equal(2 * 4096, site.Growth.FirstBytes);
        Assert.False(site.IsSuspect);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void Timer_RunsOnlyWhileEnabled_AndStopsAfterDisable()
    {
        var clock = new CountingTimeProvider(_time);
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = clock });
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, clock.LiveTimers);

        monitor.Enable();
        Assert.Equal(1, clock.LiveTimers);
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(3, clock.Ticks);
        Assert.Equal(3, monitor.CurrentSiteHistory!.SampleCount);

        monitor.Disable();
        Assert.Equal(0, clock.LiveTimers);
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(3, clock.Ticks);

        monitor.Enable();
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(4, clock.Ticks);
        Assert.Equal(1, monitor.CurrentSiteHistory!.SampleCount);
        monitor.Disable();
    }

    [Fact]
    public void NoHistory_WhenTopSitesIsZero()
    {
        var clock = new CountingTimeProvider(_time);
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o =>
        {
            o.TimeProvider = clock;
            o.SiteHistoryTopSites = 0;

            // Would be refused with a history; without one it is not checked.
            o.SiteHistoryInterval = TimeSpan.FromHours(1);
        });
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = GrowingSite(pool);

        Assert.Equal(0, clock.LiveTimers);
        Assert.False(monitor.SampleSites());
        Assert.Null(Assert.Single(monitor.GetLeakSites(TimeSpan.Zero)).Growth);
    }

    [Fact]
    public void FailingSample_IsCountedAndLoggedOnce_NeverThrownIntoTheTimer()
    {
        var clock = new CountingTimeProvider(_time);
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o =>
        {
            o.TimeProvider = clock;
            o.LoggerFactory = logs;
        });

        clock.ThrowOnTimestamp = true;
        clock.Advance(Interval * 2);
        clock.ThrowOnTimestamp = false;

        Assert.Equal(2, clock.Ticks);
        Assert.Equal(2, monitor.SiteHistoryFailures);
        LogEntry entry = Assert.Single(logs.WithEvent("SiteHistoryFailed"));
        Assert.Equal(16, entry.EventId.Id);
        Assert.IsType<InvalidOperationException>(entry.Exception);
        Assert.Equal(0, monitor.CurrentSiteHistory!.SampleCount);

        clock.Advance(Interval);
        Assert.Equal(1, monitor.CurrentSiteHistory!.SampleCount);
        Assert.Equal(2, monitor.SiteHistoryFailures);
    }

    [Fact]
    public void Options_HaveTheDocumentedDefaults()
    {
        var options = new ResidentBufferMonitorOptions();
        Assert.Equal(TimeSpan.FromSeconds(10), options.SiteHistoryInterval);
        Assert.Equal(TimeSpan.FromMinutes(10), options.SiteHistoryLength);
        Assert.Equal(64, options.SiteHistoryTopSites);

        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = _time });
        monitor.Enable();
        Assert.Equal(61, monitor.CurrentSiteHistory!.Capacity);
        Assert.Equal(64, monitor.CurrentSiteHistory.TopSites);
        monitor.Disable();
    }

    public static TheoryData<string, Action<ResidentBufferMonitorOptions>, string> OutOfRange => new()
    {
        { "SiteHistoryInterval", o => o.SiteHistoryInterval = TimeSpan.FromMilliseconds(999), "between 00:00:01 and 01:00:00" },
        { "SiteHistoryInterval", o => o.SiteHistoryInterval = TimeSpan.FromHours(2), "between 00:00:01 and 01:00:00" },
        { "SiteHistoryLength", o => o.SiteHistoryLength = TimeSpan.FromSeconds(1), "between 00:00:02 and 7.00:00:00" },
        { "SiteHistoryLength", o => o.SiteHistoryLength = TimeSpan.FromDays(8), "between 00:00:02 and 7.00:00:00" },
        { "SiteHistoryTopSites", o => o.SiteHistoryTopSites = -1, "between 0 and 256" },
        { "SiteHistoryTopSites", o => o.SiteHistoryTopSites = 257, "between 0 and 256" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void Options_RejectValuesOutOfRange(string property, Action<ResidentBufferMonitorOptions> set, string range)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => set(new ResidentBufferMonitorOptions()));
        Assert.Equal(property, e.ParamName);
        Assert.Contains(range, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(60, 60)] // one interval: two points, never a verdict
    [InlineData(1, 3 * 60 * 60)] // 10,801 samples
    public void Monitor_RejectsAHistoryOfTooFewOrTooManySamples(int intervalSeconds, int lengthSeconds)
    {
        var options = new ResidentBufferMonitorOptions
        {
            SiteHistoryInterval = TimeSpan.FromSeconds(intervalSeconds),
            SiteHistoryLength = TimeSpan.FromSeconds(lengthSeconds),
        };

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ResidentBufferMonitor(options));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("SiteHistoryLength", e.Message, StringComparison.Ordinal);
        Assert.Contains("between 3 and 4096 samples", e.Message, StringComparison.Ordinal);
    }

    private ResidentBufferMonitor Monitor(Action<ResidentBufferMonitorOptions>? configure = null) =>
        Pools.EnabledMonitor(_time, o =>
        {
            o.Stacks = StackPolicy.Every;
            o.SiteHistoryInterval = Interval;
            configure?.Invoke(o);
        });

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer GrowingSite(DirectBufferPool pool) => pool.Rent(4096);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer FlatSite(DirectBufferPool pool) => pool.Rent(65_536);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer Nested(DirectBufferPool pool, int depth)
    {
        if (depth == 0)
        {
            return pool.Rent(1024);
        }

        DirectBuffer lease = Nested(pool, depth - 1);

        // Not a tail call: each level stays on the stack, so each depth is a distinct site.
        GC.KeepAlive(pool);
        return lease;
    }
}
