using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using OffHeapTracker.Diagnostics;
using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>A <see cref="MemoryPool{T}"/> of bytes whose buffers live in native memory, tracked by an <see cref="IBufferMonitor"/> when it is on.</summary>
/// <remarks>
/// <para>
/// Requests up to <see cref="MaxPooledBufferSize"/> are served from native slabs cut into power-of-two blocks
/// (512 B and up), through a lock-free free list per size. A larger request, or one that arrives when the slabs
/// have reached <see cref="DirectBufferPoolOptions.CapacityBytes"/>, is served by an unpooled native allocation:
/// it works, it is counted (<see cref="DirectBufferPoolStatistics.FallbackCount"/>), it is tracked like any other
/// buffer, and it is logged as a warning at most once per 10 seconds.
/// </para>
/// <para>All members are thread-safe. See <see cref="DirectBuffer"/> for what the caller may do with a lease.</para>
/// <para>
/// Disposing the pool stops renting (<see cref="Rent(int, BufferType)"/> then throws
/// <see cref="ObjectDisposedException"/>). Slabs are freed at once if every lease is back; otherwise leases still
/// out stay valid, may be used and disposed as usual, and the slabs are freed when the last of them is returned.
/// A lease that is never returned keeps the slabs alive: memory is never freed under a renter's feet.
/// </para>
/// <para>
/// A pool that becomes unreachable without being disposed is disposed by its finalizer: nothing the pool hands
/// out (per-thread caches, reused lease objects, timers, metrics) keeps it alive, only its rented leases do.
/// </para>
/// </remarks>
public sealed unsafe partial class DirectBufferPool : MemoryPool<byte>
{
    /// <summary>The size of the buffer <see cref="Rent(int)"/> returns for a <c>minBufferSize</c> of -1: 4 KiB.</summary>
    public const int DefaultBufferSize = 4096;

    private static int s_lastPoolId;

    private readonly int _poolId = Interlocked.Increment(ref s_lastPoolId);
    private readonly int _maxBufferSize;
    private readonly int _defaultBufferSize;
    private readonly SizeClass[] _classes;
    private readonly CapacityBudget _budget;
    private readonly FallbackAllocator _fallback;
    private readonly BufferTracker _tracker;
    private readonly ThreadRegistry _threads;
    private readonly HighWaterMark _highWater = new();
    private readonly ILogger _logger;
    private readonly Meter _meter;

    // The pool's own clock: trim passes, warning rate limits, WhenAllReturnedAsync timeouts. Lease ages come from
    // the monitor's clock, through the tracker.
    private readonly TimeProvider _clock;

    // What a lease object in the lease recycler keeps of its last pool: enough to count a stale second Dispose,
    // never enough to keep the pool alive.
    private readonly WeakReference<DirectBufferPool> _weakSelf;

    /// <summary>Initializes a new pool.</summary>
    /// <param name="options">The settings; null for the defaults.</param>
    public DirectBufferPool(DirectBufferPoolOptions? options = null)
    {
        options ??= new DirectBufferPoolOptions();
        Name = options.Name;
        MaxPooledBufferSize = Math.Min(options.MaxPooledBufferSize, options.MaxBufferSize);
        Backing = options.Backing;
        ReclaimsLeakedBuffers = options.ReclaimLeakedBuffers;
        _maxBufferSize = options.MaxBufferSize;
        _defaultBufferSize = Math.Min(DefaultBufferSize, _maxBufferSize);
        _weakSelf = new WeakReference<DirectBufferPool>(this);
        _budget = new CapacityBudget(options.CapacityBytes);
        _classes = new SizeClass[SizeClasses.CountFor(MaxPooledBufferSize)];
        for (int i = 0; i < _classes.Length; i++)
        {
            _classes[i] = new SizeClass(SizeClasses.BlockSizeOf(i), options.Allocator, options.Backing == BufferBacking.PinnedArray);
        }

        // Before any user code (the logger factory, the monitor): a constructor that throws still gets its
        // finalizer run, and Dispose(false) then needs the registry.
        _threads = new ThreadRegistry(_poolId, _classes, _highWater, DrainExitedThreads);
        _clock = options.TimeProvider;
        _censusClock = ChooseCensusClock(_clock);
        _logger = options.LoggerFactory.CreateLogger<DirectBufferPool>();
        _fallback = new FallbackAllocator(Name, Backing, options.Allocator, _logger, _clock);
        _tracker = new BufferTracker(options.Monitor ?? BufferMonitor.Shared, Name, _poolId, _logger, _clock);

        _meter = OffHeapTrackerMetrics.GetMeter(options.MeterFactory);
        OffHeapTrackerMetrics.Register(_meter, this);
        PoolRegistry.Add(this);
        _trimTimer = SlabTrimmer.Start(this, _clock, options.TrimAfter);
    }

