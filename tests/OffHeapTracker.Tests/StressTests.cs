using System.Diagnostics;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;
using Xunit.Abstractions;

namespace OffHeapTracker.Tests;

/// <summary>Everything at once, for a bounded time: no byte handed to two owners, no counter adrift, nothing left over.</summary>
/// <remarks>GC-driven (dropped leases), so it runs apart from other tests.</remarks>
[Collection(ProcessWideState.Name)]
public sealed class StressTests(ITestOutputHelper output)
{
    private const int Workers = 4;
    private const int MaxOperationsPerWorker = 1_500_000;
    private const int MaxPooled = 64 * 1024;
    private static readonly TimeSpan s_duration = TimeSpan.FromSeconds(8);

    [Fact]
    public async Task RandomRentsFromSeveralThreads_WithFaultsAndTheMonitorToggling_KeepEveryByteAndCounter()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { StackTraceDepth = 4 });
        var allocator = new TestAllocator();
        var pool = new DirectBufferPool(new DirectBufferPoolOptions
        {
            Name = "stress",
            Monitor = monitor,
            MaxPooledBufferSize = MaxPooled,
            CapacityBytes = 32 << 20,
            Allocator = allocator,
            TrimAfter = Timeout.InfiniteTimeSpan, // trimmed by hand below, while the workers run
        });

        long rents = 0, doubleDisposes = 0, dropped = 0, corrupt = 0, trimmed = 0;
        var stopwatch = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(s_duration);

        Task toggler = Task.Factory.StartNew(
            () =>
            {
                var random = new Random(99);
                while (!stop.IsCancellationRequested)
                {
                    monitor.Enable();
                    Thread.Sleep(random.Next(3));
                    monitor.RecordPool = random.Next(2) == 0;
                    monitor.Disable();
                    trimmed += pool.TrimIdleSlabs();
                    Thread.Sleep(random.Next(3));
                }
            },
            TaskCreationOptions.LongRunning);

        Task[] workers = Enumerable.Range(0, Workers).Select(worker => Task.Factory.StartNew(
            () =>
            {
                var random = new Random(worker);
                var held = new List<DirectBuffer>();
                long myRents = 0, myDoubles = 0, myDropped = 0, myCorrupt = 0;
                for (int op = 0; op < MaxOperationsPerWorker && !stop.IsCancellationRequested; op++)
                {
                    int size = random.Next(100) switch
                    {
                        < 60 => random.Next(1, 4097),
                        < 90 => random.Next(4097, MaxPooled + 1),
                        _ => random.Next(MaxPooled + 1, 300_000),
                    };
                    DirectBuffer lease = pool.Rent(size, random.Next(4) == 0 ? BufferType.Pool : BufferType.Normal);
                    myRents++;
                    lease.GetSpan().Fill(Pattern(lease));
                    held.Add(lease);

                    if (held.Count > 24 || random.Next(3) == 0)
                    {
                        int index = random.Next(held.Count);
                        DirectBuffer victim = held[index];
                        held[index] = held[^1];
                        held.RemoveAt(held.Count - 1);
                        if (victim.GetSpan().IndexOfAnyExcept(Pattern(victim)) >= 0)
                        {
                            myCorrupt++;
                        }

                        int fate = random.Next(200);
                        if (fate == 0)
                        {
                            myDropped++; // left to the finalizer
                        }
                        else
                        {
                            victim.Dispose();
                            if (fate < 5)
                            {
                                victim.Dispose();
                                myDoubles++;
                            }
                        }
                    }
                }

                foreach (DirectBuffer lease in held)
                {
                    if (lease.GetSpan().IndexOfAnyExcept(Pattern(lease)) >= 0)
                    {
                        myCorrupt++;
                    }

                    lease.Dispose();
                }

                Interlocked.Add(ref rents, myRents);
                Interlocked.Add(ref doubleDisposes, myDoubles);
                Interlocked.Add(ref dropped, myDropped);
                Interlocked.Add(ref corrupt, myCorrupt);
            },
            TaskCreationOptions.LongRunning)).ToArray();

        await Task.WhenAll(workers);
        await stop.CancelAsync();
        await toggler;
        monitor.Disable();
        Gc.CollectAndFinalize();

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        output.WriteLine($"{rents:N0} rents in {stopwatch.Elapsed.TotalSeconds:0.0} s: {dropped} dropped, {doubleDisposes} double disposes, {stats.FallbackCount:N0} fallbacks, {trimmed:N0} bytes trimmed, {corrupt} corrupted");
        Assert.Equal(trimmed, stats.TrimmedBytes);
        Assert.Equal(0, corrupt);
        Assert.Equal(rents, stats.TotalRents);
        Assert.Equal(dropped, stats.LeakedCount);
        Assert.Equal(doubleDisposes, stats.DoubleDisposeCount);
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Equal(0, stats.InUseBytes);
        Assert.Equal(0, stats.UnpooledInUseBytes);
        Assert.Equal(0, stats.MonitorErrorCount);
        Assert.True(stats.FallbackCount > 0, "the run never left the pooled sizes");
        Assert.True(stats.ReservedBytes <= 32 << 20);
        Assert.True(dropped > 0 && doubleDisposes > 0, $"too short a run: {rents} rents in {stopwatch.Elapsed}");
        Assert.Equal(0, monitor.Count);

        // Every unpooled allocation was freed once; disposing the pool frees every slab once.
        Assert.Equal(allocator.Allocations, allocator.Frees);
        pool.Dispose();
        Assert.Equal(0, allocator.LiveCount);
        Assert.Equal(allocator.AlignedAllocations, allocator.AlignedFrees);
    }

    private static byte Pattern(DirectBuffer lease) => unchecked((byte)((lease.Id * 0x9E3779B1) >> 24));
}
