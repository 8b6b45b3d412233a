namespace OffHeapTracker.Slabs;

/// <summary>Receives the rented blocks a census walk finds (a struct, so the walk is generic and allocation-free).</summary>
internal interface IRentStampVisitor
{
    /// <summary>Called once per outstanding buffer.</summary>
    /// <param name="stamp">The buffer's <see cref="RentStamp"/>.</param>
    /// <param name="bytes">The bytes the pool holds for it: the whole block when pooled.</param>
    void Visit(long stamp, int bytes);
}
