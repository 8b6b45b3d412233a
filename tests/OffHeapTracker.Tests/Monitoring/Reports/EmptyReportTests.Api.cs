using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Reports;

// The same reasons, asked for in code: ExplainEmptyReport, and the EmptyReport<T> the queries return.
public sealed partial class EmptyReportTests
{
    [Fact]
    public void MonitorOff_IsTheReason_OnEveryQuery()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = _time });

        EmptyReportReason reason = Assert.IsType<EmptyReport<LeakSite>>(monitor.GetLeakSites()).Reason;
        Assert.Equal(EmptyReportCause.MonitorDisabled, reason.Cause);
        Assert.Equal(ResidentBufferMonitor.DefaultMinAge, reason.MinAge);
        Assert.Equal(reason, Assert.IsType<EmptyReport<ResidentBuffer>>(monitor.GetResident()).Reason);
        Assert.Equal(reason, Assert.IsType<EmptyReport<ResidentBuffer>>(monitor.GetOldestResident(5)).Reason);
        Assert.Equal(reason, monitor.ExplainEmptyReport());
        Assert.Equal(reason.Message, reason.ToString());
    }

    [Fact]
    public void YoungBuffers_AreCountedWithTheirAges()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using DirectBufferPool pool = Pools.Create(monitor);
        using DirectBuffer oldest = RentAndAdvance(pool, 0.2);
        using DirectBuffer middle = RentAndAdvance(pool, 0.2);
        using DirectBuffer youngest = RentAndAdvance(pool, 0.1);

        EmptyReportReason? reason = monitor.ExplainEmptyReport();

        Assert.NotNull(reason);
        Assert.Equal(EmptyReportCause.AllYoungerThanMinAge, reason.Cause);
        Assert.Equal(3, reason.YoungerCount);
        Assert.Equal(0.1, reason.YoungestAgeSeconds!.Value, 6);
        Assert.Equal(0.5, reason.OldestAgeSeconds!.Value, 6);
        Assert.Equal(YoungMessage, reason.Message);
        Assert.Equal(reason, Assert.IsType<EmptyReport<LeakSite>>(monitor.GetLeakSites()).Reason);

        // Asked with a smaller minimum age, the report lists them, and there is nothing to explain.
        Assert.Equal(3, monitor.GetLeakSites(TimeSpan.FromSeconds(0.05)).Single().Count);
        Assert.Null(monitor.ExplainEmptyReport(TimeSpan.FromSeconds(0.05)));
        Assert.IsNotType<EmptyReport<LeakSite>>(monitor.GetLeakSites(TimeSpan.FromSeconds(0.05)));
    }

    [Fact]
    public void OneYoungBuffer_IsDescribedAsOne()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using DirectBufferPool pool = Pools.Create(monitor);
        using DirectBuffer lease = RentAndAdvance(pool, 0.2);

        Assert.StartsWith(
            "The one buffer of type NORMAL recorded is younger than the minimum age of 2 s (aged 0.2 s):",
            monitor.ExplainEmptyReport(TimeSpan.FromSeconds(2), BufferType.Normal)!.Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void PoolBuffersNotRecorded_AndNothingOutstanding_AreTheirOwnCauses()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.RecordPool = false);
        using DirectBufferPool pool = Pools.Create(monitor);
        using DirectBuffer connection = pool.Rent(4096, BufferType.Pool);
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(EmptyReportCause.PoolBuffersNotRecorded, monitor.ExplainEmptyReport(type: BufferType.Pool)!.Cause);
        Assert.Equal(EmptyReportCause.NothingOutstanding, monitor.ExplainEmptyReport()!.Cause);
        Assert.Equal(BufferType.Pool, monitor.ExplainEmptyReport(type: BufferType.Pool)!.BufferType);
    }

    [Fact]
    public void ExplainEmptyReport_ChecksItsArguments()
    {
        var monitor = new ResidentBufferMonitor();
        Assert.Equal("minAge", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.ExplainEmptyReport(TimeSpan.FromSeconds(-1))).ParamName);
        Assert.Equal("type", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.ExplainEmptyReport(type: (BufferType)7)).ParamName);
    }

    [Fact]
    public void EmptyReport_HasNoRows_AndItsTextFormatsSayWhy()
    {
        var reason = new EmptyReportReason { Cause = EmptyReportCause.NothingOutstanding, MinAge = TimeSpan.FromSeconds(1), Message = "Nothing is out." };
        var report = new EmptyReport<LeakSite>(reason);

        Assert.Empty(report);
        Assert.Throws<ArgumentOutOfRangeException>(() => report[0]);
        Assert.Equal("Nothing is out.", report.ToString());
        Assert.Equal("No leak sites: Nothing is out.\n", BufferReportFormatter.FormatSites(report));
        Assert.Equal("No leak sites.\n", BufferReportFormatter.FormatSites([]));
        Assert.Equal(string.Empty, BufferReportFormatter.FormatCollapsed([]));
        Assert.Throws<ArgumentNullException>(() => new EmptyReport<LeakSite>(null!));
    }
}
