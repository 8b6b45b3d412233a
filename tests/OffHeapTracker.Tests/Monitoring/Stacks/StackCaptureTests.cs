using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

public sealed class StackCaptureTests
{
    [Theory]
    [InlineData(1_000, 400, 4.0)]      // the process used 0.4 of a core: 1 % of that
    [InlineData(1_000, 1_000, 10.0)]   // one core
    [InlineData(1_000, 5_000, 10.0)]   // five cores: still 1 % of one core, never more
    [InlineData(1_000, 0, 10.0)]       // no reading (the runtime cannot say): 1 % of one core
    public void WindowShare_IsTheBudgetOfOneCore_OrOfTheProcessesCpuIfLess(long elapsed, long processCpu, double expected) =>
        Assert.Equal(expected, StackCapture.WindowShare(0.01, elapsed, processCpu), 6);

    [Fact]
    public void Budgeted_InAProcessUsingATenthOfACore_IsHeldToItsShareOfThatTenth()
    {
        // A whole core of budget, spent by one thread capturing without pause: against one core that is about the
        // share, and the interval would stay at 1. The process's CPU clock here runs at a tenth of wall time (a
        // server that gets a tenth of a core), so the same spending is ten times the share and the interval rises.
        var capture = new StackCapture(
            16, 1, false, false, 1_000, onRefused: null, cpuBudget: 1.0, fastStacksOffReason: "test",
            processCpuTicks: static () => System.Diagnostics.Stopwatch.GetTimestamp() / 10);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (capture.CurrentInterval < 4 && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            capture.Capture();
        }

        Assert.True(capture.CurrentInterval >= 4, $"interval {capture.CurrentInterval} after {clock.Elapsed.TotalSeconds:0.0} s of spending ten times the process's share");
    }

    [Fact]
    public void SameCallSite_SharesOneInstance_AnotherSiteGetsItsOwn()
    {
        var capture = new StackCapture();

        // One call site in a loop: identity is (method, IL offset) of every frame, the caller's included.
        var sameSite = new List<CapturedStackTrace?>();
        for (int i = 0; i < 2; i++)
        {
            sameSite.Add(CaptureAtSiteA(capture));
        }

        CapturedStackTrace? first = sameSite[0];
        CapturedStackTrace? other = CaptureAtSiteB(capture);

        Assert.NotNull(first);
        Assert.Same(first, sameSite[1]);
        Assert.NotSame(first, other);
        Assert.Equal(2, capture.Count);
    }

    [Fact]
    public void FirstFrame_IsTheCaller_NotOffHeapTracker()
    {
        CapturedStackTrace? stack = CaptureAtSiteA(new StackCapture(depth: 3));

        Assert.NotNull(stack);
        Assert.Equal(3, stack.Frames.Count);
        Assert.StartsWith("OffHeapTracker.Tests.Monitoring.Stacks.StackCaptureTests.CaptureAtSiteA", stack.Text, StringComparison.Ordinal);
        Assert.Equal(stack.Text, stack.ToString());
    }

    [Fact]
    public void BeyondMaxStacks_ANewStackIsRefusedAndCounted_AKnownOneStillShared()
    {
        var capture = new StackCapture(maxStacks: 1);
        var atSiteA = new List<CapturedStackTrace?>();
        var atSiteB = new List<CapturedStackTrace?>();
        for (int i = 0; i < 2; i++)
        {
            atSiteA.Add(CaptureAtSiteA(capture));
            atSiteB.Add(CaptureAtSiteB(capture));
        }

        Assert.NotNull(atSiteA[0]);
        Assert.Same(atSiteA[0], atSiteA[1]);
        Assert.All(atSiteB, Assert.Null);
        Assert.Equal(2, capture.RefusedCount);
        Assert.Equal(1, capture.Count);
    }

    public static TheoryData<int, int, int, string> OutOfRange => new()
    {
        { 0, 1, 1, "depth" },
        { StackCapture.MaxDepth + 1, 1, 1, "depth" },
        { 16, 0, 1, "sampling" },
        { 16, 1_000_001, 1, "sampling" },
        { 16, 1, 0, "maxStacks" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void ArgumentsOutOfRange_ThrowNamingTheParameterAndTheRange(int depth, int sampling, int maxStacks, string parameter)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new StackCapture(depth, sampling, maxStacks: maxStacks));

        Assert.Equal(parameter, error.ParamName);
        Assert.Contains("between", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Budgeted_ABurstTheReserveCovers_KeepsAStackForEveryBuffer()
    {
        var capture = StackCapture.Budgeted();

        // 60 ms of back-to-back captures: far over 1 % of a core, but within the 100 ms reserve, so the interval
        // must stay at 1 (a demo, or the cold first captures of a quiet service).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 60)
        {
            capture.Capture();
        }

        Assert.Equal(1, capture.CurrentInterval);
        Assert.True(capture.CaptureCount > 0);
    }

    [Fact]
    public void FullTable_CountsTheDrop_WithoutCapturingAStack()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { MaxRecords = 1, Stacks = StackPolicy.Every });
        monitor.Enable();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Monitor = monitor });
        var leases = Enumerable.Range(0, 3).Select(_ => pool.Rent(512)).ToList();

        Assert.Equal(1, monitor.StackCapture!.CaptureCount);
        Assert.Equal(2, monitor.DroppedRecords);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void RefusedDisposeStacks_DoNotCountAsDroppedRecords()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { MaxStacks = 1, CaptureDisposeStacks = true, Stacks = StackPolicy.Every });
        monitor.Enable();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Monitor = monitor });

        pool.Rent(512).Dispose();

        Assert.Equal(1, monitor.StackCapture!.RefusedCount);
        Assert.Equal(0, monitor.DroppedRecords);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static CapturedStackTrace? CaptureAtSiteA(StackCapture capture) => capture.Capture();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static CapturedStackTrace? CaptureAtSiteB(StackCapture capture) => capture.Capture();
}
