using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Monitoring;

/// <summary>Walks the current thread's frame-pointer (RBP) chain and collects return addresses: the key of a fast stack capture, never its names.</summary>
/// <remarks>
/// <para>
/// On Linux x64 the JIT never uses RBP as a scratch register, and every method that is unoptimised, long, loops or
/// makes more than one call keeps an RBP frame: <c>[rbp]</c> holds the caller's RBP and <c>[rbp + 8]</c> the return
/// address into the caller. Small optimised methods that make one call may have no frame; their caller's return
/// address is then missing from the walk (measured: a chain of three one-line optimised wrappers loses their
/// callers). That is why a walk is only a key: names always come from <see cref="StackTrace"/>, and
/// <see cref="FastStackTable"/> checks keys against it.
/// </para>
/// <para>
/// The walk cannot fault: it reads only 8-byte-aligned words in [the walker's own frame pointer, the top of the
/// thread's stack), every byte of which is mapped (it is the live part of this thread's stack), it moves strictly
/// upward, so it ends, and it stops at a zero return address, at a frame pointer outside those bounds, or at
/// the caller's limit. It allocates nothing.
/// </para>
/// </remarks>
internal static unsafe class FramePointerWalker
{
    /// <summary>The most a walker's own frame pointer may lie above its locals: a frame of this method is a few dozen bytes; anything farther is not this method's frame.</summary>
    private const long MaxOwnFrameBytes = 4096;

    /// <summary>Collects the return addresses of the calling thread's frames, starting with the one into this method's caller, and the size of each frame.</summary>
    /// <param name="frames">Receives two entries per frame: <c>[2i]</c> the return address, <c>[2i + 1]</c> the distance from this frame's frame pointer to the next one (0 for the last).</param>
    /// <returns>The number of frames written, at most <c>frames.Length / 2</c>; 0 when the stub is not mapped or the chain does not start where it must.</returns>
    /// <remarks>
    /// Never inlined, optimised from the first call (no tier-0 version with a different frame), and it makes an
    /// unmanaged call and loops, so it always has an RBP frame of its own; the check of its frame pointer against
    /// the address of its local makes sure of it before anything is read.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static int Walk(Span<nint> frames)
    {
        delegate* unmanaged[SuppressGCTransition]<nint, nint> readFramePointer = NativeFrameReader.ReadFramePointerStub;
        nint high = NativeFrameReader.CurrentThreadStackHigh();
        if (readFramePointer == null || high == 0)
        {
            return 0;
        }

        // The stub returns this method's own frame pointer: the first in the chain at or above this local.
        nint local = 0;
        nint low = (nint)(&local);
        nint framePointer = readFramePointer(low);

        // RBP frames keep their locals below the frame pointer, close to it. Anything else means this method did
        // not get the frame it was written for: read nothing.
        if (framePointer < low || framePointer - low > MaxOwnFrameBytes || framePointer >= high)
        {
            return 0;
        }

        int max = frames.Length / 2;
        int count = 0;
        unchecked
        {
            while (count < max)
            {
                // Safe to read [framePointer] and [framePointer + 8]: low <= framePointer (the chain only goes
                // up from here), framePointer + 16 <= high, and 8-byte aligned, so both words lie in the mapped,
                // live part of this thread's stack.
                if ((framePointer & 7) != 0 || framePointer > high - 16)
                {
                    break;
                }

                Debug.Assert(framePointer >= low && framePointer + 16 <= high, "The walk stays inside the live stack.");
                nint next = *(nint*)framePointer;
                nint returnAddress = *(nint*)(framePointer + 8);
                if (returnAddress == 0)
                {
                    break;
                }

                bool goesOn = next > framePointer && next <= high - 16;
                frames[2 * count] = returnAddress;
                frames[(2 * count) + 1] = goesOn ? next - framePointer : 0;
                count++;
                if (!goesOn)
                {
                    break;
                }

                framePointer = next;
            }
        }

        return count;
    }
}