    /// <summary>Gets the pool's name.</summary>
    public string Name { get; }

    /// <summary>Gets the pool's instance number, unique in the process: it tells apart pools that share a <see cref="Name"/> (Kestrel creates several named <c>kestrel</c>).</summary>
    public int Id => _poolId;

    /// <summary>Gets the largest buffer served from the pool's slabs; larger requests are served unpooled.</summary>
    public int MaxPooledBufferSize { get; }

    /// <summary>Gets the largest request <see cref="Rent(int, BufferType)"/> accepts.</summary>
    public override int MaxBufferSize => _maxBufferSize;

    /// <summary>Gets where the pool's memory comes from.</summary>
    public BufferBacking Backing { get; }

    /// <summary>Gets the monitor this pool reports to.</summary>
    public IBufferMonitor Monitor => _tracker.Monitor;

    /// <summary>Gets the number of leases rented and not yet disposed.</summary>
    /// <remarks>Summed over the threads that rented and returned (O(threads)); exact when nothing is renting or returning.</remarks>
    public long OutstandingCount => _threads.Sum().Outstanding;

    /// <summary>Gets a value indicating whether leases found by their finalizer give their blocks back (see <see cref="DirectBufferPoolOptions.ReclaimLeakedBuffers"/>).</summary>
    internal bool ReclaimsLeakedBuffers { get; }

    /// <summary>Gets what a returned lease keeps of this pool: a weak reference, so a disposed lease held somewhere never keeps the pool alive.</summary>
    internal WeakReference<DirectBufferPool> WeakSelf => _weakSelf;

    /// <summary>Lists the pools alive in the process (created, and neither disposed nor collected), oldest first, for diagnostics that show every pool.</summary>
    /// <returns>A snapshot; the list holds the pools strongly, so do not keep it.</returns>
    /// <remarks>The registry behind it holds every pool weakly: being listed never keeps a pool alive.</remarks>
    public static IReadOnlyList<DirectBufferPool> GetLivePools() => PoolRegistry.Live();

    /// <summary>Rents a <see cref="BufferType.Normal"/> buffer of at least <paramref name="minBufferSize"/> bytes.</summary>
    /// <param name="minBufferSize">The least number of bytes needed, from 0 to <see cref="MaxBufferSize"/>, or -1 for <see cref="DefaultBufferSize"/>.</param>
    /// <returns>A lease the caller must dispose exactly once.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minBufferSize"/> is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The pool has been disposed.</exception>
    /// <exception cref="OutOfMemoryException">Native memory could not be allocated.</exception>
    public override DirectBuffer Rent(int minBufferSize = -1) => Rent(minBufferSize, BufferType.Normal);

