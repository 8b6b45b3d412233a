using System.Collections.Concurrent;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Monitoring;

/// <summary>The fast capture: a frame-pointer walk is the key, and the first capture of each new key is a real <see cref="StackTrace"/>, whose interned <see cref="CapturedStackTrace"/> every later capture with that key shares.</summary>
/// <remarks>
/// <para>
/// Names always come from the supported API; only the key (the return addresses and frame sizes of the first
/// frames, OffHeapTracker's own included) is read from the stack directly. A key stands for one stack only if the
/// walk saw every frame that tells two stacks apart; a frameless method hides its caller's return address (see
/// <see cref="FramePointerWalker"/>), and two stacks then can share a key (measured in optimised code: callers of a
/// one-line wrapper, overrides reached from one virtual call site). So a key is admitted only when its first walk
/// saw exactly the managed frames <see cref="StackTrace"/> saw (<see cref="CountsAgree"/>): a stack with a hidden
/// frame cannot then walk to the same key, since the hidden method's frame would change a frame size in it. Keys
/// not admitted are kept, unanswerable, and their stacks captured with <see cref="StackTrace"/>. As a backstop every
/// admitted key is checked too: its first <see cref="EarlyChecks"/> later captures, then
/// about one capture in <see cref="CheckInterval"/> per thread, capture a real <see cref="StackTrace"/> too and
/// compare. A key found to stand for two stacks is dropped (its stacks are captured the slow way from then on),
/// counted in <see cref="Mismatches"/> and reported; after <see cref="MaxMismatches"/> the whole table turns off.
/// </para>
/// <para>
/// Bounded alongside the table of distinct stacks: at most as many keys as that table's <c>maxStacks</c>
/// (tiering and on-stack replacement give one stack several keys over time). Past the bound a new key is captured
/// the slow way and not kept; nothing is refused because of it.
/// </para>
/// <para>All members are thread-safe.</para>
/// </remarks>
internal sealed class FastStackTable
{
    /// <summary>Frames walked beyond the kept depth: OffHeapTracker's own frames between the walk and the renter's caller (capture, tracker, pool; about five), with room to spare.</summary>
    public const int OwnFrameAllowance = 8;

    /// <summary>A key's first captures after its first sighting are all checked against a real <see cref="StackTrace"/>.</summary>
    public const int EarlyChecks = 4;

    /// <summary>After its early checks, a key is checked on about one capture in this many per thread (drawn at random, so no call pattern can dodge it).</summary>
    public const int CheckInterval = 1024;

    /// <summary>The deepest stack (in frames) whose key can be admitted: the first sighting walks it whole.</summary>
    public const int MaxAdmittedFrames = 256;

    /// <summary>Keys found to stand for two stacks before the table turns itself off.</summary>
    public const int MaxMismatches = 8;

    [ThreadStatic]
    private static int t_checkCountdown;

    [ThreadStatic]
    private static uint t_random;

    private readonly ConcurrentDictionary<long, Entry> _entries = new();
    private readonly int _maxKeys;
    private readonly int _keyFrames;
    private readonly Action<string>? _onMismatch;
    private readonly int _maxMismatches;
    private readonly int _earlyChecks;
    private int _count;
    private int _mismatches;
    private int _incompleteKeys;
    private long _checks;
    private volatile bool _active = true;

