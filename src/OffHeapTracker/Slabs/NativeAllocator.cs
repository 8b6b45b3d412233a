using System.Runtime.InteropServices;

namespace OffHeapTracker.Slabs;

/// <summary>The production allocator: <see cref="NativeMemory"/>, which throws <see cref="OutOfMemoryException"/> on failure.</summary>
internal sealed unsafe class NativeAllocator : INativeAllocator
{
    public static readonly NativeAllocator Instance = new();

    private NativeAllocator()
    {
    }

    public void* AllocateAligned(nuint byteCount, nuint alignment) => NativeMemory.AlignedAlloc(byteCount, alignment);

    public void FreeAligned(void* pointer) => NativeMemory.AlignedFree(pointer);

    public void* Allocate(nuint byteCount) => NativeMemory.Alloc(byteCount);

    public void Free(void* pointer) => NativeMemory.Free(pointer);
}