    /// <summary>Rents a buffer of at least <paramref name="minBufferSize"/> bytes, declaring how long it is expected to stay out.</summary>
    /// <param name="minBufferSize">The least number of bytes needed, from 0 to <see cref="MaxBufferSize"/>, or -1 for <see cref="DefaultBufferSize"/>.</param>
    /// <param name="bufferType"><see cref="BufferType.Pool"/> for a buffer resident by design (a connection's read buffer), <see cref="BufferType.Normal"/> otherwise.</param>
    /// <returns>A lease the caller must dispose exactly once.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minBufferSize"/> or <paramref name="bufferType"/> is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The pool has been disposed.</exception>
    /// <exception cref="OutOfMemoryException">Native memory could not be allocated.</exception>
    public DirectBuffer Rent(int minBufferSize, BufferType bufferType)
    {
        // One unsigned compare rejects negatives and oversizes alike; -1 is sorted out inside.
        if (unchecked((uint)minBufferSize > (uint)_maxBufferSize))
        {
            if (minBufferSize != -1)
            {
                ThrowBufferSizeOutOfRange(minBufferSize);
            }

            minBufferSize = _defaultBufferSize;
        }

        if (unchecked((uint)bufferType > (uint)BufferType.Pool))
        {
            ThrowBufferTypeOutOfRange(bufferType);
        }

        if (_disposed)
        {
            ThrowDisposed();
        }

        ThreadRoot thread = ThreadRoot.Current;
        PoolThreadState state = _threads.GetState(thread);

        // Announce the rent, then check the flags: the process-wide barriers of Dispose and of cache take-backs
        // pair with this store and these loads (see DirectBufferPool.Lifetime.cs), so a rent racing Dispose
        // either backs out here or is waited for, and a rent never touches a cache the pool is taking back.
        Volatile.Write(ref state.Active, 1);
        if (_disposed)
        {
            Volatile.Write(ref state.Active, 0);
            ThrowDisposed();
        }

        bool cacheOpen = Volatile.Read(ref state.Stealing) == 0;
        long rentStamp = RentStamp.Encode(CensusNow(), bufferType);

        byte* pointer = null;
        byte[]? array = null;
        int arrayOffset = 0;
        int length = 0;
        int accountedBytes = 0;
        int sizeClass = -1;
        int block = -1;
        bool monitoring;
        DirectBuffer lease;
        try
        {
            if (minBufferSize <= MaxPooledBufferSize)
            {
                sizeClass = SizeClasses.IndexOf(minBufferSize);
                SizeClass blocks = _classes[sizeClass];

                // The block may be larger than MaxBufferSize when that is not a power of two; the lease never is.
                length = Math.Min(blocks.BlockSize, _maxBufferSize);
                accountedBytes = blocks.BlockSize;

                // This thread's cache first (no shared write), then the shared list, then a new slab, then blocks
                // parked in other threads' caches.
                if (cacheOpen && state.TryTakeBlock(sizeClass, out block))
                {
                    pointer = blocks.AddressOf(block, rentStamp);
                }
                else
                {
                    block = blocks.TryPop(rentStamp, out pointer);
                    if (block < 0)
                    {
                        block = blocks.GrowAndPop(_budget, rentStamp, out pointer);
                    }

                    if (block < 0 && TakeBackCachedBlocks(sizeClass))
                    {
                        block = blocks.TryPop(rentStamp, out pointer);
                    }
                }

                if (block < 0)
                {
                    length = accountedBytes = Math.Max(minBufferSize, 1);
                    pointer = _fallback.Allocate(length, "the pool's capacity is used up", out array);
                }
                else if (Backing == BufferBacking.PinnedArray)
                {
                    array = blocks.ArrayOf(block, out arrayOffset);
                }
            }
            else
            {
                length = accountedBytes = minBufferSize;
                pointer = _fallback.Allocate(length, "it is larger than the largest pooled size", out array);
            }

            // One read of the switch per rent. With the monitor on, every lease is a fresh object so that stale
            // use is caught (a small ordinary allocation: it borrows a recycled core, with its safety net, for
            // the block); with it off, lease objects are reused and nothing else below touches the monitor.
            monitoring = _tracker.IsMonitorEnabled();
            lease = monitoring ? new DirectBuffer(reusable: false, LeaseCores.Rent(thread)) : LeaseRecycler.Rent(thread);
        }
        catch
        {
            // Out of memory, native or managed: give back whatever we took, and never leave Active set, or a
            // later Dispose of the pool would wait for this rent forever.
            if (block >= 0)
            {
                // Every way of taking a block above stamped it; unstamp before anyone else can take it.
                _classes[sizeClass].ClearStamp(block);
                _classes[sizeClass].Push(block);
            }
            else if (pointer != null && array is null)
            {
                // Safe: the pointer came from the fallback allocator above and no lease has seen it.
                _fallback.Free(pointer);
            }

            Volatile.Write(ref state.Active, 0);
            throw;
        }

        lease.Initialize(this, pointer, length, minBufferSize, sizeClass, block, LeaseIds.Next(thread), bufferType, array, arrayOffset);

        // Statistics count whole blocks (what the pool holds for the lease), not the lease's possibly clamped length.
        state.Counters.Add(PoolCounter.Rents, 1);
        state.Counters.Add(PoolCounter.RentedBytes, accountedBytes);
        if (block < 0)
        {
            state.Counters.Add(PoolCounter.FallbackRentedBytes, accountedBytes);
            AddFallbackToCensus(lease.Id, rentStamp, accountedBytes);
        }

        if (bufferType == BufferType.Pool)
        {
            state.Counters.Add(PoolCounter.PoolTypeRentedBytes, accountedBytes);
        }

        state.PendingBytes += accountedBytes;
        if (state.PendingBytes >= HighWaterMark.FlushBytes)
        {
            _highWater.Flush(state);
        }

        Volatile.Write(ref state.Active, 0);

        if (monitoring)
        {
            // Once the lease is rented, so a guard finalized while it was idle cannot have missed it.
            lease.SafetyNet!.RearmIfSpent();
            _tracker.OnRented(lease, ref thread.Sampler);
        }

        return lease;
    }

