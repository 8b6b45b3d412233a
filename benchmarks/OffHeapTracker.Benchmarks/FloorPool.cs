using System.Buffers;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Benchmarks;

/// <summary>
/// The least a <see cref="MemoryPool{T}"/> can do and still give out an owner that a racing second <c>Dispose</c>
/// cannot make return its buffer twice: an <see cref="ArrayPool{T}"/> array in a reused owner object (a
/// thread-static stack of them, as our lease recycler keeps), and one interlocked exchange on <c>Dispose</c>.
/// </summary>
/// <remarks>
/// A yardstick for the monitor-off target "Rent + Dispose at most 2× <c>ArrayPool&lt;byte&gt;.Shared</c>", not a
/// pool to use: nothing stops a stale owner (reused at once) from reaching the next renter's array, there are no
/// statistics, no age census, no dropped-lease safety net, and the arrays are managed. What it costs over
/// <c>ArrayPool</c> is what any owner-object pool with a race-safe <c>Dispose</c> pays before doing anything else.
/// </remarks>
internal sealed class FloorPool : MemoryPool<byte>
{
    [ThreadStatic]
    private static Stack<Owner>? t_owners;

    public override int MaxBufferSize => 1024 * 1024;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        Stack<Owner> owners = t_owners ??= new Stack<Owner>();
        if (!owners.TryPop(out Owner? owner))
        {
            owner = new Owner();
        }

        owner.Array = ArrayPool<byte>.Shared.Rent(minBufferSize < 0 ? 4096 : minBufferSize);
        owner.State = 0;
        return owner;
    }

    protected override void Dispose(bool disposing)
    {
    }

    private sealed class Owner : IMemoryOwner<byte>
    {
        public byte[]? Array;
        public int State;

        public Memory<byte> Memory => State == 0 ? Array : throw new ObjectDisposedException(nameof(Owner));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dispose()
        {
            // The one interlocked operation: of two racing calls, one returns the array.
            if (Interlocked.Exchange(ref State, 1) != 0)
            {
                return;
            }

            ArrayPool<byte>.Shared.Return(Array!);
            Array = null;
            (t_owners ??= new Stack<Owner>()).Push(this);
        }
    }
}