    /// <param name="maxKeys">The most keys kept.</param>
    /// <param name="depth">The frames each stack keeps, from the renter's caller.</param>
    /// <param name="onMismatch">Told, with a description, when a key turns out to stand for two stacks.</param>
    /// <param name="keyFrames">Tests only: frames per key (fewer make different stacks share keys); 0 for the depth plus <see cref="OwnFrameAllowance"/>.</param>
    /// <param name="maxMismatches">Tests only: mismatches before the table turns off; 0 for <see cref="MaxMismatches"/>.</param>
    /// <param name="earlyChecks">Tests and audits only: how many captures of each key are checked before sampling takes over; 0 for <see cref="EarlyChecks"/>, <see cref="int.MaxValue"/> to check every capture.</param>
    public FastStackTable(int maxKeys, int depth, Action<string>? onMismatch, int keyFrames = 0, int maxMismatches = 0, int earlyChecks = 0)
    {
        _earlyChecks = earlyChecks > 0 ? earlyChecks : EarlyChecks;
        _maxKeys = maxKeys;
        _keyFrames = keyFrames > 0 ? keyFrames : depth + OwnFrameAllowance;
        _onMismatch = onMismatch;
        _maxMismatches = maxMismatches > 0 ? maxMismatches : MaxMismatches;
    }

    /// <summary>Gets a value indicating whether captures use the walk; false once <see cref="MaxMismatches"/> keys stood for two stacks.</summary>
    public bool IsActive => _active;

    /// <summary>Gets the number of keys kept.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Gets the number of captures of a known key that were checked against a real <see cref="StackTrace"/>.</summary>
    public long Checks => Volatile.Read(ref _checks);

    /// <summary>Gets the number of keys not admitted because their walk missed a frame StackTrace saw (a frameless method hid its caller, or native code sat between managed frames): their stacks are always captured with StackTrace.</summary>
    public int IncompleteKeys => Volatile.Read(ref _incompleteKeys);

    /// <summary>Gets the number of keys found to stand for two stacks.</summary>
    public int Mismatches => Volatile.Read(ref _mismatches);

    /// <summary>Captures the calling thread's stack: from its key when known, else through <paramref name="names"/>, and says how long the slow part took.</summary>
    /// <param name="names">The table of distinct stacks, which captures and interns a real <see cref="StackTrace"/>.</param>
    /// <param name="depth">Frames kept.</param>
    /// <param name="fileInfo">Whether frames carry file and line.</param>
    /// <param name="fast">True when the answer came from a key alone (no <see cref="StackTrace"/> was captured).</param>
    /// <param name="slowTicks">When <paramref name="fast"/> is false: the <see cref="Stopwatch"/> ticks spent capturing with <see cref="StackTrace"/> (and checking or admitting the key); 0 otherwise.</param>
    /// <returns>The interned stack, or null when it is new and <paramref name="names"/> is full.</returns>
    /// <remarks>
    /// The fast path reads no clock: a clock read costs 40-70 ns on a virtual machine, about as much as the walk and the
    /// lookup together, so <see cref="StackCapture"/> times only a sample of fast captures. A slow one costs tens of
    /// microseconds and is timed here, every time, so the budget is charged for each. Locals are not zeroed: the walk
    /// writes every key entry before it is read.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    [SkipLocalsInit]
    public CapturedStackTrace? Capture(StackInterner names, int depth, bool fileInfo, out bool fast, out long slowTicks)
    {
        fast = false;
        Span<nint> key = stackalloc nint[2 * _keyFrames];
        int frames = FramePointerWalker.Walk(key);
        long hash = 0;
        Entry? entry = null;
        CapturedStackTrace? known = null;
        bool matched = false;
        if (frames > 0)
        {
            Debug.Assert(frames <= _keyFrames, "The walk writes at most the frames it was given room for.");
            key = key[..(2 * frames)];
            hash = Hash(key);
            matched = _entries.TryGetValue(hash, out entry) && key.SequenceEqual(entry.Key);
            if (matched)
            {
                // The entry was published fully built through the dictionary; Stack only ever goes from a stack to
                // null, and a thread that reads the stack just before another drops it returns that stack once more:
                // tolerated. The countdown is only counted down for an entry past its early checks.
                known = entry!.Stack;
                if (known is not null && entry.Checks >= _earlyChecks && --t_checkCountdown > 0)
                {
                    // No shared write and no clock read on this path: StackCapture counts fast captures in per-thread
                    // batches and times a sample of them.
                    fast = true;
                    slowTicks = 0;
                    return known;
                }
            }
        }

        // Everything from here is a slow capture, timed as one.
        long slowStart = Stopwatch.GetTimestamp();
        CapturedStackTrace? stack;
        if (frames == 0 || (matched && known is null))
        {
            // No key (the walk found no frames), or a key not admitted or dropped after a mismatch: captured the slow
            // way for good.
            stack = names.Capture(depth, fileInfo);
        }
        else if (matched)
        {
            stack = CheckKey(entry!, known!, names, depth, fileInfo);
        }
        else
        {
            stack = CaptureFirstSighting(names, depth, fileInfo, key, hash, collided: entry is not null);
        }

        slowTicks = Stopwatch.GetTimestamp() - slowStart;
        return stack;
    }

