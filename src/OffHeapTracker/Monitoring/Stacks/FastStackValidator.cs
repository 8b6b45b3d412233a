using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Monitoring;

/// <summary>Checks, before fast capture is first used, that the frame-pointer walk sees exactly the frames <see cref="StackTrace"/> sees, on known call chains.</summary>
/// <remarks>
/// <para>
/// There is no supported way to ask which method a return address belongs to, so the check is by consistency.
/// Each probe walks, then captures a <see cref="StackTrace"/> in the same method; walk entry <c>i</c> and frame
/// <c>i</c> (from 1, up to the chain's root) must be the same frame. If they are, then for each method,
/// <c>return address − the frame's native offset</c> is that method's code start, the same for every frame of it
/// across every chain, and different methods have different starts. A missing or extra frame shifts every later
/// pairing, and the root (reached from a different call site by every chain) or a repeated method then disagrees.
/// One exception to "one start per method": a catch or finally block is a funclet whose native offsets count from
/// its own start, so a method must not be reached both from its body and from one of its handlers in one check.
/// </para>
/// <para>
/// Chains: synchronous recursion, unoptimised and optimised; a chain of optimised, non-inlined methods each doing
/// real work; a catch block; and an async chain resumed through a completed <see cref="TaskCompletionSource"/>
/// (its continuation runs on this thread, through the runtime's resumption frames). Every method runs fewer than 30
/// times, so none is re-jitted by tiering in the middle of the check. Not in the list, on purpose: chains of
/// one-line optimised wrappers, which have no frame of their own and whose callers the walk does not see — a
/// known limit that <see cref="FastStackTable"/> guards against with its checks at run time.
/// </para>
/// </remarks>
internal static class FastStackValidator
{
    /// <summary>Walk entries kept per probe: enough for every chain here and in the tests (the deepest is about 110 frames) and the frames under it.</summary>
    private const int ProbeFrames = 256;

    /// <summary>Tests only: changes a probe's walk (two entries per frame) before it is compared.</summary>
    internal delegate nint[] Tamper(nint[] walk);

    /// <summary>Gets the number of probes the last validation compared.</summary>
    internal static int LastProbeCount { get; private set; }

    /// <summary>Runs every chain and compares.</summary>
    /// <param name="tamper">Tests only: alters each walk first.</param>
    /// <returns>Null when every probe agreed; otherwise where the first disagreement was.</returns>
    public static string? Validate(Tamper? tamper)
    {
        // On a thread of its own: no synchronization context or task scheduler of the caller's (which would send the
        // async chain's continuation elsewhere), and a stack that starts clean.
        var probes = new List<Probe>();
        Exception? failure = null;
        var thread = new Thread(
            () =>
            {
                try
                {
                    for (int chain = 0; chain < Root.ChainCount; chain++)
                    {
                        Root.Run(chain, probes);
                    }
                }
                catch (Exception ex)
                {
                    failure = ex;
                }
            },
            maxStackSize: 256 * 1024)
        {
            IsBackground = true,
            Name = "OffHeapTracker fast-stack validation",
        };
        try
        {
            thread.Start();
        }
        catch (Exception ex) when (ex is OutOfMemoryException or ThreadStartException)
        {
            return $"the validation thread could not start ({ex.GetType().Name})";
        }

        thread.Join();

        // Join orders the thread's writes to probes and failure before these reads.
        if (failure is not null)
        {
            return $"the validation chains threw {failure.GetType().Name}: {failure.Message}";
        }

        LastProbeCount = probes.Count;
        string? mismatch = Compare(probes, tamper, typeof(Root).GetMethod(nameof(Root.Run))!, out _);
        if (mismatch is not null)
        {
            return mismatch;
        }

        // Keys are admitted only when a walk is seen to be complete (FastStackTable.WalkSeesEveryFrame): on these
        // chains, where nothing is hidden, every walk must be seen so, or no key would ever be answered.
        foreach (Probe probe in probes)
        {
            if (!FastStackTable.CountsAgree(probe.Walk, probe.Trace.FrameCount, static address => NativeFrameReader.IsInNativeModule(address)))
            {
                return $"the walk of the {probe.Chain} chain does not end in native code where StackTrace's frames end";
            }
        }

        return null;
    }

