using System.Buffers;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

public sealed class DirectBufferPoolServiceCollectionExtensionsTests
{
    [Fact]
    public void AddDirectBufferPool_WithoutServices_Throws()
    {
        ArgumentNullException error = Assert.Throws<ArgumentNullException>(() => DirectBufferPoolServiceCollectionExtensions.AddDirectBufferPool(null!));
        Assert.Equal("services", error.ParamName);
    }

    [Fact]
    public void AddDirectBufferPool_ReplacesTheMemoryPoolFactoryRegisteredBefore()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IMemoryPoolFactory<byte>, OtherFactory>();
        services.AddDirectBufferPool();

        using ServiceProvider provider = services.BuildServiceProvider();
        IMemoryPoolFactory<byte> only = Assert.Single(provider.GetServices<IMemoryPoolFactory<byte>>());
        Assert.Same(provider.GetRequiredService<DirectBufferPoolFactory>(), only);
    }

    [Fact]
    public void CallsCompose_InOrder_IntoOneFactory()
    {
        var first = new ResidentBufferMonitor();
        var second = new ResidentBufferMonitor();
        var services = new ServiceCollection();
        services.AddDirectBufferPool(o =>
        {
            o.Monitor = first;
            o.Backing = BufferBacking.Native;
        });
        services.AddDirectBufferPool(o => o.Monitor = second);

        using ServiceProvider provider = services.BuildServiceProvider();
        DirectBufferPoolFactory factory = Assert.Single(provider.GetServices<DirectBufferPoolFactory>());
        Assert.Single(provider.GetServices<IMemoryPoolFactory<byte>>());
        using var pool = (DirectBufferPool)factory.Create();
        Assert.Same(second, pool.Monitor);
        Assert.Equal(BufferBacking.Native, pool.Backing);
    }

    [Fact]
    public void Pools_LogAndMeasureThroughTheHostsFactories()
    {
        var loggers = new RecordingLoggerFactory();
        using var meters = new RecordingMeterFactory();
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(loggers);
        services.AddSingleton<IMeterFactory>(meters);
        services.AddDirectBufferPool();

        using ServiceProvider provider = services.BuildServiceProvider();
        using MemoryPool<byte> pool = provider.GetRequiredService<IMemoryPoolFactory<byte>>().Create();

        Assert.Contains(typeof(DirectBufferPool).FullName!, loggers.Categories);
        Assert.Contains("OffHeapTracker", meters.Names);
    }

    [Fact]
    public void DisposingTheServices_DisposesThePools()
    {
        var services = new ServiceCollection();
        services.AddDirectBufferPool(o => o.Monitor = new ResidentBufferMonitor());
        ServiceProvider provider = services.BuildServiceProvider();
        var pool = (DirectBufferPool)provider.GetRequiredService<IMemoryPoolFactory<byte>>().Create();

        provider.Dispose();

        Assert.True(pool.GetStatistics().IsDisposed);
    }

    private sealed class OtherFactory : IMemoryPoolFactory<byte>
    {
        public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => throw new NotSupportedException();
    }
}
