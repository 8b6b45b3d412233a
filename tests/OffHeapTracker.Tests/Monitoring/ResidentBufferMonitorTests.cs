using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring;

public sealed partial class ResidentBufferMonitorTests
{
    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void Records_AppearOnlyAfterEnable()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = _time });
        using var pool = Pools.Create(monitor);

        DirectBuffer before = pool.Rent(100);
        Assert.False(monitor.IsEnabled);
        Assert.Equal(0, monitor.Count);

        monitor.Enable();
        DirectBuffer after = pool.Rent(100);

        ResidentBuffer record = Assert.Single(monitor.GetResident(TimeSpan.Zero));
        Assert.Equal(after.Id, record.Id);

        // Freeing a buffer rented before Enable is a no-op for the monitor and removes nothing else.
        before.Dispose();
        Assert.Equal(1, monitor.Count);
        after.Dispose();
        Assert.Equal(0, monitor.Count);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    public void AnAllocationWithoutAPositiveId_IsRefused_AndTakesNoSlot(long id)
    {
        // The table keeps a free slot's link where a record keeps its id, as 0 or a negative number; a record under
        // such an id would be invisible to every report. Pools never hand them out; another caller is refused.
        var resident = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { TimeProvider = _time, MaxRecords = 1 });
        resident.Enable();
        IBufferMonitor monitor = resident;

        Assert.False(monitor.OnAllocated(new BufferAllocation(id, 0x1000, 64, 64, BufferType.Normal, "p", IsPooled: true), out long token));
        Assert.Equal(0, token);
        Assert.False(monitor.OnAllocated(new BufferAllocation(id, 0x1000, 64, 64, BufferType.Normal, "p", IsPooled: true)));

        // The one slot is still free for a real record.
        Assert.True(monitor.OnAllocated(new BufferAllocation(7, 0x1000, 64, 64, BufferType.Normal, "p", IsPooled: true), out _));
        Assert.Equal(7, Assert.Single(resident.GetResident(TimeSpan.Zero)).Id);
    }

    [Fact]
    public void OnTheSystemClock_RecordsAreStampedCoarsely_NeverYoungerThanTheyAre_AndAtMostAPeriodOlder()
    {
        // With the system clock the record path stamps from the coarse clock (no clock_gettime per rent). Ages must
        // stay in Stopwatch units on the monitor's own scale: never negative, never understated, and off by
        // about one coarse period (bounded generously here for a loaded machine).
        var monitor = new ResidentBufferMonitor();
        monitor.Enable();
        using var pool = Pools.Create(monitor);

        long before = System.Diagnostics.Stopwatch.GetTimestamp();
        using DirectBuffer lease = pool.Rent(100);
        ResidentBuffer record = Assert.Single(monitor.GetResident(TimeSpan.Zero));
        double trueAge = System.Diagnostics.Stopwatch.GetElapsedTime(before).TotalSeconds;

        Assert.Equal(lease.Id, record.Id);
        Assert.InRange(record.AliveSeconds, trueAge, trueAge + 2.0);
        Assert.InRange(record.AllocateTime, DateTimeOffset.UtcNow.AddSeconds(-3), DateTimeOffset.UtcNow.AddSeconds(1));
    }

    [Fact]
    public void YoungRecords_AreHiddenByDefault_AndShownWithMinAgeZero()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = pool.Rent(100);

        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Empty(monitor.GetResident());
        Assert.Single(monitor.GetResident(TimeSpan.Zero));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        ResidentBuffer record = Assert.Single(monitor.GetResident());
        Assert.Equal(1.0, record.AliveSeconds, precision: 6);

        // The filter runs at query time: the record was there all along.
        Assert.Empty(monitor.GetResident(TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public void GetResident_ListsOldestFirst_WithEveryField()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor, o => o.MaxPooledBufferSize = 4096);
        DateTimeOffset start = _time.GetUtcNow();

        using DirectBuffer oldest = pool.Rent(3000, BufferType.Pool);
        _time.Advance(TimeSpan.FromSeconds(5));
        using DirectBuffer middle = pool.Rent(10_000);
        _time.Advance(TimeSpan.FromSeconds(5));
        using DirectBuffer youngest = pool.Rent(1);
        _time.Advance(TimeSpan.FromSeconds(1));

        IReadOnlyList<ResidentBuffer> rows = monitor.GetResident();
        Assert.Equal([oldest.Id, middle.Id, youngest.Id], rows.Select(r => r.Id));
        Assert.Equal([11.0, 6.0, 1.0], rows.Select(r => Math.Round(r.AliveSeconds, 3)));

        ResidentBuffer first = rows[0];
        Assert.Equal(BufferType.Pool, first.BufferType);
        Assert.Equal(3000, first.AllocateSize);
        Assert.Equal(4096, first.ActualSize);
        Assert.Equal(start, first.AllocateTime);
        Assert.Equal("test", first.PoolName);
        Assert.Equal(Environment.CurrentManagedThreadId, first.ThreadId);
        Assert.Equal(Addresses.Of(oldest), first.Address);
        Assert.Null(first.Context);
        Assert.StartsWith(
            "OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.GetResident_ListsOldestFirst_WithEveryField()",
            first.StackTrace,
            StringComparison.Ordinal);
        Assert.Equal(start.AddSeconds(5), rows[1].AllocateTime);
        Assert.Equal(10_000, rows[1].ActualSize);
    }

    [Fact]
    public void GetResident_FiltersByType()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer normal = pool.Rent(10);
        using DirectBuffer resident = pool.Rent(10, BufferType.Pool);

        Assert.Equal(normal.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero, BufferType.Normal)).Id);
        Assert.Equal(resident.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero, BufferType.Pool)).Id);
        Assert.Equal(2, monitor.GetResident(TimeSpan.Zero).Count);
    }

    [Fact]
    public void GetResident_RejectsBadArguments()
    {
        var monitor = new ResidentBufferMonitor();
        Assert.Equal("minAge", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.GetResident(TimeSpan.FromSeconds(-1))).ParamName);
        Assert.Equal("type", Assert.Throws<ArgumentOutOfRangeException>(() => monitor.GetResident(null, (BufferType)9)).ParamName);
    }

    [Fact]
    public void FreedBuffer_LosesItsRecord()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        DirectBuffer kept = pool.Rent(10);
        DirectBuffer freed = pool.Rent(10);
        freed.Dispose();

        Assert.Equal(kept.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);
        kept.Dispose();
        Assert.Empty(monitor.GetResident(TimeSpan.Zero));
    }

    [Fact]
    public void Disable_ClearsEveryRecord_AndLogsHowMany()
    {
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.LoggerFactory = logs);
        using var pool = Pools.Create(monitor);
        var leases = Enumerable.Range(0, 3).Select(_ => pool.Rent(10)).ToList();
        Assert.Equal(3, monitor.Count);

        monitor.Disable();
        Assert.False(monitor.IsEnabled);
        Assert.Equal(0, monitor.Count);
        Assert.Empty(monitor.GetResident(TimeSpan.Zero));
        Assert.Contains("3 resident records cleared", Assert.Single(logs.WithEvent("MonitorDisabled")).Message, StringComparison.Ordinal);
        Assert.Single(logs.WithEvent("MonitorEnabled"));

        // Returning buffers recorded before Disable is harmless, and a new Enable starts empty.
        monitor.Enable();
        leases.ForEach(l => l.Dispose());
        Assert.Equal(0, monitor.Count);
        using DirectBuffer fresh = pool.Rent(10);
        Assert.Equal(fresh.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);
    }

    [Fact]
    public void RecordPoolFalse_SkipsPoolBuffers_AndCanChangeAtRuntime()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.RecordPool = false);
        using var pool = Pools.Create(monitor);

        using DirectBuffer skipped = pool.Rent(10, BufferType.Pool);
        using DirectBuffer normal = pool.Rent(10);
        Assert.Equal(normal.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);

        monitor.RecordPool = true;
        using DirectBuffer recorded = pool.Rent(10, BufferType.Pool);
        Assert.Equal([normal.Id, recorded.Id], monitor.GetResident(TimeSpan.Zero).Select(r => r.Id).Order());
    }

    [Fact]
    public void Context_IsRecorded_RestoredWhenTheScopeEnds_AndCut()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        DirectBuffer outer, inner, after, longOne;
        using (BufferMonitor.BeginContext("GET /orders/42"))
        {
            outer = pool.Rent(10);
            using (BufferMonitor.BeginContext("conn 7"))
            {
                inner = pool.Rent(10);
            }

            after = pool.Rent(10);
        }

        using (BufferMonitor.BeginContext(new string('x', 5000)))
        {
            longOne = pool.Rent(10);
        }

        using DirectBuffer none = pool.Rent(10);
        Dictionary<long, string?> contexts = monitor.GetResident(TimeSpan.Zero).ToDictionary(r => r.Id, r => r.Context);
        Assert.Equal("GET /orders/42", contexts[outer.Id]);
        Assert.Equal("conn 7", contexts[inner.Id]);
        Assert.Equal("GET /orders/42", contexts[after.Id]);
        Assert.Equal(new string('x', 1024), contexts[longOne.Id]);
        Assert.Null(contexts[none.Id]);
        Assert.Throws<ArgumentNullException>(() => BufferMonitor.BeginContext(null!));
    }

    [Fact]
    public async Task Context_FlowsAcrossAwaits()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        DirectBuffer lease;
        using (BufferMonitor.BeginContext("async request"))
        {
            await Task.Yield();
            lease = await Task.Run(() => pool.Rent(10));
        }

        Assert.Equal("async request", Assert.Single(monitor.GetResident(TimeSpan.Zero)).Context);
        lease.Dispose();
    }

    [Fact]
    public void StackTrace_StartsAtTheCaller_NotOffHeapTrackerInternals()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = RentFromHere(pool);

        string stack = Assert.Single(monitor.GetResident(TimeSpan.Zero)).StackTrace;
        string[] lines = stack.Split('\n');
        Assert.Equal("OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.RentFromHere(DirectBufferPool)", lines[0]);
        Assert.Equal("OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.StackTrace_StartsAtTheCaller_NotOffHeapTrackerInternals()", lines[1]);
        Assert.DoesNotContain("OffHeapTracker.DirectBufferPool", stack, StringComparison.Ordinal);
        Assert.DoesNotContain("OffHeapTracker.Monitoring.", stack, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StackTrace_ShowsAsyncMethodsByTheirOwnName()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = await RentAsync(pool);
        Assert.StartsWith(
            "OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.RentAsync(DirectBufferPool)",
            Assert.Single(monitor.GetResident(TimeSpan.Zero)).StackTrace,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task StackTrace_AfterAnAwait_HasNoAsyncPlumbing()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = await RentAfterYieldAsync(pool);
        string stack = Assert.Single(monitor.GetResident(TimeSpan.Zero)).StackTrace;
        Assert.StartsWith("OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.RentAfterYieldAsync(DirectBufferPool)", stack, StringComparison.Ordinal);
        Assert.DoesNotContain("System.Threading.Tasks", stack, StringComparison.Ordinal);
        Assert.DoesNotContain("System.Runtime.CompilerServices", stack, StringComparison.Ordinal);
        Assert.DoesNotContain("ExecutionContext", stack, StringComparison.Ordinal);
    }

    [Fact]
    public void StackTrace_OmitsFramesMarkedStackTraceHidden()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        using DirectBuffer lease = HiddenHelper(pool);
        Assert.StartsWith(
            "OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.StackTrace_OmitsFramesMarkedStackTraceHidden()",
            Assert.Single(monitor.GetResident(TimeSpan.Zero)).StackTrace,
            StringComparison.Ordinal);
    }

    [Fact]
    public void StackTrace_HonoursTheDepth_AndZeroCapturesNone()
    {
        ResidentBufferMonitor shallow = Pools.EnabledMonitor(_time, o => o.StackTraceDepth = 2);
        using (var pool = Pools.Create(shallow))
        using (RentFromHere(pool))
        {
            Assert.Equal(2, Assert.Single(shallow.GetResident(TimeSpan.Zero)).StackTrace.Split('\n').Length);
        }

        ResidentBufferMonitor none = Pools.EnabledMonitor(_time, o => o.StackTraceDepth = 0);
        using (var pool = Pools.Create(none))
        using (RentFromHere(pool))
        {
            Assert.Equal(string.Empty, Assert.Single(none.GetResident(TimeSpan.Zero)).StackTrace);
            Assert.Equal(0, none.InternedStackCount);
        }
    }

    [Fact]
    public void StackTraceSampling_CapturesOneStackInN_AndStillRecordsEveryBuffer()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o => o.StackTraceSampling = 4);
        using var pool = Pools.Create(monitor);
        var leases = Enumerable.Range(0, 40).Select(_ => RentFromHere(pool)).ToList();

        IReadOnlyList<ResidentBuffer> rows = monitor.GetResident(TimeSpan.Zero);
        Assert.Equal(40, rows.Count);
        Assert.Equal(10, rows.Count(r => r.StackTrace.Length > 0));
        Assert.All(rows.Where(r => r.StackTrace.Length > 0), r => Assert.StartsWith("OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.RentFromHere", r.StackTrace, StringComparison.Ordinal));
        leases.ForEach(l => l.Dispose());
        Assert.Equal("StackTraceSampling", Assert.Throws<ArgumentOutOfRangeException>(() => new ResidentBufferMonitorOptions { StackTraceSampling = 0 }).ParamName);
    }

    [Fact]
    public void IdenticalStacks_AreInternedOnce()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time);
        using var pool = Pools.Create(monitor);
        var leases = new List<DirectBuffer>();
        for (int i = 0; i < 20; i++)
        {
            leases.Add(RentFromHere(pool));
        }

        leases.Add(RentFromElsewhere(pool));
        Assert.Equal(2, monitor.InternedStackCount);
        IReadOnlyList<ResidentBuffer> rows = monitor.GetResident(TimeSpan.Zero);
        Assert.Same(rows[0].StackTrace, rows[19].StackTrace);
        Assert.StartsWith("OffHeapTracker.Tests.Monitoring.ResidentBufferMonitorTests.RentFromElsewhere", rows[20].StackTrace, StringComparison.Ordinal);
        leases.ForEach(l => l.Dispose());
    }

    [Fact]
    public void MaxRecords_BoundsTheTable_AndCountsTheRestAsDropped()
    {
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o =>
        {
            o.MaxRecords = 5;
            o.LoggerFactory = logs;
        });
        using var pool = Pools.Create(monitor);
        var leases = Enumerable.Range(0, 8).Select(_ => pool.Rent(10)).ToList();

        Assert.Equal(5, monitor.Count);
        Assert.Equal(3, monitor.DroppedRecords);
        Assert.Single(logs.WithEvent("RecordsDropped"));

        // Untracked leases still work and come back cleanly.
        leases.ForEach(l => l.Dispose());
        Assert.Equal(0, monitor.Count);
        Assert.Equal(0, pool.GetStatistics().InUseBytes);
    }

    [Fact]
    public void MaxStacks_BoundsTheInternedStacks()
    {
        // Depth 1: the stack is just the helper's frame, so both RentFromHere calls share it.
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(_time, o =>
        {
            o.MaxStacks = 1;
            o.StackTraceDepth = 1;
        });
        using var pool = Pools.Create(monitor);
        using DirectBuffer a = RentFromHere(pool);
        using DirectBuffer b = RentFromHere(pool);
        using DirectBuffer c = RentFromElsewhere(pool);

        Assert.Equal(1, monitor.InternedStackCount);
        Assert.Equal(2, monitor.Count);
        Assert.Equal(1, monitor.DroppedRecords);
    }

    [Fact]
    public async Task EnableAndDisable_RacingThousandsOfRents_ThrowNothingAndLeaveNoRecordBehind()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { StackTraceDepth = 2 });
        using var pool = Pools.Create(monitor);
        using var stop = new CancellationTokenSource();
        const int Workers = 3;
        long[] iterations = new long[Workers];
        int corrupt = 0;

        Task[] workers = Enumerable.Range(0, Workers).Select(t => Task.Factory.StartNew(() =>
        {
            var random = new Random(t);
            var held = new List<DirectBuffer>();
            while (!stop.IsCancellationRequested)
            {
                DirectBuffer lease = pool.Rent(random.Next(1, 9000));
                lease.GetSpan()[0] = unchecked((byte)lease.Id);
                held.Add(lease);
                if (held.Count > 16)
                {
                    foreach (DirectBuffer old in held)
                    {
                        if (old.GetSpan()[0] != unchecked((byte)old.Id))
                        {
                            Interlocked.Increment(ref corrupt);
                        }

                        old.Dispose();
                    }

                    held.Clear();
                }

                Volatile.Write(ref iterations[t], iterations[t] + 1);
            }

            held.ForEach(l => l.Dispose());
        }, TaskCreationOptions.LongRunning)).ToArray();

        try
        {
            for (int i = 0; i < 300; i++)
            {
                monitor.Enable();
                Thread.SpinWait(i * 10);
                monitor.Disable();

                // Once every rent that was in flight during Disable has finished, the table must be empty: a record
                // added by a rent that raced with Disable may not survive it. (Were Disable to clear the table and
                // then switch off, a rent that saw the monitor on could add its record after the clear, and that
                // record would stay until the next Disable.) Two more iterations per worker take microseconds; 10 s
                // only catches a worker that stopped, even when another build starves these threads.
                long[] seen = Enumerable.Range(0, Workers).Select(w => Volatile.Read(ref iterations[w])).ToArray();
                bool advanced = SpinWait.SpinUntil(
                    () => Enumerable.Range(0, Workers).All(w => Volatile.Read(ref iterations[w]) >= seen[w] + 2),
                    TimeSpan.FromSeconds(10));
                Assert.True(advanced, string.Join("; ", workers.Select(w => w.Exception?.ToString() ?? w.Status.ToString())));
                Assert.Equal(0, monitor.Count);
            }
        }
        finally
        {
            // Stop the workers even when an assertion failed, or they would keep the test host alive.
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }

        Assert.Equal(0, corrupt);
        Assert.Equal(0, monitor.Count);
        Assert.Equal(0, pool.GetStatistics().InUseBytes);
        Assert.Equal(0, pool.GetStatistics().MonitorErrorCount);
    }

    [Fact]
    public void Options_AreValidatedWhenSet()
    {
        var options = new ResidentBufferMonitorOptions();
        Assert.Equal("StackTraceDepth", Assert.Throws<ArgumentOutOfRangeException>(() => options.StackTraceDepth = -1).ParamName);
        Assert.Equal("StackTraceDepth", Assert.Throws<ArgumentOutOfRangeException>(() => options.StackTraceDepth = 257).ParamName);
        Assert.Equal("MaxRecords", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxRecords = 0).ParamName);
        Assert.Equal("MaxStacks", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxStacks = 0).ParamName);
        Assert.Throws<ArgumentNullException>(() => options.TimeProvider = null!);
        Assert.Throws<ArgumentNullException>(() => options.LoggerFactory = null!);
        Assert.Equal("Stacks", Assert.Throws<ArgumentOutOfRangeException>(() => options.Stacks = (StackPolicy)7).ParamName);
        ArgumentOutOfRangeException budget = Assert.Throws<ArgumentOutOfRangeException>(() => options.StackBudget = 0);
        Assert.Equal("StackBudget", budget.ParamName);
        Assert.Contains("between 0.0001 and 1", budget.Message, StringComparison.Ordinal);
        Assert.Equal("StackBudget", Assert.Throws<ArgumentOutOfRangeException>(() => options.StackBudget = double.NaN).ParamName);
        Assert.Equal(StackPolicy.Budgeted, options.Stacks);
        Assert.False(options.CaptureDisposeStacks);
    }

    [Theory]
    [InlineData(StackPolicy.Budgeted, 1, true, 1)]
    [InlineData(StackPolicy.Every, 1, false, 1)]
    [InlineData(StackPolicy.Budgeted, 16, false, 16)]
    public void StackPolicy_BuildsTheCaptureItNames(StackPolicy policy, int sampling, bool budgeted, int interval)
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = policy, StackTraceSampling = sampling });

        Assert.Equal(policy, monitor.Stacks);
        Assert.Equal(budgeted, monitor.StackCapture!.IsBudgeted);
        Assert.Equal(interval, monitor.StackCapture.CurrentInterval);
    }

    [Fact]
    public void NoStackPolicy_OrDepthZero_CapturesNothing()
    {
        Assert.Null(new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.None }).StackCapture);
        var depthZero = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { StackTraceDepth = 0 });
        Assert.Null(depthZero.StackCapture);
        Assert.Equal(StackPolicy.None, depthZero.Stacks);
    }

    [Fact]
    public void SetLoggerFactory_RoutesLaterEventsToTheNewLogger()
    {
        var monitor = new ResidentBufferMonitor();
        var logs = new CapturingLoggerFactory();
        monitor.SetLoggerFactory(logs);
        monitor.Enable();
        Assert.Single(logs.WithEvent("MonitorEnabled"));
        Assert.Throws<ArgumentNullException>(() => monitor.SetLoggerFactory(null!));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentFromHere(DirectBufferPool pool) => pool.Rent(64);

    [MethodImpl(MethodImplOptions.NoInlining)]
    [System.Diagnostics.StackTraceHidden]
    private static DirectBuffer HiddenHelper(DirectBufferPool pool) => pool.Rent(64);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentFromElsewhere(DirectBufferPool pool) => pool.Rent(64);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<DirectBuffer> RentAfterYieldAsync(DirectBufferPool pool)
    {
        await Task.Delay(1);
        return pool.Rent(64);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<DirectBuffer> RentAsync(DirectBufferPool pool)
    {
        await Task.Yield();
        return pool.Rent(64);
    }
}
