using System.Collections.Concurrent;
using OffHeapTracker.Slabs;

namespace OffHeapTracker.Tests.Support;

/// <summary>Wraps the real allocator: counts and checks every allocation and free, and fails on demand.</summary>
internal sealed unsafe class TestAllocator : INativeAllocator
{
    private readonly ConcurrentDictionary<nint, (bool Aligned, nuint Length)> _live = new();

    /// <summary>Gets or sets a value indicating whether the next allocations throw <see cref="OutOfMemoryException"/>.</summary>
    public bool Fail { get; set; }

    public int AlignedAllocations;
    public int AlignedFrees;
    public int Allocations;
    public int Frees;

    public int LiveCount => _live.Count;

    /// <summary>Gets the aligned allocations (slabs) not yet freed, as start address and length.</summary>
    public IReadOnlyList<(nint Start, nuint Length)> LiveAlignedAllocations =>
        [.. _live.Where(entry => entry.Value.Aligned).Select(entry => (entry.Key, entry.Value.Length))];

    public void* AllocateAligned(nuint byteCount, nuint alignment)
    {
        ThrowIfFailing();
        void* p = NativeAllocator.Instance.AllocateAligned(byteCount, alignment);
        Interlocked.Increment(ref AlignedAllocations);

        Assert.True(_live.TryAdd((nint)p, (true, byteCount)));
        return p;
    }

    public void FreeAligned(void* pointer)
    {
        // A double free or a free of memory we never handed out fails the test instead of corrupting the heap.
        Assert.True(_live.TryRemove((nint)pointer, out (bool Aligned, nuint) entry) && entry.Aligned, "freed an unknown or already freed slab");
        Interlocked.Increment(ref AlignedFrees);
        NativeAllocator.Instance.FreeAligned(pointer);
    }

    public void* Allocate(nuint byteCount)
    {
        ThrowIfFailing();
        void* p = NativeAllocator.Instance.Allocate(byteCount);
        Interlocked.Increment(ref Allocations);
        Assert.True(_live.TryAdd((nint)p, (false, byteCount)));
        return p;
    }

    public void Free(void* pointer)
    {
        Assert.True(_live.TryRemove((nint)pointer, out (bool Aligned, nuint) entry) && !entry.Aligned, "freed an unknown or already freed allocation");
        Interlocked.Increment(ref Frees);
        NativeAllocator.Instance.Free(pointer);
    }

    private void ThrowIfFailing()
    {
        if (Fail)
        {
#pragma warning disable CA2201 // NativeMemory throws exactly this on failure, and the pool must cope with it.
            throw new OutOfMemoryException("injected by TestAllocator");
#pragma warning restore CA2201
        }
    }
}
