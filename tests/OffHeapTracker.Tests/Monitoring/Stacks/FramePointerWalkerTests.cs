using System.Reflection;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;
using Probe = OffHeapTracker.Monitoring.FastStackValidator.Probe;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

/// <summary>The walk sees exactly the frames StackTrace sees, frame by frame, on chains other than the startup validation's own.</summary>
/// <remarks>
/// Each probe walks and then captures a StackTrace in one method; <see cref="FastStackValidator.Compare"/> pairs walk
/// entry i with frame i and checks that return address − native offset is one code start per method across every
/// probe of a test (a missing or extra frame breaks that).
/// </remarks>
public sealed class FramePointerWalkerTests
{
    [Fact]
    public void SyncRecursion_AtSeveralDepths_MatchesStackTrace()
    {
        if (!EnsureMapped())
        {
            return;
        }

        var probes = new List<Probe>();
        foreach (int depth in new[] { 1, 5, 30, 100 })
        {
            Recurse(depth, probes);
        }

        AssertAgree(probes, Method(nameof(SyncRecursion_AtSeveralDepths_MatchesStackTrace)), minFrames: 136);
    }

    [Fact]
    public void ChainThroughNonInlinedMethods_FromTwoCallSites_MatchesStackTrace()
    {
        if (!EnsureMapped())
        {
            return;
        }

        var probes = new List<Probe>();
        Outer(probes, 1);
        Outer(probes, 2);

        AssertAgree(probes, Method(nameof(ChainThroughNonInlinedMethods_FromTwoCallSites_MatchesStackTrace)), minFrames: 3 * 3);
    }

    [Fact]
    public void InsideACatchBlock_AndThroughALambda_MatchesStackTrace()
    {
        if (!EnsureMapped())
        {
            return;
        }

        // A catch block is a funclet whose native offsets count from its own start, so it sits in a method of its
        // own here: the test method is then reached from its body only, and keeps one code start.
        var probes = new List<Probe>();
        InCatch(probes);
        Action<List<Probe>> viaDelegate = p => Middle(p, "lambda");
        viaDelegate(probes);
        InCatch(probes);

        AssertAgree(probes, Method(nameof(InsideACatchBlock_AndThroughALambda_MatchesStackTrace)), minFrames: 3 * 4);
    }

    [Fact]
    public async Task AsyncChain_ResumedOnTheThreadPool_MatchesStackTrace()
    {
        if (!EnsureMapped())
        {
            return;
        }

        var probes = new List<Probe>();
        for (int i = 0; i < 3; i++)
        {
            await AsyncOuter(probes);
        }

        // After the yield the chain runs on a pool thread: the test method is no longer on the stack, so the root is
        // AsyncOuter's state machine, resumed by the runtime. Frames below it are not compared: each probe may run on
        // another pool thread, and a thread that entered the dispatch loop before the runtime re-jitted it (tiering,
        // on-stack replacement) is still in the older code, so "one code start per method" would not hold there —
        // a difference in code versions, not in frames (CI saw exactly that at ThreadPoolWorkQueue.Dispatch).
        MethodBase outerResumed = typeof(FramePointerWalkerTests).GetNestedTypes(BindingFlags.NonPublic)
            .Single(t => t.Name.Contains(nameof(AsyncOuter), StringComparison.Ordinal))
            .GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)!;
        AssertAgree(probes, outerResumed, minFrames: 3 * 3);
    }

    [Fact]
    public void Walk_IntoATooSmallSpan_StopsAtItsEnd_AndAnEmptySpanReadsNothing()
    {
        if (!EnsureMapped())
        {
            return;
        }

        Span<nint> two = stackalloc nint[4];
        Assert.Equal(2, FramePointerWalker.Walk(two));
        Assert.All(two.ToArray().Where((_, i) => i % 2 == 0), address => Assert.NotEqual(0, address));
        Assert.Equal(0, FramePointerWalker.Walk([]));
    }

    [Fact]
    public void Walk_OnAFreshThread_ReadsThatThreadsBounds_AndStopsInsideThem()
    {
        if (!EnsureMapped())
        {
            return;
        }

        FreshThread.Run(() =>
        {
            Span<nint> frames = stackalloc nint[2 * 512];
            int count = FramePointerWalker.Walk(frames);

            // A fresh thread's stack is shallow: the walk must end on its own (zero return address, or a frame
            // pointer leaving the stack), long before 512 frames.
            Assert.InRange(count, 2, 100);
        });
    }

    internal static bool EnsureMapped()
    {
        // Validation (FastStackSupport) maps the stub; elsewhere than Linux x64 there is nothing to walk.
        if (!FastStackPlatform.IsSupported)
        {
            Assert.NotNull(FastStackSupport.UnavailableReason);
            return false;
        }

        Assert.True(NativeFrameReader.TryMapStub(out string? failure), failure);
        return true;
    }

    private static void AssertAgree(List<Probe> probes, MethodBase? root, int minFrames)
    {
        string? mismatch = FastStackValidator.Compare(probes, tamper: null, root, out int compared);
        Assert.Null(mismatch);
        Assert.True(compared >= minFrames, $"{compared} frames compared");
    }

    private static MethodInfo Method(string name) => typeof(FramePointerWalkerTests).GetMethod(name)!;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Recurse(int depth, List<Probe> probes)
    {
        if (depth == 0)
        {
            FastStackValidator.TakeProbe("recursion", probes);
            return;
        }

        Recurse(depth - 1, probes);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void InCatch(List<Probe> probes)
    {
        try
        {
            throw new InvalidOperationException("probe");
        }
        catch (InvalidOperationException)
        {
            Middle(probes, "catch");
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Outer(List<Probe> probes, int times)
    {
        for (int i = 0; i < times; i++)
        {
            Middle(probes, "chain");
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Middle(List<Probe> probes, string name) => Inner(probes, name + "/inner");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Inner(List<Probe> probes, string name) => FastStackValidator.TakeProbe(name, probes);

    private static async Task AsyncOuter(List<Probe> probes)
    {
        await Task.Yield();
        await AsyncMiddle(probes);
    }

    private static async Task AsyncMiddle(List<Probe> probes)
    {
        await Task.CompletedTask;
        lock (probes)
        {
            FastStackValidator.TakeProbe("async", probes);
        }
    }
}
