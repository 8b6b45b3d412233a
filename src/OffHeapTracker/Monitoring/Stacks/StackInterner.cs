using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;

namespace OffHeapTracker.Monitoring;

/// <summary>The table behind <see cref="StackCapture"/>: captures stacks as frames and shares one <see cref="CapturedStackTrace"/> per distinct stack.</summary>
/// <remarks>
/// Identity is (method, IL offset) per frame, or the native code address where the runtime has no method (NativeAOT), hashed to 64 bits; a hash hit is confirmed frame by frame, and on a
/// true collision the newcomer gets its own unshared entry. Bounded: past <c>maxStacks</c> distinct stacks a
/// new stack is refused (the caller counts the buffer as dropped) so the table cannot grow without end.
/// </remarks>
internal sealed class StackInterner(int maxStacks)
{
    private static readonly Assembly s_ownAssembly = typeof(StackInterner).Assembly;
    private static readonly string? s_ownAssemblyName = s_ownAssembly.GetName().Name;

    private readonly ConcurrentDictionary<long, CapturedStackTrace> _stacks = new();
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public int MaxStacks => maxStacks;

    /// <summary>Captures the current stack, skipping OffHeapTracker's frames so the first frame is the renter's caller.</summary>
    /// <returns>The shared stack, or null if it is new and the table is full.</returns>
    public CapturedStackTrace? Capture(int depth, bool fileInfo) => Capture(depth, fileInfo, out _);

    /// <summary>Captures the current stack as <see cref="Capture(int, bool)"/> does, and says how many frames the whole stack had.</summary>
    /// <param name="depth">Frames kept.</param>
    /// <param name="fileInfo">Whether frames carry file and line.</param>
    /// <param name="totalFrames">Every frame of the stack from this method's caller down, OffHeapTracker's own included.</param>
    /// <returns>The shared stack, or null if it is new and the table is full.</returns>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public CapturedStackTrace? Capture(int depth, bool fileInfo, out int totalFrames)
    {
        var trace = new StackTrace(1, fileInfo);
        int total = trace.FrameCount;
        totalFrames = total;
        int first = 0;
        while (first < total && IsOwnFrame(trace.GetFrame(first)))
        {
            first++;
        }

        int count = Math.Min(depth, total - first);
        var frames = new StackFrame[count];
        long hash = unchecked((long)14695981039346656037UL);
        for (int i = 0; i < count; i++)
        {
            StackFrame frame = trace.GetFrame(first + i)!;
            frames[i] = frame;
            hash = Mix(hash, FrameMethods.IdentityHash(frame));
            hash = Mix(hash, frame.GetILOffset());
        }

        if (_stacks.TryGetValue(hash, out CapturedStackTrace? existing))
        {
            return existing.SameFramesAs(frames) ? existing : new CapturedStackTrace(frames, hash);
        }

        if (Interlocked.Increment(ref _count) > maxStacks)
        {
            Interlocked.Decrement(ref _count);
            return null;
        }

        var created = new CapturedStackTrace(frames, hash);
        CapturedStackTrace winner = _stacks.GetOrAdd(hash, created);
        if (!ReferenceEquals(winner, created))
        {
            // Another thread interned the same hash first; our slot in the count was not used.
            Interlocked.Decrement(ref _count);
            return winner.SameFramesAs(frames) ? winner : created;
        }

        return created;
    }

    private static bool IsOwnFrame(StackFrame? frame)
    {
        if (frame is null)
        {
            return false;
        }

        if (FrameMethods.Method(frame) is { } method)
        {
            return method.DeclaringType?.Assembly == s_ownAssembly;
        }

        // No metadata (NativeAOT): the names stack-trace metadata keeps still say whose frame it is.
        return FrameMethods.Names(frame)?.SimpleAssemblyName == s_ownAssemblyName;
    }

    private static long Mix(long hash, int value) => unchecked((hash ^ value) * 1099511628211L);
}
