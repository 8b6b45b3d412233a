using System.Diagnostics;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Benchmarks;

/// <summary>One stack capture at a few stack depths: <see cref="StackTrace"/> (the baseline), the policy capturing with StackTrace, and the policy with fast capture (a frame-pointer walk keyed to interned stacks).</summary>
/// <remarks>
/// <see cref="Frames"/> extra frames of recursion sit between BenchmarkDotNet's own frames (about ten) and the
/// capture, so the captured stack is about Frames + 10 deep. Every capture in a row comes from one call site, so the
/// fast rows measure the steady state: a walk, a lookup, and one check against StackTrace in about 1,024 captures.
/// The pool rows rent and return one 4 KiB buffer with the monitor on and a stack for every buffer.
/// </remarks>
[MemoryDiagnoser]
public class FastStackCaptureBenchmarks
{
    private const int Ops = 16;

    private StackCapture _plain = null!;
    private StackCapture _fast = null!;
    private StackCapture _fastBudgeted = null!;
    private DirectBufferPool _poolPlain = null!;
    private DirectBufferPool _poolFast = null!;

    [Params(0, 20, 50)]
    public int Frames { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        if (FastStackSupport.UnavailableReason is { } reason)
        {
            throw new InvalidOperationException($"Fast capture is off here: {reason}");
        }

        _plain = new StackCapture(16, 1, false, false, 65_536, onRefused: null, cpuBudget: 0, fastStacksOffReason: "benchmark baseline");
        _fast = new StackCapture();

        // A whole core of budget, so the interval stays at 1 and every call captures: the controller's own cost per capture.
        _fastBudgeted = StackCapture.Budgeted(cpuBudget: 1);
        _poolPlain = Subjects.Direct(Every(fast: false));
        _poolFast = Subjects.Direct(Every(fast: true));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _poolPlain.Dispose();
        _poolFast.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public int NewStackTrace() => Recurse(Frames, Mode.NewStackTrace);

    [Benchmark(OperationsPerInvoke = Ops)]
    public int PolicyStackTrace() => Recurse(Frames, Mode.Plain);

    [Benchmark(OperationsPerInvoke = Ops)]
    public int PolicyFast() => Recurse(Frames, Mode.Fast);

    [Benchmark(OperationsPerInvoke = Ops)]
    public int PolicyFastBudgeted() => Recurse(Frames, Mode.FastBudgeted);

    [Benchmark(OperationsPerInvoke = Ops)]
    public int WalkOnly() => Recurse(Frames, Mode.Walk);

    [Benchmark(OperationsPerInvoke = Ops)]
    public int PoolRentDisposeEveryStackTrace() => Recurse(Frames, Mode.PoolPlain);

    [Benchmark(OperationsPerInvoke = Ops)]
    public int PoolRentDisposeEveryFast() => Recurse(Frames, Mode.PoolFast);

    private static ResidentBufferMonitor Every(bool fast)
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.Every, FastStacks = fast });
        monitor.Enable();
        return monitor;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int Recurse(int frames, Mode mode) => frames == 0 ? CaptureMany(mode) : Recurse(frames - 1, mode) + 1;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private unsafe int CaptureMany(Mode mode)
    {
        int sum = 0;
        Span<nint> walk = stackalloc nint[2 * 24];
        for (int i = 0; i < Ops; i++)
        {
            switch (mode)
            {
                case Mode.NewStackTrace:
                    sum += new StackTrace(1, false).FrameCount;
                    break;
                case Mode.Plain:
                    sum += _plain.Capture() is null ? 0 : 1;
                    break;
                case Mode.Fast:
                    sum += _fast.Capture() is null ? 0 : 1;
                    break;
                case Mode.FastBudgeted:
                    sum += _fastBudgeted.Capture() is null ? 0 : 1;
                    break;
                case Mode.Walk:
                    sum += FramePointerWalker.Walk(walk);
                    break;
                case Mode.PoolPlain:
                    _poolPlain.Rent(4096).Dispose();
                    break;
                default:
                    _poolFast.Rent(4096).Dispose();
                    break;
            }
        }

        return sum;
    }

    private enum Mode
    {
        NewStackTrace,
        Plain,
        Fast,
        FastBudgeted,
        Walk,
        PoolPlain,
        PoolFast,
    }
}