    /// <summary>A key's first sighting (or a 64-bit hash shared by another key): the real capture, right here on this thread, names the stack the key was walked from, and the key is admitted if the walk saw every frame.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private CapturedStackTrace? CaptureFirstSighting(StackInterner names, int depth, bool fileInfo, ReadOnlySpan<nint> key, long hash, bool collided)
    {
        CapturedStackTrace? stack = names.Capture(depth, fileInfo, out int traceFrames);
        if (stack is not null && !collided && Volatile.Read(ref _count) < _maxKeys)
        {
            // Admitted only if the walk saw every frame StackTrace saw (no frameless method hid its caller): then a
            // stack with a hidden frame cannot produce this key, as the hidden method's frame would change a frame
            // size in it. A key not admitted is kept too, unanswerable, so it is not examined again.
            bool complete = WalkSeesEveryFrame(traceFrames);
            if (Interlocked.Increment(ref _count) > _maxKeys || !_entries.TryAdd(hash, new Entry(key.ToArray(), complete ? stack : null)))
            {
                // Full, or another thread added this key first (with the same names, or its check will tell).
                Interlocked.Decrement(ref _count);
            }
            else if (!complete)
            {
                Interlocked.Increment(ref _incompleteKeys);
            }
        }

        return stack;
    }

    private CapturedStackTrace? CheckKey(Entry entry, CapturedStackTrace known, StackInterner names, int depth, bool fileInfo)
    {
        if (entry.Checks >= _earlyChecks)
        {
            t_checkCountdown = NextCheckCountdown();
        }

        // Racy increment: two threads checking at once count once, and each still checks.
        entry.Checks++;
        Interlocked.Increment(ref _checks);
        CapturedStackTrace? actual = names.Capture(depth, fileInfo);
        if (ReferenceEquals(actual, known) || (actual is not null && SameFrames(actual.Frames, known.Frames)))
        {
            return actual;
        }

        // The key stands for two stacks (or for a stack the full table of distinct stacks refused: also not the
        // one it names). Drop it, once, and say so.
        if (Interlocked.CompareExchange(ref entry.Stack, null, known) == known)
        {
            int mismatches = Interlocked.Increment(ref _mismatches);
            bool off = mismatches >= _maxMismatches;
            if (off)
            {
                _active = false;
            }

            _onMismatch?.Invoke(
                $"one frame-pointer key was walked from two different stacks; that key is captured with StackTrace from now on ({mismatches} such keys{(off ? "; fast capture is now off for this monitor" : string.Empty)}).\nNamed first:\n{known.Text}\nNow:\n{actual?.Text ?? "(a new stack the full table refused)"}");
        }

        return actual;
    }

    /// <summary>Walks the whole stack and says whether its managed part has exactly <paramref name="traceFrames"/> frames below this method: true when no frame was hidden from the walk.</summary>
    /// <param name="traceFrames">The frames <see cref="StackTrace"/> saw, counted from this method's caller.</param>
    [MethodImpl(MethodImplOptions.NoInlining)]
    [SkipLocalsInit]
    private static bool WalkSeesEveryFrame(int traceFrames)
    {
        Span<nint> frames = stackalloc nint[2 * MaxAdmittedFrames];
        int walked = FramePointerWalker.Walk(frames);

        // frames[0] returns into this method, frames[1] into its caller (the method that captured the trace).
        return CountsAgree(frames[..(2 * walked)], traceFrames + 1, static address => NativeFrameReader.IsInNativeModule(address));
    }

