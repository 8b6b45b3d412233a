using System.Buffers;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

// Leak detection runs the finalizers of the whole process: one test at a time.
[Collection(KestrelHosts.Name)]
public sealed class DirectBufferPoolHealthCheckTests
{
    [Fact]
    public async Task NothingHappened_IsHealthy()
    {
        using var pool = NewPool(out string name);
        pool.Rent(100).Dispose();

        HealthReportEntry entry = await CheckAsync(name);

        Assert.Equal(HealthStatus.Healthy, entry.Status);
        Assert.Equal(1, entry.Data["pools"]);
    }

    [Fact]
    public async Task ADoubleDispose_Degrades_OnlyUntilTheNextCheck()
    {
        using var pool = NewPool(out string name);
        IMemoryOwner<byte> lease = pool.Rent(100);
        lease.Dispose();
        lease.Dispose();
        using ServiceProvider services = Services(name);

        HealthReportEntry first = await CheckAsync(services);
        HealthReportEntry second = await CheckAsync(services);

        Assert.Equal(HealthStatus.Degraded, first.Status);
        Assert.Equal(1L, first.Data["double_disposes"]);
        Assert.Contains("disposed twice", first.Description, StringComparison.Ordinal);
        Assert.Equal(HealthStatus.Healthy, second.Status);
    }

    [Fact]
    public async Task AFallback_Degrades_UnlessTolerated()
    {
        using var pool = NewPool(out string name, o => o.CapacityBytes = 0);
        pool.Rent(100).Dispose();

        Assert.Equal(1L, (await CheckAsync(name)).Data["fallbacks"]);
        Assert.Equal(HealthStatus.Degraded, (await CheckAsync(name)).Status);
        pool.Rent(100).Dispose();
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(name, o => o.MaxNewFallbacks = 5)).Status);
    }

    [Fact]
    public async Task ALeak_Degrades()
    {
        // Leases get a finalizer, and so can be found leaked, while their monitor records.
        var monitor = new ResidentBufferMonitor();
        monitor.Enable();
        using var pool = NewPool(out string name, o => o.Monitor = monitor);
        RentAndDrop(pool);

        // Twice: a lease's guard defers its verdict by one collection (so an owner's finalizer can dispose it first),
        // so the leak is counted by the second finalizer run, which the second wait waits for.
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        GC.Collect();

        HealthReportEntry entry = await CheckAsync(name);

        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal(1L, entry.Data["leaks"]);
    }

    [Fact]
    public async Task APoolNearlyFull_Degrades_NamingIt()
    {
        using var pool = NewPool(out string name, o => o.CapacityBytes = 1024 * 1024);
        var held = new List<IMemoryOwner<byte>>();
        for (int i = 0; i < 250; i++)
        {
            held.Add(pool.Rent(4096));
        }

        HealthReportEntry entry = await CheckAsync(name);

        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Contains(entry.Data.Keys, k => k.StartsWith($"in_use_share.{name}#", StringComparison.Ordinal));
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(name, o => o.InUseDegradedShare = 1)).Status);
        held.ForEach(b => b.Dispose());
    }

    [Fact]
    public async Task AnOldNormalBuffer_Degrades_WithItsId()
    {
        var clock = new ManualClock();
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = clock });
        monitor.Enable();
        using var pool = NewPool(out string name, o => o.Monitor = monitor);
        var old = (DirectBuffer)pool.Rent(100);
        using IMemoryOwner<byte> resident = pool.Rent(100, BufferType.Pool);

        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(name)).Status);
        clock.Advance(TimeSpan.FromMinutes(2));
        HealthReportEntry entry = await CheckAsync(name);

        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Equal(old.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), entry.Data["old_normal_buffers"]);
        old.Dispose();
    }

    [Fact]
    public async Task AMonitorError_IsUnhealthy()
    {
        using var pool = NewPool(out string name, o => o.Monitor = new ThrowingMonitor());
        pool.Rent(100).Dispose();

        HealthReportEntry entry = await CheckAsync(name);

        Assert.Equal(HealthStatus.Unhealthy, entry.Status);
        Assert.True((long)entry.Data["monitor_errors"] > 0);
    }

    [Fact]
    public void AThresholdOutOfRange_IsRefused_NamingIt()
    {
        var builder = new ServiceCollection().AddHealthChecks();

        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => builder.AddDirectBufferPools(o => o.InUseDegradedShare = 0));

        Assert.Equal("InUseDegradedShare", error.ParamName);
        Assert.Contains("from 0.01 to 1", error.Message, StringComparison.Ordinal);
    }

    private static DirectBufferPool NewPool(out string name, Action<DirectBufferPoolOptions>? configure = null, [CallerMemberName] string test = "")
    {
        name = "health-" + test;
        var options = new DirectBufferPoolOptions { Name = name, Monitor = new ResidentBufferMonitor() };
        configure?.Invoke(options);
        return new DirectBufferPool(options);
    }

    private static ServiceProvider Services(string poolName, Action<DirectBufferPoolHealthCheckOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddHealthChecks().AddDirectBufferPools(o =>
        {
            o.Pools = p => p.Name == poolName;
            configure?.Invoke(o);
        });
        return services.BuildServiceProvider();
    }

    private static async Task<HealthReportEntry> CheckAsync(string poolName, Action<DirectBufferPoolHealthCheckOptions>? configure = null)
    {
        using ServiceProvider services = Services(poolName, configure);
        return await CheckAsync(services);
    }

    private static async Task<HealthReportEntry> CheckAsync(ServiceProvider services)
    {
        HealthReport report = await services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        return report.Entries[DirectBufferPoolHealthChecksBuilderExtensions.DefaultName];
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RentAndDrop(DirectBufferPool pool) => pool.Rent(100);

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = DateTimeOffset.UtcNow.UtcTicks;

        public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    private sealed class ThrowingMonitor : IBufferMonitor
    {
        public bool IsEnabled => true;

        public bool OnAllocated(in BufferAllocation allocation) => throw new InvalidOperationException("a broken monitor");

        public void OnReturned(long id)
        {
        }
    }
}
