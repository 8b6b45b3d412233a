using System.Buffers;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Lease;

public sealed class DirectBufferTests
{
    [Fact]
    public void DisposeTwice_IsIgnoredAndCounted_AndNeverFreesTheNextOwnersBlock()
    {
        // Monitor on: leases are fresh objects, so the second Dispose of `first` is always recognised.
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);

        DirectBuffer first = pool.Rent(4096);
        nint address = Addresses.Of(first);
        first.Dispose();

        DirectBuffer second = pool.Rent(4096);
        Assert.Equal(address, Addresses.Of(second));

        first.Dispose();
        ((IDisposable)first).Dispose();

        // Had the stale Dispose freed the block, this rent would get the same address as `second`.
        using DirectBuffer third = pool.Rent(4096);
        Assert.NotEqual(address, Addresses.Of(third));
        Assert.False(second.IsDisposed);

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(2, stats.DoubleDisposeCount);
        Assert.Equal(2, stats.OutstandingCount);
        Assert.Equal(8192, stats.InUseBytes);
        Assert.Single(logs.WithEvent("DoubleDispose"));
        second.Dispose();
    }

    [Fact]
    public void DoubleDispose_WithDisposeStacksOn_IsReportedWithAllThreeStacks()
    {
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(Pools.EnabledMonitor(configure: o => o.CaptureDisposeStacks = true), o => o.LoggerFactory = logs);
        DirectBuffer lease = RentHere(pool);
        DisposeFirst(lease);
        DisposeAgain(lease);

        string message = Assert.Single(logs.WithEvent("DoubleDispose")).Message;
        int allocated = message.IndexOf("Allocated at:\nOffHeapTracker.Tests.Lease.DirectBufferTests.RentHere", StringComparison.Ordinal);
        int first = message.IndexOf("First disposed at:\nOffHeapTracker.Tests.Lease.DirectBufferTests.DisposeFirst", StringComparison.Ordinal);
        int again = message.IndexOf("Disposed again at:\nOffHeapTracker.Tests.Lease.DirectBufferTests.DisposeAgain", StringComparison.Ordinal);
        Assert.True(allocated > 0 && first > allocated && again > first, message);
    }

    [Fact]
    public void DoubleDispose_AfterTheLeasesCoreWentToAnotherPoolsLease_IsCountedInItsOwnPool_WithItsOwnStacks() => FreshThread.Run(() =>
    {
        // On one thread, the core a returned fresh lease gave back is the next fresh lease's: here a lease of
        // another pool, rented elsewhere. The stale second dispose must still be counted and reported as the
        // first lease's, not read from the core's new rent.
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(configure: o => o.CaptureDisposeStacks = true);
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);
        using var other = Pools.Create(monitor, o => o.LoggerFactory = logs);
        DirectBuffer lease = RentHere(pool);
        LeaseCore core = lease.HeldCore!;
        DisposeFirst(lease);
        DirectBuffer next = RentElsewhere(other);
        Assert.Same(core, next.HeldCore);

        DisposeAgain(lease);

        Assert.Equal(1, pool.GetStatistics().DoubleDisposeCount);
        Assert.Equal(0, other.GetStatistics().DoubleDisposeCount);
        string message = Assert.Single(logs.WithEvent("DoubleDispose")).Message;
        Assert.Contains("Allocated at:\nOffHeapTracker.Tests.Lease.DirectBufferTests.RentHere", message, StringComparison.Ordinal);
        Assert.Contains("First disposed at:\nOffHeapTracker.Tests.Lease.DirectBufferTests.DisposeFirst", message, StringComparison.Ordinal);
        Assert.DoesNotContain("RentElsewhere", message, StringComparison.Ordinal);
        Assert.False(next.IsDisposed);
        next.Dispose();
    });

    [Fact]
    public void DoubleDispose_WithDisposeStacksOff_SaysTheyWereNotCaptured()
    {
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(Pools.EnabledMonitor(configure: o => o.CaptureDisposeStacks = false), o => o.LoggerFactory = logs);
        DirectBuffer lease = RentHere(pool);
        lease.Dispose();
        lease.Dispose();
        string message = Assert.Single(logs.WithEvent("DoubleDispose")).Message;
        Assert.Contains("First disposed at:\n(not captured", message, StringComparison.Ordinal);
        Assert.Contains("Allocated at:\nOffHeapTracker.Tests.Lease.DirectBufferTests.RentHere", message, StringComparison.Ordinal);
    }

    [Fact]
    public void DisposeTwice_WithTheMonitorOff_AfterTheThreadRentedAgain_NeverFreesTheNewLease()
    {
        // The lease cache quarantines a returned lease object: this thread gets a different object back, so the
        // stale Dispose still finds its own object returned.
        using var pool = Pools.Create(new ResidentBufferMonitor());
        DirectBuffer first = pool.Rent(4096);
        nint address = Addresses.Of(first);
        first.Dispose();

        DirectBuffer second = pool.Rent(4096);
        Assert.NotSame(first, second);
        Assert.Equal(address, Addresses.Of(second));

        first.Dispose();
        Assert.False(second.IsDisposed);
        using DirectBuffer third = pool.Rent(4096);
        Assert.NotEqual(address, Addresses.Of(third));
        Assert.Equal(1, pool.GetStatistics().DoubleDisposeCount);
        second.Dispose();
    }

    [Fact]
    public void DisposeTwice_WithTheMonitorOff_IsIgnoredWhileTheLeaseIsUnused()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        DirectBuffer lease = pool.Rent(4096);
        lease.Dispose();
        lease.Dispose();
        Assert.Equal(1, pool.GetStatistics().DoubleDisposeCount);
        Assert.Equal(0, pool.GetStatistics().OutstandingCount);
        Assert.Equal(0, pool.GetStatistics().InUseBytes);
    }

    [Fact]
    public void ConcurrentDispose_ReturnsTheBlockExactlyOnce()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        for (int round = 0; round < 200; round++)
        {
            DirectBuffer lease = pool.Rent(4096);
            Parallel.For(0, 4, _ => lease.Dispose());
        }

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Equal(0, stats.InUseBytes);
        Assert.Equal(600, stats.DoubleDisposeCount);
    }

    [Fact]
    public void DisposeThroughIMemoryOwner_ReturnsTheBuffer()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        IMemoryOwner<byte> owner = pool.Rent(4096);
        owner.Dispose();
        owner.Dispose();
        Assert.Equal(0, pool.OutstandingCount);
        Assert.Equal(1, pool.GetStatistics().DoubleDisposeCount);
    }

    public static TheoryData<string, Action<DirectBuffer, Memory<byte>>> StaleUses => new()
    {
        { "lease.Memory", (lease, memory) => _ = lease.Memory },
        { "lease.GetSpan()", (lease, memory) => lease.GetSpan() },
        { "lease.Pin()", (lease, memory) => lease.Pin() },
        { "memory.Span read", (lease, memory) => _ = memory.Span[0] },
        { "memory.Span write", (lease, memory) => memory.Span[0] = 1 },
        { "memory.Pin()", (lease, memory) => memory.Pin() },
        { "memory.ToArray()", (lease, memory) => memory.ToArray() },
    };

    [Theory]
    [MemberData(nameof(StaleUses))]
    public void StaleUse_WithTheMonitorOn_ThrowsObjectDisposed_EvenAfterTheBlockIsReRented(string use, Action<DirectBuffer, Memory<byte>> act)
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        DirectBuffer lease = pool.Rent(4096);
        Memory<byte> memory = lease.Memory;
        lease.Dispose();

        using DirectBuffer next = pool.Rent(4096);
        next.GetSpan().Fill(0x5A);

        var ex = Assert.Throws<ObjectDisposedException>(() => act(lease, memory));
        Assert.Contains("returned to its pool", ex.Message, StringComparison.Ordinal);
        Assert.True(next.GetSpan().IndexOfAnyExcept((byte)0x5A) < 0, $"{use} touched the next owner's bytes");
    }

    [Fact]
    public void StaleUse_WithTheMonitorOff_ThrowsUntilTheLeaseObjectIsReused()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());

        // On a fresh thread: its lease cache starts empty, so the object comes back after the same number of rents
        // in every run, whatever earlier tests returned on the test thread.
        FreshThread.Run(() =>
        {
            DirectBuffer lease = pool.Rent(4096);
            Memory<byte> memory = lease.Memory;
            lease.Dispose();

            int otherRents = 0;
            DirectBuffer next;
            while (true)
            {
                Assert.Throws<ObjectDisposedException>(() => memory.Span[0] = 1);
                Assert.True(lease.IsDisposed);
                next = pool.Rent(4096);
                if (ReferenceEquals(next, lease))
                {
                    break;
                }

                next.Dispose();
                Assert.True(++otherRents < 1000, "the returned lease object never came back");
            }

            // The lease cache's quarantine: sixteen newer returns sit ahead of a returned object.
            Assert.Equal(16, otherRents);

            // Reused, the object is a live lease again, and the stale Memory with it: this is where the check ends,
            // as DirectBuffer's remarks say.
            Assert.False(lease.IsDisposed);
            memory.Span[0] = 1;
            Assert.Equal(1, next.GetSpan()[0]);
            next.Dispose();
        });
    }

    [Fact]
    public unsafe void Pin_OutsideTheBuffer_ThrowsNamingTheRange()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        using DirectBuffer lease = pool.Rent(512);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => lease.Pin(513));
        Assert.Equal("elementIndex", ex.ParamName);
        Assert.Contains("between 0 and 512", ex.Message, StringComparison.Ordinal);
        using MemoryHandle handle = lease.Pin(512);
        Assert.Equal(Addresses.Of(lease) + 512, (nint)handle.Pointer);
    }

    [Fact]
    public void Memory_IsBackedByNativeMemory_NotAnArray()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        using DirectBuffer lease = pool.Rent(4096);
        Assert.False(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(lease.Memory, out _));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetMemoryManager<byte, DirectBuffer>(lease.Memory, out DirectBuffer? manager));
        Assert.Same(lease, manager);
        Assert.Equal(0, Addresses.Of(lease) % 4096);
    }

    [Fact]
    public void PinnedArrayBacking_ExposesTheArray_AndChecksStaleUseToo()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor, o =>
        {
            o.Backing = BufferBacking.PinnedArray;
            o.MaxPooledBufferSize = 4096;
        });
        DirectBuffer pooled = pool.Rent(4096);
        DirectBuffer unpooled = pool.Rent(10_000);
        pooled.GetSpan().Fill(7);
        unpooled.GetSpan().Fill(9);

        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(pooled.Memory, out ArraySegment<byte> slab));
        Assert.Equal(4096, slab.Count);
        Assert.True(slab.AsSpan().IndexOfAnyExcept((byte)7) < 0);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(unpooled.Memory, out ArraySegment<byte> own));
        Assert.Equal(10_000, own.Count);
        Assert.Equal(0, own.Offset);

        // Writes through the array are writes to the buffer: one memory, two views.
        slab.AsSpan()[100] = 42;
        Assert.Equal(42, pooled.GetSpan()[100]);

        Memory<byte> stale = pooled.Memory;
        pooled.Dispose();
        Assert.Throws<ObjectDisposedException>(() => System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(stale, out _));
        unpooled.Dispose();
        Assert.Equal(0, pool.GetStatistics().InUseBytes);
        Assert.Equal(BufferBacking.PinnedArray, pool.Backing);
    }

    [Fact]
    public void PinnedArrayBacking_TrimsAndDisposesWithoutNativeFrees()
    {
        var allocator = new TestAllocator();
        var pool = Pools.Create(new ResidentBufferMonitor(), o =>
        {
            o.Backing = BufferBacking.PinnedArray;
            o.Allocator = allocator;
        });
        var burst = Enumerable.Range(0, 600).Select(_ => pool.Rent(4096)).ToList();
        burst.ForEach(l => l.Dispose());
        pool.TrimIdleSlabs();
        Assert.True(pool.TrimIdleSlabs() >= 1 << 20);
        pool.Dispose();
        Assert.Equal(0, allocator.AlignedAllocations);
        Assert.Equal(0, pool.GetStatistics().ReservedBytes);
        Assert.Equal("Backing", Assert.Throws<ArgumentOutOfRangeException>(() => new DirectBufferPoolOptions { Backing = (BufferBacking)5 }).ParamName);
    }

    [Fact]
    public void Ids_AreUniqueAcrossThreads()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        var ids = new System.Collections.Concurrent.ConcurrentBag<long>();
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 2000; i++)
            {
                DirectBuffer lease = pool.Rent(16);
                ids.Add(lease.Id);
                lease.Dispose();
            }
        });

        Assert.Equal(8000, ids.Distinct().Count());
        Assert.DoesNotContain(0, ids);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentHere(DirectBufferPool pool) => pool.Rent(100);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentElsewhere(DirectBufferPool pool) => pool.Rent(100);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DisposeFirst(DirectBuffer lease) => lease.Dispose();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DisposeAgain(DirectBuffer lease) => lease.Dispose();

    [Fact]
    public void ToString_SaysWhatTheLeaseIs()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        DirectBuffer lease = pool.Rent(600, BufferType.Pool);
        Assert.Equal($"DirectBuffer {lease.Id} (1024 bytes, Pool)", lease.ToString());
        lease.Dispose();
        Assert.EndsWith(", disposed)", lease.ToString(), StringComparison.Ordinal);
    }
}
