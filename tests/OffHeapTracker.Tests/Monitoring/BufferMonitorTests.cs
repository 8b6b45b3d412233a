using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring;

[Collection(ProcessWideState.Name)]
public sealed class BufferMonitorTests : IDisposable
{
    public BufferMonitorTests() => BufferMonitor.Disable();

    public void Dispose()
    {
        BufferMonitor.Disable();
        BufferMonitor.RecordPool = true;
    }

    [Fact]
    public void APoolWithoutAMonitor_ReportsToTheSharedOne()
    {
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "shared-test" });
        Assert.Same(BufferMonitor.Shared, pool.Monitor);

        using DirectBuffer before = pool.Rent(10);
        BufferMonitor.Enable();
        Assert.True(BufferMonitor.IsEnabled);
        using DirectBuffer after = pool.Rent(10, BufferType.Pool);

        ResidentBuffer record = Assert.Single(BufferMonitor.GetResident(TimeSpan.Zero));
        Assert.Equal(after.Id, record.Id);
        Assert.Equal("shared-test", record.PoolName);
        Assert.Empty(BufferMonitor.GetResident(TimeSpan.Zero, BufferType.Normal));

        BufferMonitor.Disable();
        Assert.False(BufferMonitor.IsEnabled);
        Assert.Empty(BufferMonitor.GetResident(TimeSpan.Zero));
    }

    [Fact]
    public void RecordPool_OnTheFacade_ChangesTheSharedMonitor()
    {
        using var pool = new DirectBufferPool();
        BufferMonitor.Enable();
        BufferMonitor.RecordPool = false;
        Assert.False(BufferMonitor.Shared.RecordPool);
        using DirectBuffer skipped = pool.Rent(10, BufferType.Pool);
        Assert.Empty(BufferMonitor.GetResident(TimeSpan.Zero));
    }

    [Fact]
    public void CurrentContext_ReflectsTheInnermostScope()
    {
        Assert.Null(BufferMonitor.CurrentContext);
        using (BufferMonitor.BeginContext("a"))
        {
            IDisposable inner = BufferMonitor.BeginContext("b");
            Assert.Equal("b", BufferMonitor.CurrentContext);
            inner.Dispose();
            inner.Dispose();
            Assert.Equal("a", BufferMonitor.CurrentContext);
        }

        Assert.Null(BufferMonitor.CurrentContext);
    }

    [Fact]
    public void StartAutoSwitch_ReplacesTheSharedSwitch_AndADisposedSwitchIsForgotten()
    {
        var rules = new MonitorAutoSwitchOptions { OldNormalBuffers = 1_000_000, OldNormalAge = TimeSpan.FromDays(7) };
        MonitorAutoSwitch first = BufferMonitor.StartAutoSwitch(rules);
        Assert.Same(first, BufferMonitor.AutoSwitch);

        using MonitorAutoSwitch second = BufferMonitor.StartAutoSwitch(rules);
        Assert.Same(second, BufferMonitor.AutoSwitch);

        // The replaced switch was stopped: disposing it again must not forget the one that replaced it.
        first.Dispose();
        Assert.Same(second, BufferMonitor.AutoSwitch);
        second.Dispose();
        Assert.Null(BufferMonitor.AutoSwitch);
        Assert.Throws<ArgumentException>(() => BufferMonitor.StartAutoSwitch(new MonitorAutoSwitchOptions()));
    }
}
