using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring;

/// <summary>What a resident row says about its buffer's pool.</summary>
public sealed class ResidentBufferTests
{
    [Fact]
    public void PoolId_TellsApartPoolsThatShareAName_AndSurvivesTheJsonReport()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(new ManualTimeProvider());
        using var first = Pools.Create(monitor, o => o.Name = "kestrel");
        using var second = Pools.Create(monitor, o => o.Name = "kestrel");
        using DirectBuffer a = first.Rent(512);
        using DirectBuffer b = second.Rent(512);

        IReadOnlyList<ResidentBuffer> rows = monitor.GetResident(TimeSpan.Zero);
        Assert.Equal(first.Id, Assert.Single(rows, r => r.Id == a.Id).PoolId);
        Assert.Equal(second.Id, Assert.Single(rows, r => r.Id == b.Id).PoolId);
        Assert.NotEqual(first.Id, second.Id);
        Assert.All(rows, r => Assert.Equal("kestrel", r.PoolName));

        string json = BufferReportFormatter.ToJson(rows);
        Assert.Contains($"\"pool_id\":{second.Id}", json, StringComparison.Ordinal);
        Assert.Equal(rows, BufferReportFormatter.ParseResidentJson(json));
    }
}