    /// <summary>Returns a point-in-time view of the pool's memory and counters.</summary>
    /// <remarks>Sums per-thread counters (O(threads)). <see cref="DirectBufferPoolStatistics.HighWaterBytes"/> may trail the true peak by up to 64 KiB per renting thread.</remarks>
    public DirectBufferPoolStatistics GetStatistics()
    {
        long reserved = _budget.ReservedBytes;
        PoolCounters totals = _threads.Sum();
        long inUse = totals.InUseBytes;
        long fallback = totals.FallbackInUseBytes;
        _highWater.Raise(inUse);
        return new DirectBufferPoolStatistics
        {
            Name = Name,
            CapacityBytes = _budget.CapacityBytes,
            ReservedBytes = reserved,
            InUseBytes = inUse,
            PoolTypeInUseBytes = totals.PoolTypeInUseBytes,
            FallbackInUseBytes = fallback,
            RentedBytes = totals.Get(PoolCounter.RentedBytes),
            FreeBytes = Math.Max(0, reserved - (inUse - fallback)),
            HighWaterBytes = _highWater.Value,
            OutstandingCount = totals.Outstanding,
            TotalRents = totals.Get(PoolCounter.Rents),
            FallbackCount = _fallback.Count,
            DoubleDisposeCount = _tracker.DoubleDisposeCount,
            MonitorErrorCount = _tracker.MonitorErrorCount,
            LeakedCount = _tracker.LeakedCount,
            LeakedBytes = Volatile.Read(ref _leakedBytes),
            TrimmedBytes = Volatile.Read(ref _trimmedBytes),
            IsDisposed = _disposed,
        };
    }

    /// <summary>Gets the number of per-thread states the pool lists now (tests).</summary>
    internal int ListedThreadStates => _threads.States.Length;

    /// <summary>Gets the bytes the calling thread keeps cached for this pool (tests).</summary>
    internal long CachedBytesOfCurrentThread() => _threads.GetState(ThreadRoot.Current).CachedBytes;

    /// <inheritdoc/>
    public override string ToString() => $"DirectBufferPool {Name}";

    [DoesNotReturn]
    private void ThrowBufferSizeOutOfRange(int minBufferSize) =>
        throw new ArgumentOutOfRangeException(
            nameof(minBufferSize),
            minBufferSize,
            $"minBufferSize must be between 0 and {_maxBufferSize} (the pool's MaxBufferSize), or -1 for the default size.");

    [DoesNotReturn]
    private static void ThrowBufferTypeOutOfRange(BufferType bufferType) =>
        throw new ArgumentOutOfRangeException(nameof(bufferType), bufferType, "bufferType must be BufferType.Normal or BufferType.Pool.");

    [DoesNotReturn]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(DirectBufferPool), $"Pool {Name} has been disposed.");
}