    /// <summary>Compares every probe's walk with its trace, frame by frame from frame 1 up to <paramref name="root"/>.</summary>
    /// <param name="probes">The probes.</param>
    /// <param name="tamper">Tests only: alters each walk first.</param>
    /// <param name="root">The method each chain starts from; null to compare every frame <see cref="StackTrace"/> shows (for a chain resumed on the thread pool, whose starting method is no longer on the stack).</param>
    /// <param name="framesCompared">How many frames were compared and agreed.</param>
    /// <returns>Null when every probe agreed; otherwise where the first disagreement was.</returns>
    internal static string? Compare(List<Probe> probes, Tamper? tamper, MethodBase? root, out int framesCompared)
    {
        framesCompared = 0;
        var startOf = new Dictionary<MethodBase, nint>();
        var methodAt = new Dictionary<nint, MethodBase>();
        foreach (Probe probe in probes)
        {
            nint[] walk = tamper is null ? probe.Walk : tamper(probe.Walk);
            int rootIndex = root is null ? probe.Trace.FrameCount - 1 : -1;
            for (int i = 0; root is not null && i < probe.Trace.FrameCount; i++)
            {
                if (probe.Trace.GetFrame(i) is { } candidate && Equals(FrameMethods.Method(candidate), root))
                {
                    rootIndex = i;
                    break;
                }
            }

            if (rootIndex < 1)
            {
                return $"the {probe.Chain} chain's trace does not reach its root (it ran elsewhere)";
            }

            if (walk.Length / 2 <= rootIndex)
            {
                return $"the walk of the {probe.Chain} chain found {walk.Length / 2} frames, StackTrace at least {rootIndex + 1}";
            }

            // Entry 0 is the return into the probe from the walk, a different call site than the trace's frame 0.
            for (int i = 1; i <= rootIndex; i++)
            {
                StackFrame frame = probe.Trace.GetFrame(i)!;
                if (FrameMethods.Method(frame) is not { } method || frame.GetNativeOffset() == StackFrame.OFFSET_UNKNOWN)
                {
                    return $"StackTrace gave no method or native offset at frame {i} of the {probe.Chain} chain";
                }

                nint start = unchecked(walk[2 * i] - frame.GetNativeOffset());
                if ((startOf.TryGetValue(method, out nint known) && known != start)
                    || (methodAt.TryGetValue(start, out MethodBase? other) && !other.Equals(method)))
                {
                    return $"the walk and StackTrace disagree at frame {i} ({method.DeclaringType?.Name}.{method.Name}) of the {probe.Chain} chain";
                }

                startOf[method] = start;
                methodAt[start] = method;
                framesCompared++;
            }
        }

        return null;
    }

    /// <summary>One probe: the walk and the trace taken in the same method, one after the other.</summary>
    internal sealed record Probe(string Chain, nint[] Walk, StackTrace Trace);

    /// <summary>The chains. <see cref="Run"/> is every chain's root, reached from a different call site by each.</summary>
    internal static class Root
    {
        public const int ChainCount = 6;

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Run(int chain, List<Probe> probes)
        {
            switch (chain)
            {
                case 0:
                    Chains.RecurseUnoptimized(3, "recursion", probes);
                    break;
                case 1:
                    Chains.RecurseUnoptimized(12, "deep recursion", probes);
                    break;
                case 2:
                    Chains.RecurseOptimized(8, probes);
                    break;
                case 3:
                    Chains.First(probes);
                    break;
                case 4:
                    Chains.InCatch(probes);
                    break;
                default:
                    Chains.AsyncResumed(probes);
                    break;
            }
        }
    }

    private static class Chains
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
        public static void RecurseUnoptimized(int depth, string name, List<Probe> probes)
        {
            if (depth == 0)
            {
                TakeProbe(name, probes);
                return;
            }

            RecurseUnoptimized(depth - 1, name, probes);
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static void RecurseOptimized(int depth, List<Probe> probes)
        {
            if (depth == 0)
            {
                TakeProbe("optimised recursion", probes);
                return;
            }

            RecurseOptimized(depth - 1, probes);
            GC.KeepAlive(probes);
        }

        // Optimised, never inlined, each does work around its call (as code that rents a buffer does): the frames a
        // real allocation stack is made of.
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static void First(List<Probe> probes)
        {
            int before = probes.Count;
            Second(probes, before);
            if (probes.Count == before)
            {
                throw new InvalidOperationException("The chain took no probe.");
            }

            Second(probes, probes.Count);
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Second(List<Probe> probes, int seen)
        {
            for (int i = 0; i < 1 + (seen & 1); i++)
            {
                Third(probes, $"chain {i}");
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Third(List<Probe> probes, string name)
        {
            if (name.Length > 0)
            {
                TakeProbe("non-inlined " + name, probes);
            }

            GC.KeepAlive(name);
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static void InCatch(List<Probe> probes)
        {
            try
            {
                throw new InvalidOperationException("probe");
            }
            catch (InvalidOperationException)
            {
                TakeProbe("catch block", probes);
            }
        }

        public static void AsyncResumed(List<Probe> probes)
        {
            // Without RunContinuationsAsynchronously, SetResult runs the awaiting method's continuation right here,
            // through the same resumption frames (state machine box, execution context) a thread-pool resume uses.
            var resume = new TaskCompletionSource();
            Task awaiting = AwaitThenProbe(resume.Task, probes);
            resume.SetResult();
            awaiting.GetAwaiter().GetResult();
        }

        private static async Task AwaitThenProbe(Task resume, List<Probe> probes)
        {
            await resume.ConfigureAwait(false);
            await Inner(probes).ConfigureAwait(false);
        }

        private static async Task Inner(List<Probe> probes)
        {
            TakeProbe("async resumed", probes);
            await Task.CompletedTask.ConfigureAwait(false);
        }
    }

    /// <summary>Walks, then captures a <see cref="StackTrace"/>, in this one method, and keeps both.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void TakeProbe(string chain, List<Probe> probes)
    {
        Span<nint> walk = stackalloc nint[2 * ProbeFrames];
        int frames = FramePointerWalker.Walk(walk);
        var trace = new StackTrace(0, false);
        probes.Add(new Probe(chain, walk[..(2 * frames)].ToArray(), trace));
    }
}
