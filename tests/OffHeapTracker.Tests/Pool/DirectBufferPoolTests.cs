using System.Buffers;
using System.Runtime.InteropServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

public sealed class DirectBufferPoolTests
{
    private readonly ResidentBufferMonitor _off = new();

    public static TheoryData<int, int> SizesAndBlocks => new()
    {
        { 0, 512 },
        { 1, 512 },
        { 512, 512 },
        { 513, 1024 },
        { 4096, 4096 },
        { 4097, 8192 },
        { 65_536, 65_536 },
        { 1024 * 1024, 1024 * 1024 },
    };

    [Theory]
    [MemberData(nameof(SizesAndBlocks))]
    public void Rent_RoundsUpToThePowerOfTwoBlock(int requested, int expectedLength)
    {
        using var pool = Pools.Create(_off);
        using DirectBuffer lease = pool.Rent(requested);
        Assert.Equal(expectedLength, lease.Length);
        Assert.Equal(expectedLength, lease.Memory.Length);
        Assert.Equal(expectedLength, lease.GetSpan().Length);
    }

    [Fact]
    public void Rent_MinusOne_ReturnsTheDefaultSizeAsANormalBuffer()
    {
        using var pool = Pools.Create(_off);
        using IMemoryOwner<byte> owner = ((MemoryPool<byte>)pool).Rent();
        var lease = Assert.IsType<DirectBuffer>(owner);
        Assert.Equal(DirectBufferPool.DefaultBufferSize, lease.Length);
        Assert.Equal(BufferType.Normal, lease.BufferType);
    }

