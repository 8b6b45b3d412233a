using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;
using Xunit.Abstractions;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>The factory on its own; <c>.Kestrel.cs</c> has Kestrel on its pools and <c>.Load.cs</c> the same under load.</summary>
[Collection(KestrelHosts.Name)]
public sealed partial class DirectBufferPoolFactoryTests(ITestOutputHelper output)
{
    [Fact]
    public void Constructor_WithoutALoggerFactory_Throws()
    {
        ArgumentNullException error = Assert.Throws<ArgumentNullException>(() => new DirectBufferPoolFactory(null, null!));
        Assert.Equal("loggerFactory", error.ParamName);
    }

    public static TheoryData<MemoryPoolOptions?, string> Owners => new()
    {
        { new MemoryPoolOptions { Owner = "kestrel" }, "kestrel" },
        { null, "aspnetcore" },
        { new MemoryPoolOptions(), "aspnetcore" },
        { new MemoryPoolOptions { Owner = string.Empty }, "aspnetcore" },
        { new MemoryPoolOptions { Owner = "  " }, "aspnetcore" },
    };

    [Theory]
    [MemberData(nameof(Owners))]
    public void Create_NamesThePoolAfterItsOwner(MemoryPoolOptions? options, string name)
    {
        using var factory = new DirectBufferPoolFactory(null, NullLoggerFactory.Instance);
        using var pool = (DirectBufferPool)factory.Create(options);
        Assert.Equal(name, pool.Name);
    }

    [Fact]
    public void Create_RunsConfigureAfterTheDefaults_SoItCanChangeThem()
    {
        var loggers = new RecordingLoggerFactory();
        using var meters = new RecordingMeterFactory();
        var seen = new List<(string Name, ILoggerFactory Loggers, IMeterFactory? Meters, BufferBacking Backing)>();
        using var factory = new DirectBufferPoolFactory(
            o =>
            {
                seen.Add((o.Name, o.LoggerFactory, o.MeterFactory, o.Backing));
                o.Name = "renamed";
                o.Backing = BufferBacking.Native;
            },
            loggers,
            meters);

        using var pool = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "kestrel" });

        // Called for the pool, and once more, under the fallback name, to resolve the monitor.
        Assert.Contains(seen, s => s.Name == "kestrel");
        Assert.All(seen, s =>
        {
            Assert.Same(loggers, s.Loggers);
            Assert.Same(meters, s.Meters);
            Assert.Equal(BufferBacking.PinnedArray, s.Backing);
        });
        Assert.Equal("renamed", pool.Name);
        Assert.Equal(BufferBacking.Native, pool.Backing);
    }

    [Fact]
    public void Create_BacksPoolsWithPinnedArrays_ByDefault()
    {
        using var factory = new DirectBufferPoolFactory(null, NullLoggerFactory.Instance);
        using var pool = (DirectBufferPool)factory.Create();
        Assert.Equal(BufferBacking.PinnedArray, pool.Backing);
    }

    [Fact]
    public void Create_GivesEveryPoolTheFactorysLoggerAndMeterFactories()
    {
        var loggers = new RecordingLoggerFactory();
        using var meters = new RecordingMeterFactory();
        using var factory = new DirectBufferPoolFactory(null, loggers, meters);

        using var pool = (DirectBufferPool)factory.Create();

        Assert.Contains(typeof(DirectBufferPool).FullName!, loggers.Categories);
        Assert.Contains("OffHeapTracker", meters.Names);
    }

    [Fact]
    public void Monitor_IsResolvedOnce_AndEveryPoolReportsToIt()
    {
        int created = 0;
        using var factory = new DirectBufferPoolFactory(
            o =>
            {
                o.Monitor = new ResidentBufferMonitor();
                created++;
            },
            NullLoggerFactory.Instance);
        IBufferMonitor monitor = factory.Monitor;
        Assert.Same(monitor, factory.Monitor);
        using var a = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "a" });
        using var b = (DirectBufferPool)factory.Create();
        Assert.Same(monitor, a.Monitor);
        Assert.Same(monitor, b.Monitor);
        Assert.Equal(3, created);
    }

    [Fact]
    public void Monitor_WhenTheOptionsSetNone_IsTheSharedMonitor()
    {
        using var factory = new DirectBufferPoolFactory(null, NullLoggerFactory.Instance);
        using var pool = (DirectBufferPool)factory.Create();
        Assert.Same(BufferMonitor.Shared, factory.Monitor);
        Assert.Same(BufferMonitor.Shared, pool.Monitor);
    }

    [Fact]
    public void Pools_LeavesOutAPoolItsOwnerDisposed()
    {
        using var factory = new DirectBufferPoolFactory(null, NullLoggerFactory.Instance);
        var disposed = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "a" });
        using var kept = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "b" });

        disposed.Dispose();

        Assert.Equal([kept], factory.Pools);
    }

    [Fact]
    public void Dispose_DisposesEveryPoolCreated_AndLaterCreatesThrow()
    {
        var factory = new DirectBufferPoolFactory(null, NullLoggerFactory.Instance);
        var a = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "a" });
        var b = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "b" });
        Assert.Equal([a, b], factory.Pools);

        factory.Dispose();

        Assert.True(a.GetStatistics().IsDisposed);
        Assert.True(b.GetStatistics().IsDisposed);
        Assert.Empty(factory.Pools);
        Assert.Throws<ObjectDisposedException>(() => factory.Create());
    }
}
