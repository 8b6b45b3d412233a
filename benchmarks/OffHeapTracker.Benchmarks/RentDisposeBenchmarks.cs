using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Benchmarks;

/// <summary>One thread: rent a buffer, touch it, give it back. The baseline is what proxies use today, ArrayPool.</summary>
[MemoryDiagnoser]
public class RentDisposeBenchmarks
{
    private const int Ops = 16;

    private readonly FloorPool _floor = new();
    private MemoryPool<byte> _kestrel = null!;
    private IDisposable _host = null!;
    private DirectBufferPool _off = null!;
    private DirectBufferPool _noStacks = null!;
    private DirectBufferPool _sampled = null!;
    private DirectBufferPool _fullStacks = null!;
    private DirectBufferPool _allocStacks = null!;
    private DirectBufferPool _budgeted = null!;

    [Params(4096, 16384, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _kestrel = Subjects.Kestrel(out _host);
        _off = Subjects.Direct(Subjects.Off());
        _noStacks = Subjects.Direct(Subjects.On(depth: 0));
        _sampled = Subjects.Direct(Subjects.On(depth: 16, sampling: 16));
        _fullStacks = Subjects.Direct(Subjects.On(depth: 16));
        _allocStacks = Subjects.Direct(Subjects.On(depth: 16, disposeStacks: false));
        _budgeted = Subjects.Direct(Subjects.OnWithDefaults());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _kestrel.Dispose();
        _host.Dispose();
        _off.Dispose();
        _noStacks.Dispose();
        _sampled.Dispose();
        _fullStacks.Dispose();
        _allocStacks.Dispose();
        _budgeted.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public void ArrayPoolShared()
    {
        for (int i = 0; i < Ops; i++)
        {
            byte[] array = ArrayPool<byte>.Shared.Rent(Size);
            array[0] = 1;
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public void MemoryPoolShared()
    {
        for (int i = 0; i < Ops; i++)
        {
            using IMemoryOwner<byte> owner = MemoryPool<byte>.Shared.Rent(Size);
            owner.Memory.Span[0] = 1;
        }
    }

    /// <summary>An owner object over an ArrayPool array with a race-safe Dispose, and nothing else: see <see cref="FloorPool"/>.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void OwnerFloor()
    {
        for (int i = 0; i < Ops; i++)
        {
            using IMemoryOwner<byte> owner = _floor.Rent(Size);
            owner.Memory.Span[0] = 1;
        }
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public unsafe void NativeMemoryAllocFree()
    {
        for (int i = 0; i < Ops; i++)
        {
            byte* p = (byte*)NativeMemory.Alloc((nuint)Size);
            p[0] = 1;
            NativeMemory.Free(p);
        }
    }

    /// <summary>Kestrel's pool serves only 4 KiB blocks; larger sizes show as NA.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void KestrelPool()
    {
        if (Size > _kestrel.MaxBufferSize)
        {
            throw new NotSupportedException($"Kestrel's pool serves at most {_kestrel.MaxBufferSize} bytes.");
        }

        for (int i = 0; i < Ops; i++)
        {
            using IMemoryOwner<byte> owner = _kestrel.Rent(Size);
            owner.Memory.Span[0] = 1;
        }
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public void DirectMonitorOff() => RentDispose(_off);

    [Benchmark(OperationsPerInvoke = Ops)]
    public void DirectMonitorOnNoStacks() => RentDispose(_noStacks);

    [Benchmark(OperationsPerInvoke = Ops)]
    public void DirectMonitorOnSampled16() => RentDispose(_sampled);

    /// <summary>The default (<c>BufferMonitor.Enable()</c>): budgeted stacks, 1 % of one core; a tight loop of rents is far over budget, so this is the sampled steady state.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void DirectMonitorOnBudgeted() => RentDispose(_budgeted);

    /// <summary><c>StackPolicy.Every</c> with dispose stacks: an allocation and a first-dispose stack per buffer.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void DirectMonitorOnFullStacks() => RentDispose(_fullStacks);

    /// <summary><c>StackPolicy.Every</c>, allocation stacks only: one capture per buffer, as the bare row.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void DirectMonitorOnAllocStacksOnly() => RentDispose(_allocStacks);

    /// <summary>The floor for full stacks: a bare capture from the same call depth as the rent above.</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public void BareStackTrace()
    {
        for (int i = 0; i < Ops; i++)
        {
            CaptureAtRentDepth();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RentDispose(DirectBufferPool pool)
    {
        for (int i = 0; i < Ops; i++)
        {
            DirectBuffer lease = pool.Rent(Size);
            lease.GetSpan()[0] = 1;
            lease.Dispose();
        }
    }

    // The monitor captures three frames below Rent (Rent, Track, Record, then the capture itself); so does this.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static StackTrace CaptureAtRentDepth() => Below1();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static StackTrace Below1() => Below2();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static StackTrace Below2() => Below3();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static StackTrace Below3() => new(false);
}
