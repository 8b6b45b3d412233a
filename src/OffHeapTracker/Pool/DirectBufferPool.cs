using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using OffHeapTracker.Diagnostics;
using OffHeapTracker.Monitoring;
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

    private static readonly TimeSpan s_warningInterval = TimeSpan.FromSeconds(10);

    /// <summary>A thread flushes its in-use delta to the shared total each time it moves by this much (64 KiB),
    /// so the high-water mark trails the true peak by at most this much per thread, for one atomic per 16 rents of 4 KiB.</summary>
    private const long HighWaterFlushBytes = 64 * 1024;

    private static int s_lastPoolId;

    private readonly SizeClass[] _classes;
    private readonly CapacityBudget _budget;
    private readonly INativeAllocator _allocator;
    private readonly IBufferMonitor _monitor;
    private readonly ResidentBufferMonitor? _residentMonitor;
    private readonly ILogger _logger;
    private readonly WarningRateLimiter _fallbackWarnings;
    private readonly WarningRateLimiter _doubleDisposeWarnings;
    private readonly WarningRateLimiter _leakWarnings;
    private readonly TimeProvider _time;
    private readonly int _poolId = Interlocked.Increment(ref s_lastPoolId);
    private readonly int _maxBufferSize;
    private readonly int _defaultBufferSize;

    // This pool's index into each thread's state array (see DirectBufferPool.ThreadState.cs).
    private readonly int _slot = AllocateSlot();

    // Rents, returns and bytes are counted per thread (DirectBufferPool.ThreadState.cs); these are the rare events.
    private long _highWaterBytes;
    private long _flushedInUseBytes;
    private long _fallbackCount;
    private long _doubleDisposeCount;
    private long _monitorErrorCount;
    private long _leakedCount;
    private long _leakedBytes;

    // Leases found by their finalizer whose blocks are kept out of circulation; they can only come back through
    // a late Dispose, so waits and the slab release count them as settled.
    private long _leakedOutstanding;
    private long _trimmedBytes;
    private readonly ITimer? _trimTimer;
    private readonly System.Diagnostics.Metrics.Meter _meter;
    private TaskCompletionSource? _drained;
    private volatile bool _disposed;
    private readonly bool _reclaimLeaks;

    // What a lease object in the lease cache keeps of its last pool: enough to count a stale second Dispose,
    // never enough to keep the pool alive.
    private readonly WeakReference<DirectBufferPool> _weakSelf;

    // Set by Dispose once no rent can be in flight; only then may a returner release the slabs.
    private volatile bool _rentsStopped;
    private bool _slabsReleased;

    /// <summary>Initializes a new pool.</summary>
    /// <param name="options">The settings; null for the defaults.</param>
    public DirectBufferPool(DirectBufferPoolOptions? options = null)
    {
        options ??= new DirectBufferPoolOptions();
        Name = options.Name;
        MaxPooledBufferSize = Math.Min(options.MaxPooledBufferSize, options.MaxBufferSize);
        _maxBufferSize = options.MaxBufferSize;
        _defaultBufferSize = Math.Min(DefaultBufferSize, _maxBufferSize);
        _allocator = options.Allocator;
        _reclaimLeaks = options.ReclaimLeakedBuffers;
        _weakSelf = new WeakReference<DirectBufferPool>(this);
        Backing = options.Backing;
        _budget = new CapacityBudget(options.CapacityBytes);
        _classes = new SizeClass[SizeClasses.CountFor(MaxPooledBufferSize)];
        for (int i = 0; i < _classes.Length; i++)
        {
            _classes[i] = new SizeClass(SizeClasses.BlockSizeOf(i), _allocator, options.Backing == BufferBacking.PinnedArray);
        }

        _monitor = options.Monitor ?? BufferMonitor.Shared;
        _residentMonitor = _monitor as ResidentBufferMonitor;
        _logger = options.LoggerFactory.CreateLogger<DirectBufferPool>();
        _fallbackWarnings = new WarningRateLimiter(options.TimeProvider, s_warningInterval);
        _doubleDisposeWarnings = new WarningRateLimiter(options.TimeProvider, s_warningInterval);
        _leakWarnings = new WarningRateLimiter(options.TimeProvider, s_warningInterval);
        _time = options.TimeProvider;

        _meter = OffHeapTrackerMetrics.GetMeter(options.MeterFactory);
        OffHeapTrackerMetrics.Register(_meter, this);
        PoolRegistry.Add(this);

        if (options.TrimAfter != Timeout.InfiniteTimeSpan)
        {
            // The timer holds the pool weakly: an undisposed, unreachable pool must stay collectable.
            _trimTimer = _time.CreateTimer(static state => TrimTick((WeakReference<DirectBufferPool>)state!), new WeakReference<DirectBufferPool>(this), options.TrimAfter, options.TrimAfter);
        }
    }

    /// <summary>Gets the pool's name.</summary>
    public string Name { get; }

    /// <summary>Gets the pool's instance number, unique in the process: it tells apart pools that share a <see cref="Name"/> (Kestrel creates several named <c>kestrel</c>).</summary>
    public int Id => _poolId;

    /// <summary>Lists the pools alive in the process (created, and neither disposed nor collected), oldest first, for diagnostics that show every pool.</summary>
    /// <returns>A snapshot; the list holds the pools strongly, so do not keep it.</returns>
    /// <remarks>The registry behind it holds every pool weakly: being listed never keeps a pool alive.</remarks>
    public static IReadOnlyList<DirectBufferPool> GetLivePools() => PoolRegistry.Live();

    /// <summary>Gets the largest buffer served from the pool's slabs; larger requests are served unpooled.</summary>
    public int MaxPooledBufferSize { get; }

    /// <summary>Gets the largest request <see cref="Rent(int, BufferType)"/> accepts.</summary>
    public override int MaxBufferSize => _maxBufferSize;

    /// <summary>Gets where the pool's memory comes from.</summary>
    public BufferBacking Backing { get; }

    /// <summary>Disposes a pool that became unreachable without <see cref="MemoryPool{T}.Dispose()"/>: its slabs are freed once every lease is back, as on <c>Dispose</c>.</summary>
    ~DirectBufferPool()
    {
        Dispose(disposing: false);
    }

    /// <summary>Gets the monitor this pool reports to.</summary>
    public IBufferMonitor Monitor => _monitor;

    /// <summary>Gets the number of leases rented and not yet disposed.</summary>
    /// <remarks>Summed over the threads that rented and returned (O(threads)); exact when nothing is renting or returning.</remarks>
    public long OutstandingCount => Sum().Outstanding;

    /// <summary>Gets a value indicating whether leases found by their finalizer give their blocks back (see <see cref="DirectBufferPoolOptions.ReclaimLeakedBuffers"/>).</summary>
    internal bool ReclaimsLeakedBuffers => _reclaimLeaks;

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

        PoolThreadState state = GetThreadState();

        // Announce the rent, then check the flags: the process-wide barriers of Dispose and of cache reclaiming
        // pair with this store and these loads (see DirectBufferPool.ThreadState.cs), so a rent racing Dispose
        // either backs out here or is waited for, and a rent never touches a cache the pool is taking back.
        Volatile.Write(ref state.Active, 1);
        if (_disposed)
        {
            Volatile.Write(ref state.Active, 0);
            ThrowDisposed();
        }

        bool cacheOpen = Volatile.Read(ref state.Stealing) == 0;

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
                    pointer = blocks.AddressOf(block);
                }
                else
                {
                    block = blocks.TryPop(out pointer);
                    if (block < 0)
                    {
                        block = blocks.GrowAndPop(_budget, out pointer);
                    }

                    if (block < 0 && TakeBackCachedBlocks(sizeClass))
                    {
                        block = blocks.TryPop(out pointer);
                    }
                }

                if (block < 0)
                {
                    length = accountedBytes = Math.Max(minBufferSize, 1);
                    pointer = AllocateUnpooled(length, "the pool's capacity is used up", out array);
                }
                else if (Backing == BufferBacking.PinnedArray)
                {
                    array = blocks.ArrayOf(block, out arrayOffset);
                }
            }
            else
            {
                length = accountedBytes = minBufferSize;
                pointer = AllocateUnpooled(length, "it is larger than the largest pooled size", out array);
            }

            // One read of the switch per rent. With the monitor on, every lease is a fresh object so that stale
            // use is caught; with it off, lease objects are reused and nothing else below touches the monitor.
            monitoring = _residentMonitor is not null ? _residentMonitor.IsEnabled : IsCustomMonitorEnabled();
            lease = monitoring ? new DirectBuffer(reusable: false) : LeaseCache.Rent();
        }
        catch
        {
            // Out of memory, native or managed: give back whatever we took, and never leave Active set, or a
            // later Dispose of the pool would wait for this rent forever.
            if (block >= 0)
            {
                _classes[sizeClass].Push(block);
            }
            else if (pointer != null && array is null)
            {
                _allocator.Free(pointer);
            }

            Volatile.Write(ref state.Active, 0);
            throw;
        }

        lease.Initialize(this, pointer, length, minBufferSize, sizeClass, block, LeaseIds.Next(), bufferType, array, arrayOffset);

        // Single-writer counters: plain increments published with volatile stores, no interlocked operation.
        Volatile.Write(ref state.Rents, state.Rents + 1);
        // Statistics count whole blocks (what the pool holds for the lease), not the lease's possibly clamped length.
        Volatile.Write(ref state.RentedBytes, state.RentedBytes + accountedBytes);
        if (block < 0)
        {
            Volatile.Write(ref state.UnpooledRentedBytes, state.UnpooledRentedBytes + accountedBytes);
        }

        if (bufferType == BufferType.Pool)
        {
            Volatile.Write(ref state.PoolTypeRentedBytes, state.PoolTypeRentedBytes + accountedBytes);
        }

        state.PendingBytes += accountedBytes;
        if (state.PendingBytes >= HighWaterFlushBytes)
        {
            FlushInUse(state);
        }

        Volatile.Write(ref state.Active, 0);

        if (monitoring)
        {
            Track(lease);
        }

        return lease;
    }

    /// <summary>Returns a point-in-time view of the pool's memory and counters.</summary>
    /// <remarks>Sums per-thread counters (O(threads)). <see cref="DirectBufferPoolStatistics.HighWaterBytes"/> may trail the true peak by up to 64 KiB per renting thread (see <c>HighWaterFlushBytes</c>).</remarks>
    public DirectBufferPoolStatistics GetStatistics()
    {
        long reserved = _budget.ReservedBytes;
        Totals totals = Sum();
        long inUse = totals.InUseBytes;
        long unpooled = totals.UnpooledInUseBytes;
        RaiseHighWater(inUse);
        return new DirectBufferPoolStatistics
        {
            Name = Name,
            CapacityBytes = _budget.CapacityBytes,
            ReservedBytes = reserved,
            InUseBytes = inUse,
            PoolTypeInUseBytes = totals.PoolTypeInUseBytes,
            UnpooledInUseBytes = unpooled,
            RentedBytes = totals.RentedBytes,
            FreeBytes = Math.Max(0, reserved - (inUse - unpooled)),
            HighWaterBytes = Volatile.Read(ref _highWaterBytes),
            OutstandingCount = totals.Outstanding,
            TotalRents = totals.Rents,
            FallbackCount = Volatile.Read(ref _fallbackCount),
            DoubleDisposeCount = Volatile.Read(ref _doubleDisposeCount),
            MonitorErrorCount = Volatile.Read(ref _monitorErrorCount),
            LeakedCount = Volatile.Read(ref _leakedCount),
            LeakedBytes = Volatile.Read(ref _leakedBytes),
            TrimmedBytes = Volatile.Read(ref _trimmedBytes),
            IsDisposed = _disposed,
        };
    }

    /// <summary>Gets the bytes the calling thread keeps cached for this pool (tests).</summary>
    internal long CachedBytesOfCurrentThread() => GetThreadState().CachedBytes;

    /// <inheritdoc/>
    public override string ToString() => $"DirectBufferPool {Name}";

    /// <summary>Takes a disposed lease's block back. Called once per lease, by the thread that won its dispose.</summary>
    internal void Return(DirectBuffer lease)
    {
        if (lease.IsTracked)
        {
            try
            {
                // Kept on the lease (never in the monitor) so a later double dispose can say where the first was.
                // Only for leases whose allocation stack was sampled: sampling must bound the dispose cost too.
                if (_residentMonitor is not null && lease.AllocationStack is not null)
                {
                    lease.DisposeStack = _residentMonitor.CaptureDisposeStack();
                }

                _monitor.OnFreed(lease.Id);
            }
            catch (Exception ex)
            {
                OnMonitorFailed(ex, nameof(IBufferMonitor.OnFreed), lease.Id);
            }
        }

        ReturnMemory(lease, reuseLeaseObject: lease.IsRecyclable, cacheBlock: true);
    }

    /// <summary>Takes back the block of a lease its finalizer found undisposed, now disposed late by its owner (typically another object's finalizer).</summary>
    internal void ReturnAfterLeak(DirectBuffer lease)
    {
        // Order matters for the slab release: the block is unmarked and the leak uncounted before the return is
        // counted, so Rents - Returns stays above the leaked count until the block is back on its list.
        Interlocked.Add(ref _leakedBytes, -AccountedBytes(lease));
        bool pushBlock = !lease.IsPooled || _classes[lease.SizeClass].UnmarkLeaked(lease.Block, _budget);
        Interlocked.Decrement(ref _leakedOutstanding);

        // The monitor's record went when the finalizer reported the leak. A late dispose usually runs on the
        // finalizer thread: neither the lease object nor the block is cached there.
        ReturnMemory(lease, reuseLeaseObject: false, cacheBlock: false, pushBlock);
    }

    /// <summary>Handles a lease its finalizer found undisposed: the leak is counted, logged and reported, and the block kept out of circulation (or, if the pool reclaims leaks, returned).</summary>
    /// <remarks>
    /// Runs on the finalizer thread and never throws. A span or pointer taken from the lease may still be in use
    /// (it does not keep the lease alive), so by default the block is never reissued: it stays counted as in use,
    /// and in <see cref="DirectBufferPoolStatistics.LeakedBytes"/>.
    /// </remarks>
    internal void OnLeaseFinalized(DirectBuffer lease, bool reclaim)
    {
        Interlocked.Increment(ref _leakedCount);
        if (!reclaim)
        {
            // Mark the slab before counting the leak: a slab release that sees the count then sees the mark.
            if (lease.IsPooled)
            {
                _classes[lease.SizeClass].MarkLeaked(lease.Block);
            }

            Interlocked.Add(ref _leakedBytes, AccountedBytes(lease));
            Interlocked.Increment(ref _leakedOutstanding);
        }

        // From here a late Dispose (an owner's hand-off) may return the block: the leak it undoes is recorded.
        lease.PublishLeaked(reclaim);

        try
        {
            TimeSpan? age = lease.RentTimestamp != 0 ? _time.GetElapsedTime(lease.RentTimestamp) : null;
            var leak = new BufferLeak
            {
                Id = lease.Id,
                PoolName = Name,
                AllocateSize = lease.RequestedSize,
                ActualSize = lease.Length,
                BufferType = lease.BufferType,
                Age = age,
                Context = lease.Context,
                StackTrace = lease.AllocationStack?.Text,
            };

            if (lease.IsTracked)
            {
                _monitor.OnFreed(lease.Id);
            }

            if (_logger.IsEnabled(LogLevel.Warning) && _leakWarnings.ShouldLog(out long sinceLast))
            {
                Log.BufferLeaked(
                    _logger,
                    leak.Id,
                    Name,
                    leak.ActualSize,
                    leak.BufferType,
                    age is { } a ? $"{a.TotalSeconds:0.000} s" : "an unknown time (rented while the monitor was off)",
                    leak.Context ?? "none",
                    reclaim
                        ? "its memory went back to the pool (ReclaimLeakedBuffers is on)"
                        : "its block is kept out of circulation, because a span or pointer taken from it may still be in use",
                    sinceLast,
                    leak.StackTrace ?? "(not captured: enable the monitor to record allocation stacks)");
            }

            _monitor.OnLeaked(leak);
        }
        catch (Exception ex)
        {
            try
            {
                Interlocked.Increment(ref _monitorErrorCount);
                Log.LeakHandlerFailed(_logger, ex, lease.Id);
            }
            catch
            {
                // The finalizer thread must survive a failing logger too.
            }
        }
        finally
        {
            if (reclaim)
            {
                // Never back into the lease cache: this object is being finalized and must not be resurrected.
                // Nor into the finalizer thread's block cache: that thread never rents, so the block would idle there.
                ReturnMemory(lease, reuseLeaseObject: false, cacheBlock: false);
            }
            else
            {
                // The leak settles this lease as far as waits and the slab release are concerned.
                SettleAfterReturnOrLeak();
            }
        }
    }

    private void ReturnMemory(DirectBuffer lease, bool reuseLeaseObject, bool cacheBlock, bool pushBlock = true)
    {
        PoolThreadState state = GetThreadState();

        // Store, then load: pairs with the cache reclaimer's process-wide barrier (see DirectBufferPool.ThreadState.cs).
        Volatile.Write(ref state.Active, 1);
        int length = AccountedBytes(lease);
        if (lease.IsPooled)
        {
            // This thread's cache first; when it is full, or being taken back, the block goes to the shared list.
            if (pushBlock && (!cacheBlock || Volatile.Read(ref state.Stealing) != 0 || !state.TryKeepBlock(lease.SizeClass, lease.Block)))
            {
                _classes[lease.SizeClass].Push(lease.Block);
            }
        }
        else
        {
            // Safe: this lease alone owned the allocation, and the state exchange in Dispose lets one caller here.
            // An unpooled pinned array needs no free: it goes when the lease does.
            if (!lease.IsArrayBacked)
            {
                _allocator.Free(lease.Pointer);
            }

            Volatile.Write(ref state.UnpooledReturnedBytes, state.UnpooledReturnedBytes + length);
        }

        if (lease.BufferType == BufferType.Pool)
        {
            Volatile.Write(ref state.PoolTypeReturnedBytes, state.PoolTypeReturnedBytes + length);
        }

        lease.ReleaseArray();
        Volatile.Write(ref state.ReturnedBytes, state.ReturnedBytes + length);
        Volatile.Write(ref state.Returns, state.Returns + 1);
        state.PendingBytes -= length;
        if (state.PendingBytes <= -HighWaterFlushBytes)
        {
            FlushInUse(state);
        }

        Volatile.Write(ref state.Active, 0);
        if (reuseLeaseObject)
        {
            // Recycled only where it is safe (see LeaseCache.Return); a lease object not kept is left to the GC.
            lease.DetachForReuse(_weakSelf);
            LeaseCache.Return(lease);
        }

        // Two field reads on every return; the call only when a disposal or a waiter needs it.
        if (_rentsStopped || Volatile.Read(ref _drained) is not null)
        {
            SettleAfterReturnOrLeak();
        }
    }

    /// <summary>After a return or a leak: releases the slabs of a disposed pool and wakes waiters once nothing more can come back.</summary>
    private void SettleAfterReturnOrLeak()
    {
        // Store (the count), then load: pairs with Dispose's second process-wide barrier. The waiter check costs
        // one field read; only a pending WhenAllReturnedAsync makes it sum the counters.
        if (_rentsStopped)
        {
            ReleaseSlabsIfDrained();
        }

        if (Volatile.Read(ref _drained) is not null)
        {
            SignalIfDrained();
        }
    }

    internal void OnDoubleDispose(DirectBuffer lease)
    {
        Interlocked.Increment(ref _doubleDisposeCount);
        if (_logger.IsEnabled(LogLevel.Warning) && _doubleDisposeWarnings.ShouldLog(out long sinceLast))
        {
            try
            {
                const string NotCaptured = "(not captured: the lease was rented while the monitor was off)";
                Log.DoubleDispose(
                    _logger,
                    lease.Id,
                    Name,
                    sinceLast,
                    lease.AllocationStack?.Text ?? NotCaptured,
                    lease.DisposeStack?.Text ?? NotCaptured,
                    _residentMonitor?.CaptureDisposeStack()?.Text ?? NotCaptured);
            }
            catch (Exception ex)
            {
                OnMonitorFailed(ex, "double-dispose report", lease.Id);
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>Called with <paramref name="disposing"/> false by the finalizer of a pool nobody disposed: the same steps, without logging.</remarks>
    protected override void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _trimTimer?.Dispose();
        if (disposing)
        {
            // Both hold the pool weakly; from the finalizer there is nothing to remove.
            OffHeapTrackerMetrics.Unregister(_meter, this);
            PoolRegistry.Remove(this);
        }

        // The rare side of the handshakes with Rent and Return (DirectBufferPool.ThreadState.cs). First: no rent
        // starts from here on, and those in flight finish. A returner must not release the slabs before that, or
        // a rent still in flight could grow a slab after the release.
        Interlocked.MemoryBarrierProcessWide();
        WaitForRentsInFlight();

        // Second: from here the count of rents is final, so a returner that sees _rentsStopped may release; one
        // that returned before this barrier is counted by the sum below.
        _rentsStopped = true;
        Interlocked.MemoryBarrierProcessWide();
        long outstanding = Sum().Outstanding;
        if (outstanding > 0 && disposing)
        {
            Log.PoolDisposedWithOutstanding(_logger, Name, outstanding);
        }

        ReleaseSlabsIfDrained();
    }

    private byte* AllocateUnpooled(int length, string reason, out byte[]? array)
    {
        byte* pointer;
        if (Backing == BufferBacking.PinnedArray)
        {
            // Safe: the lease holds the array for as long as it may touch the pointer, and pinned arrays never move.
            array = GC.AllocateUninitializedArray<byte>(length, pinned: true);
            pointer = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        }
        else
        {
            array = null;
            pointer = (byte*)_allocator.Allocate((nuint)length);
        }

        long total = Interlocked.Increment(ref _fallbackCount);
        try
        {
            if (_logger.IsEnabled(LogLevel.Warning) && _fallbackWarnings.ShouldLog(out long sinceLast))
            {
                string kind = Backing == BufferBacking.PinnedArray ? "pinned array" : "native allocation";
                Log.FallbackAllocation(_logger, Name, length, kind, reason, sinceLast, total);
            }
        }
        catch (Exception)
        {
            // A failing logger must not fail the rent, nor leak the allocation made above (the caller has not
            // seen the pointer yet). The fallback is still counted.
        }

        return pointer;
    }

    /// <summary>Reads a custom monitor's switch; one that throws counts as off, so <c>Rent</c> never throws for it.</summary>
    private bool IsCustomMonitorEnabled()
    {
        try
        {
            return _monitor.IsEnabled;
        }
        catch (Exception ex)
        {
            OnMonitorFailed(ex, nameof(IBufferMonitor.IsEnabled), bufferId: 0);
            return false;
        }
    }

    private void Track(DirectBuffer lease)
    {
        bool recorded = false;
        InternedStack? stack = null;
        string? context = null;
        long timestamp = 0;
        try
        {
            var allocation = new BufferAllocation(
                lease.Id, (nint)lease.Pointer, lease.RequestedSize, lease.Length, lease.BufferType, Name, lease.IsPooled)
            {
                PoolId = _poolId,
            };
            recorded = _residentMonitor is not null
                ? _residentMonitor.Record(in allocation, out stack, out context, out timestamp)
                : _monitor.OnAllocated(in allocation);
        }
        catch (Exception ex)
        {
            OnMonitorFailed(ex, nameof(IBufferMonitor.OnAllocated), lease.Id);
        }

        // Reuse what the record already read when it was taken on our clock: one clock read and one AsyncLocal
        // read per rent, not two.
        if (!recorded || !ReferenceEquals(_residentMonitor?.TimeProvider, _time))
        {
            timestamp = _time.GetTimestamp();
            context = BufferContext.Current;
        }

        lease.SetDiagnostics(timestamp, context, recorded, stack);
    }

    private void OnMonitorFailed(Exception exception, string operation, long bufferId)
    {
        Interlocked.Increment(ref _monitorErrorCount);
        try
        {
            Log.MonitorFailed(_logger, exception, operation, bufferId, Name);
        }
        catch (Exception)
        {
            // Counted above; a failing logger must not make Rent or Dispose throw either.
        }
    }

    /// <summary>The bytes a lease counts for in the statistics: its whole block when pooled (the lease may be shorter, see <see cref="MaxBufferSize"/>).</summary>
    private static int AccountedBytes(DirectBuffer lease) => lease.IsPooled ? SizeClasses.BlockSizeOf(lease.SizeClass) : lease.Length;

    /// <summary>Gets what a returned lease keeps of this pool: a weak reference, so a disposed lease held somewhere never keeps the pool alive.</summary>
    internal WeakReference<DirectBufferPool> WeakSelf => _weakSelf;

    /// <summary>Gives back slabs that stayed wholly free since the previous pass (one <see cref="DirectBufferPoolOptions.TrimAfter"/> apart).</summary>
    /// <returns>The bytes given back by this pass.</returns>
    /// <remarks>
    /// First takes back the cached blocks of threads that have exited and of threads that neither rented nor
    /// returned since the previous pass, so an idle thread's cache cannot keep a slab alive.
    /// </remarks>
    internal long TrimIdleSlabs()
    {
        long trimmed = 0;
        lock (_registryLock)
        {
            // Under the registry lock so the release of the slabs on disposal cannot interleave with a pass.
            if (_slabsReleased)
            {
                return 0;
            }

            TakeBackCachedBlocksUnsynchronized(idleOnly: true);
            foreach (SizeClass blocks in _classes)
            {
                trimmed += blocks.Trim(_budget);
            }
        }

        Interlocked.Add(ref _trimmedBytes, trimmed);
        return trimmed;
    }

    private static void TrimTick(WeakReference<DirectBufferPool> pool)
    {
        try
        {
            if (pool.TryGetTarget(out DirectBufferPool? target) && !target._disposed)
            {
                target.TrimIdleSlabs();
            }
        }
        catch (Exception ex)
        {
            // A timer callback must not throw; a failed pass leaves every slab in place and is retried next tick.
            if (pool.TryGetTarget(out DirectBufferPool? target))
            {
                Log.TrimFailed(target._logger, ex, target.Name);
            }
        }
    }

    private void FlushInUse(PoolThreadState state)
    {
        long inUse = Interlocked.Add(ref _flushedInUseBytes, state.PendingBytes);
        state.PendingBytes = 0;
        if (inUse > Volatile.Read(ref _highWaterBytes))
        {
            RaiseHighWater(inUse);
        }
    }

    private void RaiseHighWater(long inUse)
    {
        long seen = Volatile.Read(ref _highWaterBytes);
        while (inUse > seen)
        {
            long previous = Interlocked.CompareExchange(ref _highWaterBytes, inUse, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }

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