    [Theory]
    [InlineData(-2)]
    [InlineData(int.MinValue)]
    public void Rent_NegativeSizeOtherThanMinusOne_ThrowsNamingTheParameterAndRange(int size)
    {
        using var pool = Pools.Create(_off);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(size));
        Assert.Equal("minBufferSize", ex.ParamName);
        Assert.Contains($"between 0 and {pool.MaxBufferSize}", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, pool.OutstandingCount);
    }

    [Fact]
    public void Rent_AboveMaxBufferSize_ThrowsAndLosesNothing()
    {
        using var pool = Pools.Create(_off, o => o.MaxBufferSize = 1 << 20);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent((1 << 20) + 1));
        Assert.Equal("minBufferSize", ex.ParamName);
        Assert.Contains("1048576", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, pool.GetStatistics().TotalRents);
    }

    [Fact]
    public void Rent_UndefinedBufferType_Throws()
    {
        using var pool = Pools.Create(_off);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(10, (BufferType)7));
        Assert.Equal("bufferType", ex.ParamName);
    }

    [Fact]
    public void Rent_GivesEachLeaseItsOwnBytes()
    {
        using var pool = Pools.Create(_off);
        var leases = new List<DirectBuffer>();
        for (int i = 0; i < 600; i++)
        {
            // Mixed sizes: several classes, several slabs of the 4 KiB class.
            leases.Add(pool.Rent((i % 3) switch { 0 => 100, 1 => 4096, _ => 20_000 }));
        }

        for (int i = 0; i < leases.Count; i++)
        {
            leases[i].GetSpan().Fill(unchecked((byte)i));
        }

        var ranges = leases.Select(l => (Start: (ulong)Addresses.Of(l), l.Length)).OrderBy(r => r.Start).ToList();
        for (int i = 1; i < ranges.Count; i++)
        {
            Assert.True(ranges[i - 1].Start + (ulong)ranges[i - 1].Length <= ranges[i].Start, "two leases overlap");
        }

        for (int i = 0; i < leases.Count; i++)
        {
            Assert.True(leases[i].GetSpan().IndexOfAnyExcept(unchecked((byte)i)) < 0, $"lease {i} was overwritten");
            leases[i].Dispose();
        }
    }

    [Fact]
    public void Rent_AfterReturn_ReusesTheBlock()
    {
        using var pool = Pools.Create(_off);
        DirectBuffer first = pool.Rent(4096);
        nint address = Addresses.Of(first);
        first.Dispose();
        using DirectBuffer second = pool.Rent(4096);
        Assert.Equal(address, Addresses.Of(second));
        Assert.Equal(1, pool.GetStatistics().ReservedBytes / (1 << 20));
    }

    [Fact]
    public void Statistics_TrackInUseHighWaterAndOutstanding_AndReturnToZero()
    {
        using var pool = Pools.Create(_off);
        DirectBuffer a = pool.Rent(4096);
        DirectBuffer b = pool.Rent(1000, BufferType.Pool);

        DirectBufferPoolStatistics during = pool.GetStatistics();
        Assert.Equal("test", during.Name);
        Assert.Equal(4096 + 1024, during.InUseBytes);
        Assert.Equal(2, during.OutstandingCount);
        Assert.Equal(2, during.TotalRents);
        Assert.Equal(2L << 20, during.ReservedBytes);
        Assert.Equal(during.ReservedBytes - during.InUseBytes, during.FreeBytes);

        a.Dispose();
        b.Dispose();
        DirectBufferPoolStatistics after = pool.GetStatistics();
        Assert.Equal(0, after.InUseBytes);
        Assert.Equal(0, after.OutstandingCount);
        Assert.Equal(4096 + 1024, after.HighWaterBytes);
        Assert.Equal(2L << 20, after.ReservedBytes);
        Assert.Equal(after.ReservedBytes, after.FreeBytes);
    }

    [Fact]
    public void Rent_AboveMaxPooledSize_IsServedUnpooled_CountedTrackedAndFreed()
    {
        var time = new ManualTimeProvider();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(time);
        var allocator = new TestAllocator();
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(monitor, o =>
        {
            o.MaxPooledBufferSize = 64 * 1024;
            o.Allocator = allocator;
            o.LoggerFactory = logs;
        });

        DirectBuffer big = pool.Rent(100_000);
        Assert.Equal(100_000, big.Length);
        big.GetSpan().Fill(0xAB);
        Assert.Equal(1, allocator.Allocations);

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(1, stats.FallbackCount);
        Assert.Equal(100_000, stats.FallbackInUseBytes);
        Assert.Equal(100_000, stats.InUseBytes);
        Assert.Equal(0, stats.ReservedBytes);

        ResidentBuffer record = Assert.Single(monitor.GetResident(TimeSpan.Zero));
        Assert.Equal(big.Id, record.Id);
        Assert.Equal(100_000, record.AllocateSize);

        LogEntry warning = Assert.Single(logs.WithEvent("FallbackAllocation"));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.Contains("larger than the largest pooled size", warning.Message, StringComparison.Ordinal);

        big.Dispose();

        // The peak is remembered without anyone reading statistics at the peak: the rent flushed it.
        var quiet = Pools.Create(monitor, o => o.MaxPooledBufferSize = 4096);
        quiet.Rent(100_000).Dispose();
        Assert.Equal(100_000, quiet.GetStatistics().HighWaterBytes);
        quiet.Dispose();

        Assert.Equal(1, allocator.Frees);
        Assert.Equal(0, allocator.LiveCount);
        Assert.Empty(monitor.GetResident(TimeSpan.Zero));
        Assert.Equal(0, pool.GetStatistics().FallbackInUseBytes);
    }

    [Fact]
    public void Rent_WhenCapacityIsUsedUp_FallsBackUnpooled()
    {
        var allocator = new TestAllocator();
        using var pool = Pools.Create(_off, o =>
        {
            o.CapacityBytes = 1 << 20;
            o.Allocator = allocator;
        });

        // The capacity holds exactly one 1 MiB slab: 256 blocks of 4 KiB.
        var leases = Enumerable.Range(0, 256).Select(_ => pool.Rent(4096)).ToList();
        Assert.Equal(0, pool.GetStatistics().FallbackCount);

        DirectBuffer extra = pool.Rent(4096);
        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(1, stats.FallbackCount);
        Assert.Equal(1 << 20, stats.ReservedBytes);
        Assert.Equal(4096, stats.FallbackInUseBytes);
        Assert.Equal((1 << 20) + 4096, stats.InUseBytes);
        Assert.Equal(1, allocator.AlignedAllocations);
        Assert.Equal(1, allocator.Allocations);

        extra.Dispose();
        leases.ForEach(l => l.Dispose());
        Assert.Equal(0, pool.GetStatistics().InUseBytes);
        Assert.Equal(1, allocator.LiveCount);
    }

    [Fact]
    public void Rent_WithZeroCapacity_ServesEverythingUnpooled()
    {
        using var pool = Pools.Create(_off, o => o.CapacityBytes = 0);
        using DirectBuffer lease = pool.Rent(10);
        Assert.Equal(10, lease.Length);
        Assert.Equal(1, pool.GetStatistics().FallbackCount);
    }

    [Fact]
    public void FallbackWarning_IsLoggedAtMostOncePer10Seconds_WithTheCountInBetween()
    {
        var time = new ManualTimeProvider();
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(_off, o =>
        {
            o.MaxPooledBufferSize = 4096;
            o.LoggerFactory = logs;
            o.TimeProvider = time;
        });

        for (int i = 0; i < 50; i++)
        {
            pool.Rent(10_000).Dispose();
        }

        Assert.Single(logs.WithEvent("FallbackAllocation"));

        time.Advance(TimeSpan.FromSeconds(9));
        pool.Rent(10_000).Dispose();
        Assert.Single(logs.WithEvent("FallbackAllocation"));

        time.Advance(TimeSpan.FromSeconds(1));
        pool.Rent(10_000).Dispose();
        IReadOnlyList<LogEntry> warnings = logs.WithEvent("FallbackAllocation");
        Assert.Equal(2, warnings.Count);
        Assert.Contains("51 fallbacks since the last warning, 52 in total", warnings[1].Message, StringComparison.Ordinal);
        Assert.Equal(52, pool.GetStatistics().FallbackCount);
    }

    [Fact]
    public void Rent_WhenNativeAllocationFails_ThrowsOutOfMemory_AndStaysConsistent()
    {
        var allocator = new TestAllocator { Fail = true };
        using var pool = Pools.Create(_off, o => o.Allocator = allocator);

        Assert.Throws<OutOfMemoryException>(() => pool.Rent(4096));
        Assert.Throws<OutOfMemoryException>(() => pool.Rent(2 << 20));
        DirectBufferPoolStatistics failed = pool.GetStatistics();
        Assert.Equal(0, failed.OutstandingCount);
        Assert.Equal(0, failed.ReservedBytes);
        Assert.Equal(0, failed.InUseBytes);

        allocator.Fail = false;
        using DirectBuffer lease = pool.Rent(4096);
        Assert.Equal(1 << 20, pool.GetStatistics().ReservedBytes);
    }

    [Fact]
    public async Task Rent_ThatFailsHalfway_LeavesNothingTakenAndDisposeDoesNotHang()
    {
        var allocator = new TestAllocator();
        var pool = Pools.Create(_off, o => o.Allocator = allocator);
        pool.Rent(4096).Dispose(); // a slab exists; the next failure is the unpooled allocation, after the checks

        allocator.Fail = true;
        Assert.Throws<OutOfMemoryException>(() => pool.Rent(2 << 20));
        allocator.Fail = false;

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Equal(0, stats.InUseBytes);

        // Dispose waits for rents in flight; a failed rent must not look like one. Disposing takes milliseconds; a
        // hang is forever, so 10 s tells the two apart even on a 2-core machine busy with another build.
        Task disposing = Task.Run(pool.Dispose);
        Assert.Same(disposing, await Task.WhenAny(disposing, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.Equal(0, allocator.LiveCount);
    }

    [Fact]
    public void Dispose_WithNoLeasesOut_FreesEverySlab()
    {
        var allocator = new TestAllocator();
        var pool = Pools.Create(_off, o => o.Allocator = allocator);
        pool.Rent(512).Dispose();
        pool.Rent(4096).Dispose();
        pool.Rent(100_000).Dispose();
        Assert.Equal(3, allocator.LiveCount);

        pool.Dispose();
        Assert.Equal(0, allocator.LiveCount);
        Assert.Equal(0, pool.GetStatistics().ReservedBytes);
        Assert.True(pool.GetStatistics().IsDisposed);
        pool.Dispose();
        Assert.Equal(3, allocator.AlignedFrees);
    }

    [Fact]
    public void Dispose_WithLeasesOut_KeepsThemValidUntilTheLastComesBack()
    {
        var allocator = new TestAllocator();
        var logs = new CapturingLoggerFactory();
        var pool = Pools.Create(_off, o =>
        {
            o.Allocator = allocator;
            o.LoggerFactory = logs;
        });
        DirectBuffer a = pool.Rent(4096);
        DirectBuffer b = pool.Rent(64);
        a.GetSpan().Fill(1);

        pool.Dispose();
        Assert.Single(logs.WithEvent("PoolDisposedWithOutstanding"));
        Assert.Equal(2, allocator.LiveCount);
        Assert.Throws<ObjectDisposedException>(() => pool.Rent(4096));

        // Still ours: the slab was not freed under us.
        b.GetSpan().Fill(2);
        Assert.True(a.GetSpan().IndexOfAnyExcept((byte)1) < 0);

        a.Dispose();
        Assert.Equal(2, allocator.LiveCount);
        b.Dispose();
        Assert.Equal(0, allocator.LiveCount);
        Assert.Equal(0, pool.OutstandingCount);
    }

    [Fact]
    public async Task Rent_RacingDispose_NeverFreesTwiceOrLeaks()
    {
        for (int round = 0; round < 50; round++)
        {
            var allocator = new TestAllocator();
            var pool = Pools.Create(_off, o => o.Allocator = allocator);
            using var start = new Barrier(3);
            var renters = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < 200; i++)
                {
                    try
                    {
                        pool.Rent(4096).Dispose();
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                }
            })).ToArray();

            start.SignalAndWait();
            pool.Dispose();
            await Task.WhenAll(renters);

            Assert.Equal(0, allocator.LiveCount);
            Assert.Equal(allocator.AlignedAllocations, allocator.AlignedFrees);
        }
    }

    [Fact]
    public void Monitor_SeesEveryAllocationWithItsDetails_AndOneFreePerTrackedLease()
    {
        var monitor = new RecordingMonitor();
        using var pool = Pools.Create(monitor, o => o.MaxPooledBufferSize = 4096);
        DirectBuffer pooled = pool.Rent(3000, BufferType.Pool);
        DirectBuffer unpooled = pool.Rent(5000);

        Assert.Equal(2, monitor.Allocations.Count);
        BufferAllocation first = monitor.Allocations[0];
        Assert.Equal(pooled.Id, first.Id);
        Assert.Equal(Addresses.Of(pooled), first.Address);
        Assert.Equal(3000, first.AllocateSize);
        Assert.Equal(4096, first.ActualSize);
        Assert.Equal(BufferType.Pool, first.BufferType);
        Assert.Equal("test", first.PoolName);
        Assert.True(first.IsPooled);
        Assert.False(monitor.Allocations[1].IsPooled);

        pooled.Dispose();
        unpooled.Dispose();
        unpooled.Dispose();
        Assert.Equal([pooled.Id, unpooled.Id], monitor.Frees);
    }

    [Fact]
    public void Monitor_ThatDeclinesABuffer_IsNotToldOfItsReturn()
    {
        var monitor = new RecordingMonitor { Accept = false };
        using var pool = Pools.Create(monitor);
        pool.Rent(10).Dispose();
        Assert.Single(monitor.Allocations);
        Assert.Empty(monitor.Frees);
    }

    [Fact]
    public void Monitor_ThatIsOff_IsNeverCalled()
    {
        var monitor = new RecordingMonitor { IsEnabled = false };
        using var pool = Pools.Create(monitor);
        pool.Rent(10).Dispose();
        Assert.Empty(monitor.Allocations);
        Assert.Empty(monitor.Frees);
    }

    [Fact]
    public void Monitor_ThatThrows_NeverStopsRentOrDispose_AndIsLoggedAndCounted()
    {
        var logs = new CapturingLoggerFactory();
        var monitor = new ThrowingMonitor();
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);

        DirectBuffer lease = pool.Rent(100);
        lease.GetSpan().Fill(7);
        lease.Dispose();

        Assert.Equal(1, monitor.Allocated);
        Assert.Equal(1, pool.GetStatistics().MonitorErrorCount);
        LogEntry error = Assert.Single(logs.WithEvent("MonitorFailed"));
        Assert.IsType<InvalidOperationException>(error.Exception);
        Assert.Equal(0, pool.GetStatistics().InUseBytes);
    }

    [Fact]
    public void RentAndDispose_WithTheMonitorOff_AllocateNoManagedMemory()
    {
        using var pool = Pools.Create(_off);
        for (int i = 0; i < 1000; i++)
        {
            pool.Rent(4096).Dispose();
            pool.Rent(100, BufferType.Pool).Dispose();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            DirectBuffer lease = pool.Rent(4096);
            lease.GetSpan()[0] = 1;
            _ = lease.Memory.Span[1];
            lease.Dispose();
            pool.Rent(100, BufferType.Pool).Dispose();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void RentAndDispose_WithTheMonitorOnWithoutStacks_AllocateOnlyTheFreshLeaseHandle() => FreshThread.Run(() =>
    {
        // A monitored rent makes a fresh lease object (so stale use is always caught), but only the thin handle:
        // the block's description, the tracking and the safety net live on a recycled core. The whole lease was
        // 144 bytes before the core was split off; the handle is 64 (8 fields and the object header).
        const int Rents = 10_000;
        const int HandleBytes = 64;
        using var pool = Pools.Create(Pools.EnabledMonitor(configure: o => o.Stacks = StackPolicy.None));
        for (int i = 0; i < 1000; i++)
        {
            pool.Rent(4096).Dispose();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Rents; i++)
        {
            DirectBuffer lease = pool.Rent(4096);
            lease.GetSpan()[0] = 1;
            lease.Dispose();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The slack covers a table chunk or a context the run might allocate once, never a second object per rent.
        Assert.InRange(allocated, (long)Rents * HandleBytes, ((long)Rents * HandleBytes) + 8192);
    });

    [Fact]
    public void ConcurrentRentAndDispose_LeavesNothingInUse_AndNoRecords()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor, o => o.CapacityBytes = 4 << 20);
        const int Threads = 4;
        const int PerThread = 5_000;
        int corrupt = 0;

        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            var random = new Random(t);
            var held = new Queue<DirectBuffer>();
            for (int i = 0; i < PerThread; i++)
            {
                DirectBuffer lease = pool.Rent(random.Next(1, 70_000), random.Next(4) == 0 ? BufferType.Pool : BufferType.Normal);
                byte pattern = unchecked((byte)(lease.Id * 31));
                lease.GetSpan().Fill(pattern);
                held.Enqueue(lease);
                if (held.Count > 8 || random.Next(3) == 0)
                {
                    DirectBuffer old = held.Dequeue();
                    if (old.GetSpan().IndexOfAnyExcept(unchecked((byte)(old.Id * 31))) >= 0)
                    {
                        Interlocked.Increment(ref corrupt);
                    }

                    old.Dispose();
                }
            }

            while (held.TryDequeue(out DirectBuffer? rest))
            {
                rest.Dispose();
            }
        });

        Assert.Equal(0, corrupt);
        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(0, stats.InUseBytes);
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Equal(Threads * PerThread, stats.TotalRents);
        Assert.True(stats.ReservedBytes <= 4 << 20);
        Assert.Equal(0, monitor.Count);
        Assert.Empty(monitor.GetResident(TimeSpan.Zero));
    }

    [Fact]
    public void ThreadsThatExit_KeepTheirCounts_AndGiveBackTheirCachedBlocks()
    {
        var allocator = new TestAllocator();
        var pool = Pools.Create(_off, o => o.Allocator = allocator);

        // Enough short-lived threads to make the pool prune dead threads' state more than once.
        for (int i = 0; i < 60; i++)
        {
            var thread = new Thread(() =>
            {
                for (int j = 0; j < 10; j++)
                {
                    pool.Rent(4096).Dispose();
                }
            });
            thread.Start();
            thread.Join();
        }

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(600, stats.TotalRents);
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Equal(0, stats.InUseBytes);

        // Pruned threads' cached blocks went back to the shared list, so one slab still serves a full burst.
        var burst = Enumerable.Range(0, 256).Select(_ => pool.Rent(4096)).ToList();
        Assert.True(pool.GetStatistics().ReservedBytes <= 2 << 20, "dead threads kept blocks parked");
        burst.ForEach(l => l.Dispose());
        pool.Dispose();
        Assert.Equal(0, allocator.LiveCount);
    }

    [Fact]
    public async Task RentOnOneThread_ReturnOnAnother_KeepsTheCountsExact()
    {
        using var pool = Pools.Create(_off);
        var leases = Enumerable.Range(0, 100).Select(_ => pool.Rent(4096)).ToList();
        Assert.Equal(100, pool.OutstandingCount);
        await Task.Run(() => leases.ForEach(l => l.Dispose()));
        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Equal(0, stats.InUseBytes);
        Assert.InRange(stats.HighWaterBytes, (100 * 4096) - (64 * 1024), 100 * 4096);
    }

    [Fact]
    public void Options_AreValidatedWhenSet()
    {
        var options = new DirectBufferPoolOptions();
        Assert.Equal("MaxPooledBufferSize", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxPooledBufferSize = 3000).ParamName);
        Assert.Equal("MaxPooledBufferSize", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxPooledBufferSize = 256).ParamName);
        Assert.Equal("MaxPooledBufferSize", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxPooledBufferSize = 1 << 25).ParamName);
        Assert.Equal("CapacityBytes", Assert.Throws<ArgumentOutOfRangeException>(() => options.CapacityBytes = -1).ParamName);
        Assert.Equal("MaxBufferSize", Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxBufferSize = 100).ParamName);
        Assert.Throws<ArgumentException>(() => options.Name = " ");
        Assert.Throws<ArgumentNullException>(() => options.LoggerFactory = null!);
        Assert.Throws<ArgumentNullException>(() => options.TimeProvider = null!);
        Assert.Contains("power of two between 512 and 16777216",
            Assert.Throws<ArgumentOutOfRangeException>(() => options.MaxPooledBufferSize = 3000).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MaxPooledBufferSize_IsCappedByMaxBufferSize()
    {
        using var pool = Pools.Create(_off, o =>
        {
            o.MaxBufferSize = 2048;
            o.MaxPooledBufferSize = 4096;
        });
        Assert.Equal(2048, pool.MaxPooledBufferSize);
        Assert.Equal(2048, pool.MaxBufferSize);
        using DirectBuffer lease = pool.Rent();
        Assert.Equal(2048, lease.Length);
    }

    [Theory]
    [InlineData(600, 600, 600, 1024)]
    [InlineData(600, 500, 512, 512)]
    [InlineData(3000, -1, 3000, 4096)]
    [InlineData(5000, 4097, 5000, 8192)]
    public void Rent_NeverReturnsMoreThanMaxBufferSize_AndCountsTheWholeBlock(int maxBufferSize, int requested, int expectedLength, int blockSize)
    {
        using var pool = Pools.Create(_off, o => o.MaxBufferSize = maxBufferSize);
        DirectBuffer lease = pool.Rent(requested);
        Assert.Equal(expectedLength, lease.Length);
        Assert.Equal(expectedLength, lease.Memory.Length);
        Assert.Equal(expectedLength, lease.GetSpan().Length);

        // The statistics count what the pool holds for the lease: its whole block.
        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(blockSize, stats.InUseBytes);
        Assert.Equal(stats.ReservedBytes - blockSize, stats.FreeBytes);
        lease.Dispose();
        Assert.Equal(0, pool.GetStatistics().InUseBytes);
    }

    [Fact]
    public void Monitor_WhoseIsEnabledThrows_NeverStopsRent_AndIsCounted()
    {
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(new ThrowingSwitchMonitor(), o => o.LoggerFactory = logs);
        using (DirectBuffer lease = pool.Rent(4096))
        {
            Assert.Equal(4096, lease.Length);
        }

        Assert.Equal(1, pool.GetStatistics().MonitorErrorCount);
        Assert.Equal(0, pool.OutstandingCount);
        Assert.Contains(nameof(IBufferMonitor.IsEnabled), Assert.Single(logs.WithEvent("MonitorFailed")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Logger_ThatThrows_NeverFailsAFallbackRent_NorLeaksItsAllocation()
    {
        var allocator = new TestAllocator();
        var pool = Pools.Create(_off, o =>
        {
            o.Allocator = allocator;
            o.MaxPooledBufferSize = 4096;
            o.LoggerFactory = new ThrowingLoggerFactory();
        });

        using (DirectBuffer lease = pool.Rent(10_000))
        {
            Assert.Equal(10_000, lease.Length);
        }

        Assert.Equal(1, pool.GetStatistics().FallbackCount);
        pool.Dispose();
        Assert.Equal(0, allocator.LiveCount);
    }

    [Theory]
    [InlineData(BufferBacking.Native, "unpooled native allocation")]
    [InlineData(BufferBacking.PinnedArray, "unpooled pinned array")]
    public void FallbackWarning_NamesWhatTheBufferIsMadeOf(BufferBacking backing, string expected)
    {
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(_off, o =>
        {
            o.Backing = backing;
            o.MaxPooledBufferSize = 4096;
            o.LoggerFactory = logs;
        });
        pool.Rent(10_000).Dispose();
        Assert.Contains(expected, Assert.Single(logs.WithEvent("FallbackAllocation")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pipe_WithTheDirectPool_MovesBytesIntact()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pool: pool, minimumSegmentSize: 4096, pauseWriterThreshold: 0, resumeWriterThreshold: 0));
        byte[] payload = new byte[100_000];
        new Random(1).NextBytes(payload);

        await pipe.Writer.WriteAsync(payload);
        await pipe.Writer.CompleteAsync();
        Assert.True(pool.GetStatistics().OutstandingCount > 1);

        byte[] received = new byte[payload.Length];
        System.IO.Pipelines.ReadResult result = await pipe.Reader.ReadAtLeastAsync(payload.Length);
        System.Buffers.BuffersExtensions.CopyTo(result.Buffer, received);
        pipe.Reader.AdvanceTo(result.Buffer.End);
        await pipe.Reader.CompleteAsync();

        Assert.Equal(payload, received);
        Assert.Equal(0, pool.GetStatistics().OutstandingCount);
        Assert.Equal(0, monitor.Count);
    }
}
