using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Tracking;

/// <summary>What a pool tells its monitor, through the tracker alone: a custom monitor gets what the built-in one gets.</summary>
public sealed class BufferTrackerTests
{
    [Fact]
    public void CustomMonitor_GetsTheStackContextTimeAndPoolOfEachRent()
    {
        var clock = new ManualTimeProvider();
        var monitor = new CustomMonitor(new StackCapture(), clock);
        using var pool = Pools.Create(monitor);

        DirectBuffer lease;
        using (BufferMonitor.BeginContext("GET /orders"))
        {
            lease = RentFromOrderHandler(pool);
        }

        BufferAllocation allocation = Assert.Single(monitor.Allocations);
        Assert.Equal(lease.Id, allocation.Id);
        Assert.Equal(pool.Id, allocation.PoolId);
        Assert.Equal("GET /orders", allocation.Context);
        Assert.Equal(clock.GetTimestamp(), allocation.Timestamp);
        Assert.NotNull(allocation.Stack);
        Assert.StartsWith("OffHeapTracker.Tests.Tracking.BufferTrackerTests.RentFromOrderHandler", allocation.Stack.Text, StringComparison.Ordinal);
        lease.Dispose();
        Assert.Equal([lease.Id], monitor.Returned);
    }

    [Fact]
    public void CustomMonitor_WithDisposeStacks_GetsADoubleDisposeReportWithAllThreeStacks()
    {
        var logs = new CapturingLoggerFactory();
        var monitor = new CustomMonitor(new StackCapture(disposeStacks: true), new ManualTimeProvider());
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);
        DirectBuffer lease = RentFromOrderHandler(pool);

        DisposeFromCleanup(lease);
        DisposeAgainFromRetry(lease);

        string message = Assert.Single(logs.WithEvent("DoubleDispose")).Message;
        Assert.Contains("RentFromOrderHandler", message, StringComparison.Ordinal);
        Assert.Contains("DisposeFromCleanup", message, StringComparison.Ordinal);
        Assert.Contains("DisposeAgainFromRetry", message, StringComparison.Ordinal);
        Assert.Equal(1, pool.GetStatistics().DoubleDisposeCount);
    }

    [Fact]
    public void CustomMonitor_ThatListsItsRecords_IsListedByAssertNoOutstanding()
    {
        var monitor = new CustomMonitor(new StackCapture(), new ManualTimeProvider());
        using var pool = Pools.Create(monitor);
        DirectBuffer lease = RentFromOrderHandler(pool);

        var error = Assert.Throws<InvalidOperationException>(pool.AssertNoOutstanding);

        Assert.Contains($"buffer {lease.Id}: 4096 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("at OffHeapTracker.Tests.Tracking.BufferTrackerTests.RentFromOrderHandler", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not listed by the monitor", error.Message, StringComparison.Ordinal);
        lease.Dispose();
    }

    [Fact]
    public void MonitorThatDoesNotRecordATypeNow_CostsNoCaptureForIt()
    {
        var capture = new StackCapture();
        var monitor = new CustomMonitor(capture, new ManualTimeProvider()) { RecordsPoolType = false };
        using var pool = Pools.Create(monitor);

        pool.Rent(4096, BufferType.Pool).Dispose();

        Assert.Empty(monitor.Allocations);
        Assert.Equal(0, capture.Count);
        Assert.Empty(monitor.Returned);
    }

    [Fact]
    public void MonitorWhoseListingThrows_StillLetsAssertNoOutstandingReportTheCount()
    {
        var monitor = new CustomMonitor(null, new ManualTimeProvider()) { ListingThrows = true };
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = pool.Rent(4096);

        var error = Assert.Throws<InvalidOperationException>(pool.AssertNoOutstanding);

        Assert.StartsWith("Pool 'test' has 1 lease outstanding.", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, pool.GetStatistics().MonitorErrorCount);
    }

    [Fact]
    public void SampledPolicy_GivesStacksToOneRentInN_OnEachThread()
    {
        var monitor = new CustomMonitor(new StackCapture(sampling: 4), new ManualTimeProvider());
        using var pool = Pools.Create(monitor);

        for (int i = 0; i < 12; i++)
        {
            pool.Rent(512).Dispose();
        }

        Assert.Equal(12, monitor.Allocations.Count);
        Assert.Equal(3, monitor.Allocations.Count(a => a.Stack is not null));
        Assert.NotNull(monitor.Allocations[0].Stack);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentFromOrderHandler(DirectBufferPool pool) => pool.Rent(4096);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DisposeFromCleanup(DirectBuffer lease) => lease.Dispose();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DisposeAgainFromRetry(DirectBuffer lease) => lease.Dispose();

    /// <summary>A monitor written against the interface only, keeping what it is given, as a user's would.</summary>
    private sealed class CustomMonitor(StackCapture? capture, TimeProvider clock) : IBufferMonitor
    {
        private readonly Dictionary<long, BufferAllocation> _live = [];

        public List<BufferAllocation> Allocations { get; } = [];

        public List<long> Returned { get; } = [];

        public bool RecordsPoolType { get; init; } = true;

        public bool ListingThrows { get; init; }

        public bool IsEnabled => true;

        public StackCapture? StackCapture => capture;

        public TimeProvider TimeProvider => clock;

        public bool IsRecording(BufferType bufferType) => bufferType != BufferType.Pool || RecordsPoolType;

        public bool OnAllocated(in BufferAllocation allocation)
        {
            Allocations.Add(allocation);
            _live[allocation.Id] = allocation;
            return true;
        }

        public void OnReturned(long id)
        {
            Returned.Add(id);
            _live.Remove(id);
        }

        public IReadOnlyList<ResidentBuffer> GetOutstanding(int poolId)
        {
            if (ListingThrows)
            {
                throw new InvalidOperationException("listing failed");
            }

            return [.. _live.Values.Where(a => a.PoolId == poolId).Select(a => new ResidentBuffer
            {
                Id = a.Id,
                AliveSeconds = clock.GetElapsedTime(a.Timestamp).TotalSeconds,
                StackTrace = a.Stack?.Text ?? string.Empty,
                BufferType = a.BufferType,
                AllocateSize = a.AllocateSize,
                ActualSize = a.ActualSize,
                AllocateTime = clock.GetUtcNow(),
                Context = a.Context,
                PoolName = a.PoolName,
                ThreadId = 0,
            })];
        }
    }
}
