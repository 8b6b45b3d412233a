using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Benchmarks;

/// <summary>
/// <c>--audit-fast-stacks</c>: optimised (Release) code captures through a fast-stack table that checks
/// <em>every</em> capture of a known key against a real StackTrace, over many call shapes, and prints how many
/// captures were compared and how many keys turned out to stand for two stacks.
/// </summary>
/// <remarks>
/// The shapes: recursion at 0–40 frames, async chains resumed on the thread pool from four threads at once, virtual
/// and interface dispatch, lambdas and LINQ, generic methods, catch and finally blocks, and the known weak spot:
/// one-line optimised wrappers (no frame of their own) reached from several callers through one delegate call site.
/// Each shape runs long enough for its methods to reach tier 1.
/// </remarks>
internal static class FastStackAudit
{
    private static readonly List<string> s_mismatches = [];
    private static FastStackTable s_table = null!;
    private static StackInterner s_names = null!;
    private static long s_captures;
    private static long s_fast;

    public static void Run()
    {
        if (FastStackSupport.UnavailableReason is { } reason)
        {
            Console.WriteLine($"Fast capture is off here: {reason}");
            return;
        }

        s_names = new StackInterner(1_000_000);
        s_table = new FastStackTable(1_000_000, depth: 16, OnMismatch, maxMismatches: int.MaxValue, earlyChecks: int.MaxValue);

        // Three times over: the first round runs mostly tier-0 code, the later ones (after tiering's delay) tier 1.
        for (int round = 0; round < 3; round++)
        {
            for (int depth = 0; depth <= 40; depth++)
            {
                for (int i = 0; i < 40; i++)
                {
                    Recurse(depth);
                }
            }

            Task[] workers = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(AsyncWorkload))];
            Task.WaitAll(workers);

            Shape[] shapes = [new Circle(), new Square()];
            IVisitor[] visitors = [new Left(), new Right()];
            Func<int, int>[] wrappers = [CallerOne, CallerTwo, CallerThree];
            for (int i = 0; i < 400; i++)
            {
                shapes[i % 2].Draw();
                visitors[i % 2].Visit(i);
                _ = Enumerable.Range(0, 2).Select(x => Capture() + x).Sum();
                Generic<string>(i);
                Generic<int>(i);
                InCatch();
                InFinally();
                _ = wrappers[i % 3](i);
            }

            Thread.Sleep(500);
        }

        Console.WriteLine($"captures: {s_captures:N0}; answered from a key: {s_fast:N0}; checked against StackTrace: {s_table.Checks:N0}");
        Console.WriteLine($"keys: {s_table.Count:N0} ({s_table.IncompleteKeys:N0} not admitted: their walk missed a frame); distinct stacks: {s_names.Count:N0}; keys found to stand for two stacks: {s_table.Mismatches}");
        PoolThroughMonitor();
        foreach (string mismatch in s_mismatches.Take(5))
        {
            Console.WriteLine("---");
            Console.WriteLine(mismatch);
        }
    }

    /// <summary>The real path: a pool with the monitor on and a stack for every buffer, renting from two methods.</summary>
    private static void PoolThroughMonitor()
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.Every });
        monitor.Enable();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "audit", Monitor = monitor });
        System.Buffers.MemoryPool<byte> asMemoryPool = pool;
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < 2000; i++)
            {
                RentDirect(pool);
                RentThroughMemoryPool(asMemoryPool);
            }

            Thread.Sleep(300);
        }

        StackCapture capture = monitor.StackCapture!;
        FastStackTable table = capture.FastTable!;
        Console.WriteLine($"pool, policy every: {capture.CaptureCount:N0} captures, {capture.FastCaptureCount:N0} from a key; keys {table.Count} ({table.IncompleteKeys} not admitted), {table.Checks:N0} checked, {table.Mismatches} mismatches; distinct stacks {capture.Count}");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RentDirect(DirectBufferPool pool) => pool.Rent(4096).Dispose();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RentThroughMemoryPool(System.Buffers.MemoryPool<byte> pool) => pool.Rent(4096).Dispose();

    private static void OnMismatch(string description)
    {
        lock (s_mismatches)
        {
            s_mismatches.Add(description);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Capture()
    {
        _ = s_table.Capture(s_names, 16, false, out bool fast, out _);
        Interlocked.Increment(ref s_captures);
        if (fast)
        {
            Interlocked.Increment(ref s_fast);
        }

        return 1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Recurse(int depth) => depth == 0 ? Capture() : Recurse(depth - 1) + 1;

    private static async Task AsyncWorkload()
    {
        for (int i = 0; i < 200; i++)
        {
            await AsyncOuter(i);
        }
    }

    private static async Task AsyncOuter(int i)
    {
        await Task.Yield();
        await AsyncMiddle(i);
    }

    private static async Task AsyncMiddle(int i)
    {
        if (i % 3 == 0)
        {
            await Task.Yield();
        }

        Capture();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Generic<T>(int i)
    {
        if (i >= 0)
        {
            Capture();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void InCatch()
    {
        try
        {
            throw new InvalidOperationException();
        }
        catch (InvalidOperationException)
        {
            Capture();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void InFinally()
    {
        try
        {
            Capture();
        }
        finally
        {
            Capture();
        }
    }

    // The weak spot: three callers of one frameless wrapper, all reached through the same delegate call site above.
    // Optimised from the first call, so they are frameless from the start rather than after tiering.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int Wrapper(int x) => Capture() + x;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int CallerOne(int x) => Wrapper(x);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int CallerTwo(int x) => Wrapper(x);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int CallerThree(int x) => Wrapper(x + 1);

    private interface IVisitor
    {
        void Visit(int i);
    }

    private abstract class Shape
    {
        public abstract void Draw();
    }

    private sealed class Circle : Shape
    {
        [MethodImpl(MethodImplOptions.NoInlining)]
        public override void Draw() => Capture();
    }

    private sealed class Square : Shape
    {
        [MethodImpl(MethodImplOptions.NoInlining)]
        public override void Draw() => Capture();
    }

    private sealed class Left : IVisitor
    {
        [MethodImpl(MethodImplOptions.NoInlining)]
        public void Visit(int i) => Capture();
    }

    private sealed class Right : IVisitor
    {
        [MethodImpl(MethodImplOptions.NoInlining)]
        public void Visit(int i) => Capture();
    }
}
