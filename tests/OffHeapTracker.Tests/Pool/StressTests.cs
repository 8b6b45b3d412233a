using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;
using Xunit.Abstractions;

namespace OffHeapTracker.Tests.Pool;

/// <summary>Everything at once: no byte of one renter is ever seen by another, no counter adrift, nothing lost.</summary>
/// <remarks>
/// GC-driven (dropped leases, wrappers with finalizers, a thread forcing collections), so it runs apart from other
/// tests. Every worker does a fixed number of operations, and each victim's fate is decided by its operation index,
/// so every run does the same work and every kind of misuse happens in every run, however slow the machine.
/// </remarks>
[Collection(ProcessWideState.Name)]
[Trait("Category", "Stress")]
public sealed class StressTests(ITestOutputHelper output)
{
    private const int Workers = 4;
    private const int OperationsPerWorker = 150_000;
    private const int ExitingThreads = 200;
    private const int RentsPerExitingThread = 40;
    private const int MaxPooled = 64 * 1024;

    // A hang guard, not a time budget: no assertion depends on how much work fits in it. The fixed work takes about
    // 4 s on a 2-core machine; two minutes leaves room for a machine many times slower (another build running),
    // while a deadlocked worker fails the test instead of hanging the whole run.
    private static readonly TimeSpan s_hangGuard = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task RandomRentsWithEveryMisuse_AndTheMonitorToggling_NeverShareABlockOrLoseACount()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { StackTraceDepth = 4 });
        var allocator = new TestAllocator();
        var pool = new DirectBufferPool(new DirectBufferPoolOptions
        {
            Name = "stress",
            Monitor = monitor,
            MaxPooledBufferSize = MaxPooled,
            CapacityBytes = 16 << 20,
            Allocator = allocator,
            TrimAfter = Timeout.InfiniteTimeSpan, // trimmed by hand below, while the workers run
        });

        var totals = new Totals();
        var stopwatch = Stopwatch.StartNew();
        using var workersDone = new CancellationTokenSource();

        // Switches the monitor, trims (reaching idle and dead threads' caches) and forces collections, so dropped
        // leases and wrappers are finalized while the workers run.
        Task background = Task.Factory.StartNew(
            () =>
            {
                var random = new Random(99);
                while (!workersDone.IsCancellationRequested)
                {
                    monitor.Enable();
                    Thread.Sleep(random.Next(3)); // on for 0-2 ms, so some rents are recorded and some race the switch
                    monitor.RecordPool = random.Next(2) == 0;
                    monitor.Disable();
                    Interlocked.Add(ref totals.Trimmed, pool.TrimIdleSlabs());
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                }
            },
            TaskCreationOptions.LongRunning);

        // Threads that fill their caches and exit: their blocks must come back to the others.
        Task exiting = Task.Factory.StartNew(
            () =>
            {
                for (int i = 0; i < ExitingThreads; i++)
                {
                    var thread = new Thread(() =>
                    {
                        var leases = Enumerable.Range(0, RentsPerExitingThread).Select(n => pool.Rent(512 << (n % 8))).ToList();
                        leases.ForEach(l => l.GetSpan().Fill(Pattern(l)));
                        leases.ForEach(l =>
                        {
                            if (l.GetSpan().IndexOfAnyExcept(Pattern(l)) >= 0)
                            {
                                Interlocked.Increment(ref totals.Corrupt);
                            }

                            l.Dispose();
                        });
                        Interlocked.Add(ref totals.Rents, RentsPerExitingThread);
                    });
                    thread.Start();
                    thread.Join();
                }
            },
            TaskCreationOptions.LongRunning);

        Task<Worker>[] workers = Enumerable.Range(0, Workers)
            .Select(id => Task.Factory.StartNew(() => new Worker(id, pool).Run(), TaskCreationOptions.LongRunning))
            .ToArray();
        Worker[] results;
        try
        {
            results = await Task.WhenAll(workers).WaitAsync(s_hangGuard);
            await exiting.WaitAsync(s_hangGuard);
        }
        finally
        {
            await workersDone.CancelAsync();
        }

        await background.WaitAsync(s_hangGuard);
        monitor.Disable();

        foreach (Worker worker in results)
        {
            totals.Add(worker);
        }

        // Pins outlived their dropped leases: their bytes were never handed on. Now let those leases go too.
        foreach (Worker worker in results)
        {
            worker.CheckAndUnpin(ref totals.Corrupt);
        }

        Gc.CollectAndFinalize();

        // Every dropped lease's span is still "in use": its bytes must still be the dropper's.
        foreach (Worker worker in results)
        {
            worker.CheckDroppedViews(ref totals.Corrupt);
        }

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        long leaked = totals.Dropped + totals.Pinned;
        output.WriteLine(
            $"{totals.Rents:N0} rents in {stopwatch.Elapsed.TotalSeconds:0.0} s: {totals.Dropped} dropped with spans in use, {totals.Pinned} pinned then dropped, " +
            $"{totals.Wrapped} disposed by finalizers, {totals.DoubleDisposes} double disposes, {stats.FallbackCount:N0} fallbacks, {totals.Trimmed:N0} bytes trimmed, {totals.Corrupt} corrupted");
        Assert.Equal(0, totals.Corrupt);
        Assert.Equal(((long)Workers * OperationsPerWorker) + (ExitingThreads * RentsPerExitingThread), totals.Rents);
        Assert.Equal(totals.Rents, stats.TotalRents);
        Assert.Equal(leaked, stats.LeakedCount);
        Assert.Equal(totals.LeakedBytes, stats.LeakedBytes);
        Assert.Equal(totals.DoubleDisposes, stats.DoubleDisposeCount);
        Assert.Equal(leaked, stats.OutstandingCount);
        Assert.Equal(totals.LeakedBytes, stats.InUseBytes);
        Assert.Equal(0, stats.MonitorErrorCount);
        Assert.Equal(totals.Trimmed, stats.TrimmedBytes);
        Assert.True(stats.ReservedBytes <= 16 << 20);
        Assert.Equal(0, monitor.Count);

        // Every unpooled allocation was freed once, except those of leaked leases, which are kept.
        Assert.Equal(totals.LeakedUnpooled, allocator.Allocations - allocator.Frees);
        pool.Dispose();

        // Disposal frees every slab that holds no leaked block, and only those (the allocator fails the test on a
        // second free of the same slab).
        IReadOnlyList<(nint Start, nuint Length)> slabsLeft = allocator.LiveAlignedAllocations;
        List<nint> leakedPooled = [.. results.SelectMany(w => w.LeakedPooledAddresses)];
        Assert.Equal(leaked - totals.LeakedUnpooled, leakedPooled.Count);
        Assert.All(leakedPooled, address => Assert.Contains(slabsLeft, slab => Holds(slab, address)));
        Assert.All(slabsLeft, slab => Assert.Contains(leakedPooled, address => Holds(slab, address)));
        Assert.Equal(allocator.AlignedAllocations - allocator.AlignedFrees, slabsLeft.Count);
        output.WriteLine($"Disposal kept {slabsLeft.Count} of {allocator.AlignedAllocations} slabs for {leakedPooled.Count} leaked pooled blocks.");

        // Leaked leases count as settled: nothing is left to wait for, so the wait completes at once.
        Assert.True(pool.WhenAllReturnedAsync(TimeSpan.Zero).IsCompletedSuccessfully);
    }

    private static bool Holds((nint Start, nuint Length) slab, nint address) =>
        unchecked((nuint)address - (nuint)slab.Start) < slab.Length; // below the start wraps round to a huge offset

    private static byte Pattern(DirectBuffer lease) => unchecked((byte)((lease.Id * 0x9E3779B1) >> 24));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropWrapped(DirectBuffer lease) => _ = new DisposingWrapper(lease);

    private sealed class Totals
    {
        public long Rents;
        public long Dropped;
        public long Pinned;
        public long Wrapped;
        public long DoubleDisposes;
        public long LeakedBytes;
        public long LeakedUnpooled;
        public long Corrupt;
        public long Trimmed;

        public void Add(Worker worker)
        {
            Rents += worker.Rents;
            Dropped += worker.DroppedViews.Count;
            Pinned += worker.Pins.Count;
            Wrapped += worker.Wrapped;
            DoubleDisposes += worker.DoubleDisposes;
            LeakedBytes += worker.LeakedBytes;
            LeakedUnpooled += worker.LeakedUnpooled;
            Corrupt += worker.Corrupt;
        }
    }

    private sealed unsafe class Worker(int id, DirectBufferPool pool)
    {
        public long Rents;
        public long Wrapped;
        public long DoubleDisposes;
        public long LeakedBytes;
        public long LeakedUnpooled;
        public long Corrupt;

        public List<(nint Address, int Length, byte Pattern)> DroppedViews { get; } = [];

        public List<(MemoryHandle Handle, int Length, byte Pattern)> Pins { get; } = [];

        /// <summary>Gets the first byte of every pooled block this worker leaked, to check which slabs disposal keeps.</summary>
        public List<nint> LeakedPooledAddresses { get; } = [];

        public Worker Run()
        {
            var random = new Random(id);
            var held = new List<DirectBuffer>();
            for (int op = 0; op < OperationsPerWorker; op++)
            {
                int size = random.Next(100) switch
                {
                    < 60 => random.Next(1, 4097),
                    < 90 => random.Next(4097, MaxPooled + 1),
                    _ => random.Next(MaxPooled + 1, 300_000),
                };
                DirectBuffer lease = pool.Rent(size, random.Next(4) == 0 ? BufferType.Pool : BufferType.Normal);
                Rents++;
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
                        Corrupt++;
                    }

                    Settle(victim, op);
                }
            }

            foreach (DirectBuffer lease in held)
            {
                if (lease.GetSpan().IndexOfAnyExcept(Pattern(lease)) >= 0)
                {
                    Corrupt++;
                }

                lease.Dispose();
            }

            return this;
        }

        public void CheckAndUnpin(ref long corrupt)
        {
            for (int i = 0; i < Pins.Count; i++)
            {
                (MemoryHandle handle, int length, byte pattern) = Pins[i];
                if (new ReadOnlySpan<byte>(handle.Pointer, length).IndexOfAnyExcept(pattern) >= 0)
                {
                    corrupt++;
                }

                handle.Dispose();
                Pins[i] = (default, length, pattern);
            }
        }

        public void CheckDroppedViews(ref long corrupt)
        {
            foreach ((nint address, int length, byte pattern) in DroppedViews)
            {
                if (new ReadOnlySpan<byte>((void*)address, length).IndexOfAnyExcept(pattern) >= 0)
                {
                    corrupt++;
                }
            }
        }

        /// <summary>The victim's fate, by operation index, so every kind happens in every run.</summary>
        private void Settle(DirectBuffer victim, int op)
        {
            if (op % 211 == 0)
            {
                // The common bug: keep using a span, drop the lease. Its bytes must stay ours.
                DroppedViews.Add(((nint)Unsafe.AsPointer(ref victim.GetSpan()[0]), victim.Length, Pattern(victim)));
                CountLeak(victim);
            }
            else if (op % 223 == 1)
            {
                // A pin outlives the lease reference: it keeps the lease alive, so nothing is found or reissued.
                Pins.Add((victim.Memory.Pin(), victim.Length, Pattern(victim)));
                CountLeak(victim);
            }
            else if (op % 227 == 2)
            {
                // Disposed later by another object's finalizer, in the same collection as the lease, in any order.
                DropWrapped(victim);
                Wrapped++;
            }
            else
            {
                victim.Dispose();
                if (op % 50 == 3)
                {
                    victim.Dispose();
                    DoubleDisposes++;
                }
            }
        }

        private void CountLeak(DirectBuffer victim)
        {
            LeakedBytes += victim.Length;
            if (victim.IsPooled)
            {
                LeakedPooledAddresses.Add(Addresses.Of(victim));
            }
            else
            {
                LeakedUnpooled++;
            }
        }
    }

    private sealed class DisposingWrapper(DirectBuffer lease)
    {
        ~DisposingWrapper() => lease.Dispose();
    }
}
