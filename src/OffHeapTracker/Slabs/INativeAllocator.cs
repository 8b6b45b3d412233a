namespace OffHeapTracker.Slabs;

/// <summary>The seam between the pool and the C allocator, so tests can inject failures and count frees.</summary>
/// <remarks>
/// Memory from <see cref="AllocateAligned"/> must go back through <see cref="FreeAligned"/> and memory from
/// <see cref="Allocate"/> through <see cref="Free"/>: the two come from different C functions
/// (<c>aligned_alloc</c>/<c>malloc</c> and their frees) and mixing them is undefined behaviour.
/// Implementations throw <see cref="OutOfMemoryException"/> when the memory cannot be had.
/// </remarks>
internal unsafe interface INativeAllocator
{
    void* AllocateAligned(nuint byteCount, nuint alignment);

    void FreeAligned(void* pointer);

    void* Allocate(nuint byteCount);

    void Free(void* pointer);
}
