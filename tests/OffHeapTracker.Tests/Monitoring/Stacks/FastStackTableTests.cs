using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

/// <summary>Interning by frame-pointer key: one shared stack per call site, names from StackTrace, and keys that turn out to stand for two stacks dropped.</summary>
public sealed class FastStackTableTests
{
    [Fact]
    public void SameCallSite_IsAnsweredFromItsKey_WithTheSameInstance_AnotherSiteGetsItsOwn()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        // On a thread of its own: xunit calls a test through reflection, which puts native code between managed
        // frames, and such a stack's key is never admitted (see FastStackTable.CountsAgree).
        FreshThread.Run(() =>
        {
            var names = new StackInterner(100);
            var table = new FastStackTable(100, depth: 16, onMismatch: null);
            var atA = new List<(CapturedStackTrace? Stack, bool Fast)>();
            var atB = new List<(CapturedStackTrace? Stack, bool Fast)>();
            for (int i = 0; i < 50; i++)
            {
                atA.Add(CaptureAtSiteA(table, names));
                atB.Add(CaptureAtSiteB(table, names));
            }

            Assert.NotNull(atA[0].Stack);
            Assert.All(atA, c => Assert.Same(atA[0].Stack, c.Stack));
            Assert.All(atB, c => Assert.Same(atB[0].Stack, c.Stack));
            Assert.NotSame(atA[0].Stack, atB[0].Stack);
            Assert.StartsWith("OffHeapTracker.Tests.Monitoring.Stacks.FastStackTableTests.CaptureAtSiteA", atA[0].Stack!.Text, StringComparison.Ordinal);
            Assert.StartsWith("OffHeapTracker.Tests.Monitoring.Stacks.FastStackTableTests.CaptureAtSiteB", atB[0].Stack!.Text, StringComparison.Ordinal);

            // The first sighting and the early checks are real StackTraces; after them, captures come from the key.
            Assert.False(atA[0].Fast);
            Assert.True(atA.Count(c => c.Fast) >= 50 - 1 - FastStackTable.EarlyChecks - 5, $"{atA.Count(c => c.Fast)} fast");
            Assert.Equal(2, table.Count);
            Assert.Equal(0, table.IncompleteKeys);
            Assert.Equal(2, names.Count);
            Assert.Equal(0, table.Mismatches);
        });
    }

    [Fact]
    public void FastCaptures_AreCountedInBatches_AndChargedTheirTimedSamplesAverage()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        FreshThread.Run(() =>
        {
            var capture = new StackCapture(16, 1, false, false, 100, onRefused: null, cpuBudget: 0, fastStacksOffReason: null);

            // Past the first sighting and the early checks, then one whole batch more so every count has landed.
            for (int i = 0; i < 64; i++)
            {
                CaptureThroughPolicy(capture);
            }

            long fastBefore = capture.FastCaptureCount;
            TimeSpan timeBefore = capture.FastCaptureTime;
            const int Batches = 20;
            for (int i = 0; i < Batches * 32; i++)
            {
                CaptureThroughPolicy(capture);
            }

            // Only one fast capture in FastTimingInterval reads the clock; the batch is still charged for all of
            // them. A periodic check (a slow capture, about one in a thousand) may take the place of a fast one.
            long fast = capture.FastCaptureCount - fastBefore;
            TimeSpan charged = capture.FastCaptureTime - timeBefore;
            Assert.InRange(fast, (Batches - 2) * 32, Batches * 32);
            Assert.True(fast % 32 == 0, $"{fast} fast captures counted: not whole batches");

            // Counted apart from the slow captures (a periodic check may fall in the run): a walk and a lookup take
            // at least 10 ns each, so the untimed captures must be charged too, at their timed neighbours' average.
            Assert.True(charged >= TimeSpan.FromTicks(fast * 10 / 100), $"{fast} fast captures charged {charged.TotalMicroseconds:0.0} µs");
        });
    }

    [Fact]
    public void ASlowCapture_SaysHowLongItTook_AFastOneReadsNoClockAndSaysZero()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        FreshThread.Run(() =>
        {
            var names = new StackInterner(100);
            var table = new FastStackTable(100, depth: 16, onMismatch: null);
            var captures = new List<(CapturedStackTrace? Stack, bool Fast, long SlowTicks)>();
            for (int i = 0; i < 50; i++)
            {
                captures.Add(CaptureAtSiteATimed(table, names));
            }

            // StackCapture charges its budget with these: a slow capture (the first sighting, the early checks) costs
            // microseconds and must say so; a fast one is timed by StackCapture, on a sample, and must say 0.
            Assert.False(captures[0].Fast);
            Assert.All(captures.Where(c => !c.Fast), c => Assert.True(c.SlowTicks > 0, "a slow capture said it took no time"));
            Assert.All(captures.Where(c => c.Fast), c => Assert.Equal(0, c.SlowTicks));
            Assert.Contains(captures, c => c.Fast);
        });
    }

    public static TheoryData<string, int, bool> Walks => new()
    {
        // M = managed (JIT or ReadyToRun) return address, N = native (in a module the dynamic linker loaded).
        { "MMMNNN", 3, true },
        { "MMMN", 3, true },
        { "MMNN", 3, false },   // a frame StackTrace saw is missing from the walk: a frameless method hid its caller
        { "MMMMN", 3, false },  // the walk saw a frame StackTrace did not
        { "MMM", 3, false },    // the walk ended before native code: not seen to its end
        { "MNMN", 2, false },   // native code between managed frames (a callback): the managed part is not one run
        { "", 0, false },
    };

    [Theory]
    [MemberData(nameof(Walks))]
    public void AKeyIsAdmitted_OnlyWhenItsWalkSawExactlyTheFramesStackTraceSaw(string walk, int managedFrames, bool admitted)
    {
        nint[] entries = [.. walk.SelectMany(c => new nint[] { c == 'N' ? 0x7000 : 0x1000, 64 })];

        Assert.Equal(admitted, FastStackTable.CountsAgree(entries, managedFrames, address => address == 0x7000));
        Assert.False(FastStackTable.CountsAgree(entries, managedFrames, _ => null));
    }

    [Fact]
    public void ANativeModuleIsToldFromManagedCode()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        Span<nint> frames = stackalloc nint[2 * 256];
        int walked = FramePointerWalker.Walk(frames);

        // This test's own method is JIT-compiled; the bottom of every thread is native (the runtime, libc).
        Assert.Equal(false, NativeFrameReader.IsInNativeModule(frames[0]));
        Assert.Equal(true, NativeFrameReader.IsInNativeModule(frames[2 * (walked - 1)]));
    }

    [Fact]
    public void NamesFromTheKey_EqualAPlainStackTraceCaptureOfTheSameSite()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        // On a thread of its own: xunit calls a test through reflection, which puts native code between managed
        // frames, and such a stack's key is never admitted (see FastStackTable.CountsAgree).
        FreshThread.Run(() =>
        {
            var fast = new StackCapture(16, 1, false, false, 100, onRefused: null, cpuBudget: 0, fastStacksOffReason: null);
            var plain = new StackCapture(16, 1, false, false, 100, onRefused: null, cpuBudget: 0, fastStacksOffReason: "test");
            // One call site for both policies: 100 captures through the fast one (most answered from its key), then
            // one through StackTrace alone.
            const int FastOnes = 100;
            CapturedStackTrace? fromKey = null;
            CapturedStackTrace? fromStackTrace = null;
            for (int i = 0; i <= FastOnes; i++)
            {
                StackCapture policy = i < FastOnes ? fast : plain;
                CapturedStackTrace? stack = CaptureThroughPolicy(policy);
                (i < FastOnes ? ref fromKey : ref fromStackTrace) = stack;
            }

            Assert.True(fast.FastCaptureCount > 0, "no capture was answered from a key");
            Assert.NotNull(fromKey);
            Assert.NotNull(fromStackTrace);
            Assert.Equal(fromStackTrace.Text, fromKey.Text);
            Assert.Equal(
                fromStackTrace.Frames.Select(f => (f.GetMethod(), f.GetILOffset())),
                fromKey.Frames.Select(f => (f.GetMethod(), f.GetILOffset())));
        });
    }

    [Fact]
    public void AKeyThatStandsForTwoStacks_IsCaughtByItsChecks_Reported_AndCapturedTheSlowWayFromThenOn()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        // On a thread of its own: xunit calls a test through reflection, which puts native code between managed
        // frames, and such a stack's key is never admitted (see FastStackTable.CountsAgree).
        FreshThread.Run(() =>
        {
            // One frame per key: only the return into the table itself, so every call site shares one key, as two
            // stacks would if a frameless method hid the frame that tells them apart.
            var reports = new List<string>();
            var names = new StackInterner(100);
            var table = new FastStackTable(100, depth: 16, reports.Add, keyFrames: 1, maxMismatches: 2);

            (CapturedStackTrace? a, _) = CaptureAtSiteA(table, names);
            var atB = new List<(CapturedStackTrace? Stack, bool Fast)>();
            for (int i = 0; i < 2; i++)
            {
                atB.Add(CaptureAtSiteB(table, names));
            }

            ((CapturedStackTrace? b, bool bFast), (CapturedStackTrace? bAgain, bool bAgainFast)) = (atB[0], atB[1]);

            // The key's first later capture is checked: B gets its own true stack, never A's.
            Assert.NotNull(a);
            Assert.NotNull(b);
            Assert.NotSame(a, b);
            Assert.StartsWith("OffHeapTracker.Tests.Monitoring.Stacks.FastStackTableTests.CaptureAtSiteB", b.Text, StringComparison.Ordinal);
            Assert.Same(b, bAgain);
            Assert.False(bFast);
            Assert.False(bAgainFast);
            Assert.Equal(1, table.Mismatches);
            Assert.True(table.IsActive);
            string report = Assert.Single(reports);
            Assert.Contains("CaptureAtSiteA", report, StringComparison.Ordinal);
            Assert.Contains("CaptureAtSiteB", report, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void AfterEnoughMismatches_TheTableTurnsItselfOff()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        // On a thread of its own: xunit calls a test through reflection, which puts native code between managed
        // frames, and such a stack's key is never admitted (see FastStackTable.CountsAgree).
        FreshThread.Run(() =>
        {
            var reports = new List<string>();
            var names = new StackInterner(100);

            // With one-frame keys every site shares one key, so a table allowed one mismatch shows the turn-off.
            var table = new FastStackTable(100, depth: 16, reports.Add, keyFrames: 1, maxMismatches: 1);
            CaptureAtSiteA(table, names);
            CaptureAtSiteB(table, names);

            Assert.False(table.IsActive);
            Assert.Contains("now off", Assert.Single(reports), StringComparison.Ordinal);
        });
    }

    [Fact]
    public void KeysAreBoundedAlongsideMaxStacks_PastTheBoundCapturesStayCorrect()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        // On a thread of its own: xunit calls a test through reflection, which puts native code between managed
        // frames, and such a stack's key is never admitted (see FastStackTable.CountsAgree).
        FreshThread.Run(() =>
        {
            var names = new StackInterner(100);
            var table = new FastStackTable(maxKeys: 1, depth: 16, onMismatch: null);
            for (int i = 0; i < 5; i++)
            {
                CaptureAtSiteA(table, names);
            }

            var atB = new List<(CapturedStackTrace? Stack, bool Fast)>();
            for (int i = 0; i < 2; i++)
            {
                atB.Add(CaptureAtSiteB(table, names));
            }

            ((CapturedStackTrace? b, bool bFast), (CapturedStackTrace? bAgain, bool bAgainFast)) = (atB[0], atB[1]);
            Assert.Equal(1, table.Count);
            Assert.Same(b, bAgain);
            Assert.False(bFast || bAgainFast);
            Assert.StartsWith("OffHeapTracker.Tests.Monitoring.Stacks.FastStackTableTests.CaptureAtSiteB", b!.Text, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void AcrossThreads_OneSiteSharesOneStack()
    {
        if (!FramePointerWalkerTests.EnsureMapped())
        {
            return;
        }

        var capture = new StackCapture(16, 1, false, false, 100, onRefused: null, cpuBudget: 0, fastStacksOffReason: null);
        var seen = new System.Collections.Concurrent.ConcurrentBag<CapturedStackTrace?>();
        Thread[] threads = [.. Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                seen.Add(CaptureThroughPolicy(capture));
            }
        }))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        // Fresh threads start their walks at the same frames, so they share the key; either way, one stack.
        Assert.Single(seen.Distinct());
        Assert.NotNull(seen.First());
        Assert.Equal(0, capture.FastTable!.Mismatches);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (CapturedStackTrace? Stack, bool Fast) CaptureAtSiteA(FastStackTable table, StackInterner names)
    {
        (CapturedStackTrace? stack, bool fast, _) = CaptureAtSiteATimed(table, names);
        return (stack, fast);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (CapturedStackTrace? Stack, bool Fast, long SlowTicks) CaptureAtSiteATimed(FastStackTable table, StackInterner names)
    {
        CapturedStackTrace? stack = table.Capture(names, 16, false, out bool fast, out long slowTicks);
        return (stack, fast, slowTicks);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (CapturedStackTrace? Stack, bool Fast) CaptureAtSiteB(FastStackTable table, StackInterner names)
    {
        CapturedStackTrace? stack = table.Capture(names, 16, false, out bool fast, out _);
        return (stack, fast);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static CapturedStackTrace? CaptureThroughPolicy(StackCapture capture) => capture.Capture();
}
