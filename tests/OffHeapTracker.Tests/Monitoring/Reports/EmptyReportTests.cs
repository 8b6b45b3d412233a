using System.Text.RegularExpressions;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Reports;

/// <summary>An empty report says why: the monitor is off, every buffer is younger than the minimum age, POOL buffers are not recorded, or nothing is out.</summary>
public sealed partial class EmptyReportTests
{
    private const string YoungMessage =
        "All 3 buffers recorded are younger than the minimum age of 1 s (aged 0.1 s to 0.5 s): young buffers are usually about to come back. Ask again later, or with a smaller minAge.";

    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void TextReports_OfAMonitorThatIsOff_SaySo()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = _time });

        Assert.StartsWith("# No leak sites: The monitor is off: it records only buffers rented while it is on.", BufferReportFormatter.FormatCollapsed(monitor.GetLeakSites()), StringComparison.Ordinal);
        Assert.StartsWith("Empty set: The monitor is off:", BufferReportFormatter.FormatVertical(monitor.GetResident()), StringComparison.Ordinal);
        Assert.StartsWith("Empty set: The monitor is off:", BufferReportFormatter.FormatVertical(monitor.GetOldestResident(10)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TextReports_OfYoungBuffersOnly_SayHowManyAndHowOld()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using DirectBufferPool pool = Pools.Create(monitor);
        using DirectBuffer oldest = RentAndAdvance(pool, 0.2);
        using DirectBuffer middle = RentAndAdvance(pool, 0.2);
        using DirectBuffer youngest = RentAndAdvance(pool, 0.1);

        string collapsed = BufferReportFormatter.FormatCollapsed(monitor.GetLeakSites());
        Assert.Equal($"# No leak sites: {YoungMessage}\n", collapsed);

        // flamegraph.pl and speedscope take "frames count" lines; the comment is not one.
        Assert.DoesNotMatch(new Regex(@"^.* \d+$", RegexOptions.Multiline), collapsed);

        Assert.Equal($"Empty set: {YoungMessage}\n", BufferReportFormatter.FormatVertical(monitor.GetResident()));

        using var writer = new StringWriter();
        await BufferReportFormatter.WriteCollapsedAsync(writer, monitor.GetLeakSites());
        await BufferReportFormatter.WriteVerticalAsync(writer, monitor.GetResident());
        Assert.Equal($"# No leak sites: {YoungMessage}\nEmpty set: {YoungMessage}\n", writer.ToString());
    }

    [Fact]
    public void TextReports_OfPoolBuffersThatAreNotRecorded_SaySo()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.RecordPool = false);
        using DirectBufferPool pool = Pools.Create(monitor);
        using DirectBuffer connection = pool.Rent(4096, BufferType.Pool);
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal("# No leak sites: POOL buffers are not recorded: RecordPool is off.\n", BufferReportFormatter.FormatCollapsed(monitor.GetLeakSites(type: BufferType.Pool)));
    }

    [Fact]
    public void TextReports_WhenEverythingCameBack_SaySo()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using DirectBufferPool pool = Pools.Create(monitor);
        pool.Rent(100).Dispose();
        using DirectBuffer pooled = pool.Rent(100, BufferType.Pool);
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(
            "Empty set: The monitor is on, and every buffer of type NORMAL rented since it was switched on has come back.\n",
            BufferReportFormatter.FormatVertical(monitor.GetResident(type: BufferType.Normal)));
    }

    private DirectBuffer RentAndAdvance(DirectBufferPool pool, double seconds)
    {
        DirectBuffer lease = pool.Rent(64);
        _time.Advance(TimeSpan.FromSeconds(seconds));
        return lease;
    }
}
