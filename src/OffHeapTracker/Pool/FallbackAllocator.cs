using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using OffHeapTracker.Diagnostics;
using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>Serves the requests a pool's slabs cannot (too large, or the capacity is used up) with a one-off allocation, counted and warned about at most once per 10 seconds.</summary>
internal sealed unsafe class FallbackAllocator
{
    private static readonly TimeSpan s_warningInterval = TimeSpan.FromSeconds(10);

    private readonly string _poolName;
    private readonly BufferBacking _backing;
    private readonly INativeAllocator _allocator;
    private readonly ILogger _logger;
    private readonly WarningRateLimiter _warnings;
    private long _count;

    public FallbackAllocator(string poolName, BufferBacking backing, INativeAllocator allocator, ILogger logger, TimeProvider warningClock)
    {
        _poolName = poolName;
        _backing = backing;
        _allocator = allocator;
        _logger = logger;
        _warnings = new WarningRateLimiter(warningClock, s_warningInterval);
    }

    /// <summary>Gets the number of rents served this way.</summary>
    public long Count => Volatile.Read(ref _count);

    /// <summary>Allocates <paramref name="length"/> bytes: a pinned array for a pinned-array pool, native memory otherwise.</summary>
    /// <param name="length">The bytes needed, at least 1.</param>
    /// <param name="reason">Why the slabs could not serve it, for the warning.</param>
    /// <param name="array">The pinned array behind the pointer, or null for native memory (which <see cref="Free"/> must release).</param>
    /// <exception cref="OutOfMemoryException">The memory could not be allocated.</exception>
    public byte* Allocate(int length, string reason, out byte[]? array)
    {
        byte* pointer;
        if (_backing == BufferBacking.PinnedArray)
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

        long total = Interlocked.Increment(ref _count);
        try
        {
            if (_logger.IsEnabled(LogLevel.Warning) && _warnings.ShouldLog(out long sinceLast))
            {
                string kind = _backing == BufferBacking.PinnedArray ? "pinned array" : "native allocation";
                Log.FallbackAllocation(_logger, _poolName, length, kind, reason, sinceLast, total);
            }
        }
        catch (Exception)
        {
            // A failing logger must not fail the rent, nor leak the allocation made above (the caller has not
            // seen the pointer yet). The fallback is still counted.
        }

        return pointer;
    }

    /// <summary>Frees a native fallback allocation. Called once, by the one thread that owns it (the lease's winning dispose, or a failed rent).</summary>
    public void Free(byte* pointer) => _allocator.Free(pointer);
}