    /// <summary>Says whether the walk's managed entries (those before the first return address into a native module) are exactly <paramref name="managedFrames"/>, and a native one follows them.</summary>
    /// <param name="walk">A walk, two entries per frame.</param>
    /// <param name="managedFrames">The managed frames the same stack has.</param>
    /// <param name="isNative">Whether an address is in a native module; null when that cannot be told.</param>
    internal static bool CountsAgree(ReadOnlySpan<nint> walk, int managedFrames, Func<nint, bool?> isNative)
    {
        int frames = walk.Length / 2;
        for (int i = 0; i < frames; i++)
        {
            bool? native = isNative(walk[2 * i]);
            if (native is null)
            {
                return false;
            }

            if (native.Value)
            {
                return i == managedFrames;
            }

            if (i >= managedFrames)
            {
                // More managed entries than frames: the walk saw something StackTrace does not; not what was checked.
                return false;
            }
        }

        // The walk ended (or ran out of room) before any native code: the managed part was not seen to its end.
        return false;
    }

    private static bool SameFrames(IReadOnlyList<StackFrame> a, IReadOnlyList<StackFrame> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (int i = 0; i < a.Count; i++)
        {
            if (!FrameMethods.SameSite(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Uniform in 1 to 2 × <see cref="CheckInterval"/>: one check in about <see cref="CheckInterval"/> captures, at points no loop can keep away from.</summary>
    private static int NextCheckCountdown()
    {
        uint x = t_random;
        if (x == 0)
        {
            x = unchecked((uint)Environment.CurrentManagedThreadId * 2654435761u) | 1;
        }

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        t_random = x;
        return 1 + (int)(x % (2 * CheckInterval));
    }

    private static long Hash(ReadOnlySpan<nint> key)
    {
        // Four independent multiply lanes, so the CPU overlaps them (one serial chain over 48 words costs more than
        // the walk); a hash only picks the entry, and the whole key is compared before it is used.
        const ulong Prime = 0x9E3779B97F4A7C15UL;
        ulong a = 14695981039346656037UL, b = 0xC2B2AE3D27D4EB4FUL, c = 0x165667B19E3779F9UL, d = 0x27D4EB2F165667C5UL;
        int i = 0;
        unchecked
        {
            for (; i + 4 <= key.Length; i += 4)
            {
                a = (a ^ (ulong)key[i]) * Prime;
                b = (b ^ (ulong)key[i + 1]) * Prime;
                c = (c ^ (ulong)key[i + 2]) * Prime;
                d = (d ^ (ulong)key[i + 3]) * Prime;
            }

            for (; i < key.Length; i++)
            {
                a = (a ^ (ulong)key[i]) * Prime;
            }

            ulong hash = a ^ BitOperations.RotateLeft(b, 17) ^ BitOperations.RotateLeft(c, 31) ^ BitOperations.RotateLeft(d, 47) ^ (ulong)key.Length;
            hash ^= hash >> 29;
            hash *= Prime;
            hash ^= hash >> 32;
            return (long)hash;
        }
    }

    private sealed class Entry(nint[] key, CapturedStackTrace? stack)
    {
        public readonly nint[] Key = key;

        /// <summary>The stack this key names; null when the key was not admitted or was found to stand for two stacks.</summary>
        public CapturedStackTrace? Stack = stack;

        /// <summary>How many of this key's captures were checked; approximate (racy), only ever compared with <see cref="EarlyChecks"/>.</summary>
        public int Checks;
    }
}
