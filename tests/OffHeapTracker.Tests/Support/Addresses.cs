namespace OffHeapTracker.Tests.Support;

internal static unsafe class Addresses
{
    /// <summary>The native address of a lease's first byte.</summary>
    public static nint Of(DirectBuffer lease)
    {
        using System.Buffers.MemoryHandle handle = lease.Pin();
        return (nint)handle.Pointer;
    }
}
