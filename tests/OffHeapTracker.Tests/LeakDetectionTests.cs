using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests;

/// <summary>Leases dropped without Dispose: caught by the finalizer, returned, counted, logged and reported.</summary>
/// <remarks>GC-driven, so these run apart from other tests (their dropped leases would count here).</remarks>
[Collection(ProcessWideState.Name)]
public sealed class LeakDetectionTests
{
    [Fact]
    public void DroppedLease_WithTheMonitorOn_IsReclaimedAndReportedWithItsStackAgeAndContext()
    {
        var time = new ManualTimeProvider();
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(time);
        var leaks = new ConcurrentQueue<BufferLeak>();
        monitor.LeakDetected += (sender, leak) =>
        {
            Assert.Same(monitor, sender);
            leaks.Enqueue(leak);
        };
        using var pool = Pools.Create(monitor, o =>
        {
            o.LoggerFactory = logs;
            o.TimeProvider = time;
        });

        long id = DropALease(pool, "GET /reports/7");
        time.Advance(TimeSpan.FromSeconds(3));
        Gc.CollectAndFinalize();

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(1, stats.LeakedCount);
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Equal(0, stats.InUseBytes);
        Assert.Equal(0, monitor.Count);

        BufferLeak reported = Assert.Single(leaks);
        Assert.Equal(id, reported.Id);
        Assert.Equal("test", reported.PoolName);
        Assert.Equal(5000, reported.AllocateSize);
        Assert.Equal(8192, reported.ActualSize);
        Assert.Equal(BufferType.Normal, reported.BufferType);
        Assert.Equal(TimeSpan.FromSeconds(3), reported.Age);
        Assert.Equal("GET /reports/7", reported.Context);
        Assert.StartsWith("OffHeapTracker.Tests.LeakDetectionTests.DropALease(DirectBufferPool, String)", reported.StackTrace, StringComparison.Ordinal);

        LogEntry warning = Assert.Single(logs.WithEvent("BufferLeaked"));
        Assert.Equal(8, warning.EventId.Id);
        Assert.Contains($"Buffer {id} of pool test (8192 bytes, Normal) was garbage-collected without Dispose after 3.000 s, context GET /reports/7", warning.Message, StringComparison.Ordinal);
        Assert.Contains("LeakDetectionTests.DropALease", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DroppedLease_WithTheMonitorOff_IsReclaimedAndItsBlockReused()
    {
        var logs = new CapturingLoggerFactory();
        var monitor = new ResidentBufferMonitor();
        int reported = 0;
        monitor.LeakDetected += (_, leak) =>
        {
            Assert.Null(leak.StackTrace);
            Assert.Null(leak.Age);
            Interlocked.Increment(ref reported);
        };
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);

        nint address = DropALeaseAt(pool);
        Gc.CollectAndFinalize();

        Assert.Equal(1, pool.GetStatistics().LeakedCount);
        Assert.Equal(0, pool.OutstandingCount);
        Assert.Equal(1, reported);
        Assert.Contains("not captured: enable the monitor", Assert.Single(logs.WithEvent("BufferLeaked")).Message, StringComparison.Ordinal);

        // The block is free again: the next rent of the class gets it.
        using DirectBuffer next = pool.Rent(4096);
        Assert.Equal(address, Addresses.Of(next));
    }

    [Fact]
    public void DroppedLease_FromADisposedPool_FreesTheSlabsWhenFinalized()
    {
        var allocator = new TestAllocator();
        var pool = Pools.Create(new ResidentBufferMonitor(), o => o.Allocator = allocator);
        DropALeaseAt(pool);
        pool.Dispose();
        Assert.Equal(1, allocator.LiveCount);

        Gc.CollectAndFinalize();
        Assert.Equal(0, allocator.LiveCount);
        Assert.Equal(1, pool.GetStatistics().LeakedCount);
    }

    [Fact]
    public void LeakHandler_ThatThrows_CannotStopTheMemoryComingBack()
    {
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        monitor.LeakDetected += (_, _) => throw new InvalidOperationException("handler bug");
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);

        DropALease(pool, "ctx");
        Gc.CollectAndFinalize();

        Assert.Equal(0, pool.GetStatistics().InUseBytes);
        Assert.Equal(1, pool.GetStatistics().MonitorErrorCount);
        Assert.IsType<InvalidOperationException>(Assert.Single(logs.WithEvent("LeakHandlerFailed")).Exception);
    }

    [Fact]
    public void SharedMonitor_RaisesBufferMonitorLeakDetected()
    {
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "shared-leak" });
        var seen = new ConcurrentQueue<BufferLeak>();
        void Handler(object? sender, BufferLeak leak) => seen.Enqueue(leak);
        BufferMonitor.LeakDetected += Handler;
        try
        {
            DropALeaseAt(pool);
            Gc.CollectAndFinalize();
        }
        finally
        {
            BufferMonitor.LeakDetected -= Handler;
        }

        Assert.Equal("shared-leak", Assert.Single(seen).PoolName);
    }

    [Fact]
    public void UninitializedLease_FinalizesQuietly()
    {
        // Without the finalizer's guard this throws NullReferenceException on the finalizer thread, which kills
        // the test host: the run then aborts instead of passing.
        CreateAndDropAnUninitializedLease();
        Gc.CollectAndFinalize();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long DropALease(DirectBufferPool pool, string context)
    {
        using (BufferMonitor.BeginContext(context))
        {
            return pool.Rent(5000).Id;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nint DropALeaseAt(DirectBufferPool pool) => Addresses.Of(pool.Rent(4096));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CreateAndDropAnUninitializedLease() => _ = new DirectBuffer(reusable: false);
}
