using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

/// <summary>Fast capture through a monitor and a pool: correct top frames, the option that turns it off, and what is logged.</summary>
public sealed class FastStackMonitorTests
{
    [Fact]
    public void PoolWithMonitorOn_EveryStack_RecordsTheRentersAsTopFrames_FromKeys()
    {
        // On a thread of its own: xunit calls a test through reflection (native code between managed frames), and
        // such a stack's key is never admitted.
        FreshThread.Run(() =>
        {
            var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.Every });
            monitor.Enable();
            using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Monitor = monitor, TrimAfter = Timeout.InfiniteTimeSpan });
            StackCapture capture = monitor.StackCapture!;
            Assert.Equal(FastStackPlatform.IsSupported, capture.IsFastCaptureActive);

            var leases = new List<DirectBuffer>();
            for (int i = 0; i < 40; i++)
            {
                leases.Add(RentForTheReader(pool));
                leases.Add(RentForTheWriter(pool));
            }

            IReadOnlyList<ResidentBuffer> resident = monitor.GetResident(TimeSpan.Zero);
            Assert.Equal(80, resident.Count);
            Assert.Equal(40, resident.Count(r => r.StackTrace.StartsWith("OffHeapTracker.Tests.Monitoring.Stacks.FastStackMonitorTests.RentForTheReader", StringComparison.Ordinal)));
            Assert.Equal(40, resident.Count(r => r.StackTrace.StartsWith("OffHeapTracker.Tests.Monitoring.Stacks.FastStackMonitorTests.RentForTheWriter", StringComparison.Ordinal)));
            Assert.All(resident, r => Assert.Contains("PoolWithMonitorOn_EveryStack_RecordsTheRentersAsTopFrames_FromKeys", r.StackTrace, StringComparison.Ordinal));
            Assert.Equal(2, monitor.InternedStackCount);
            if (FastStackPlatform.IsSupported)
            {
                Assert.True(capture.FastCaptureCount > 0, "no capture was answered from a key");
                Assert.Equal(0, capture.FastTable!.Mismatches);
                Assert.Equal(0, capture.FastTable.IncompleteKeys);
            }

            leases.ForEach(l => l.Dispose());
        });
    }

    [Fact]
    public void FastStacksOption_Off_TurnsItOff_SaysWhy_AndLogsIt()
    {
        var logs = new CapturingLoggerFactory();
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.Every, FastStacks = false, LoggerFactory = logs });
        monitor.Enable();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Monitor = monitor });

        RentForTheReader(pool).Dispose();

        Assert.False(monitor.StackCapture!.IsFastCaptureActive);
        Assert.Null(monitor.StackCapture.FastTable);
        Assert.Equal("switched off by ResidentBufferMonitorOptions.FastStacks", monitor.StackCapture.FastCaptureOffReason);
        LogEntry off = Assert.Single(logs.WithEvent("FastStacksOff"));
        Assert.Equal(11, off.EventId.Id);
        Assert.Contains("ResidentBufferMonitorOptions.FastStacks", off.Message, StringComparison.Ordinal);
        Assert.Contains("fast capture off", Assert.Single(logs.WithEvent("MonitorEnabled")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MonitorEnabledLine_SaysWhetherFastCaptureIsOn()
    {
        var logs = new CapturingLoggerFactory();
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { LoggerFactory = logs });
        monitor.Enable();

        string enabled = Assert.Single(logs.WithEvent("MonitorEnabled")).Message;
        Assert.Contains(FastStackPlatform.IsSupported ? "fast capture on" : "fast capture off", enabled, StringComparison.Ordinal);
        Assert.Equal(FastStackPlatform.IsSupported ? 0 : 1, logs.WithEvent("FastStacksOff").Count);
    }

    [Fact]
    public void PublicConstructors_UseFastCaptureWhereValidated()
    {
        Assert.Equal(FastStackPlatform.IsSupported, new StackCapture().IsFastCaptureActive);
        Assert.Equal(FastStackPlatform.IsSupported, StackCapture.Budgeted().IsFastCaptureActive);
        Assert.Equal(FastStackPlatform.IsSupported, new StackCapture().FastCaptureOffReason is null);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentForTheReader(DirectBufferPool pool) => pool.Rent(512);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentForTheWriter(DirectBufferPool pool) => pool.Rent(1024);
}
