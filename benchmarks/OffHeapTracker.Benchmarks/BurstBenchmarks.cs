using System.Buffers;
using BenchmarkDotNet.Attributes;

namespace OffHeapTracker.Benchmarks;

/// <summary>A burst, as a proxy sees when a large response arrives: rent 64 buffers of 4 KiB, then return all 64.</summary>
[MemoryDiagnoser]
public class BurstBenchmarks
{
    private const int Burst = 64;

    private readonly byte[][] _arrays = new byte[Burst][];
    private readonly IMemoryOwner<byte>[] _owners = new IMemoryOwner<byte>[Burst];
    private MemoryPool<byte> _kestrel = null!;
    private IDisposable _host = null!;
    private DirectBufferPool _direct = null!;

    [GlobalSetup]
    public void Setup()
    {
        _kestrel = Subjects.Kestrel(out _host);
        _direct = Subjects.Direct(Subjects.Off());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _kestrel.Dispose();
        _host.Dispose();
        _direct.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Burst)]
    public void ArrayPoolShared()
    {
        for (int i = 0; i < Burst; i++)
        {
            _arrays[i] = ArrayPool<byte>.Shared.Rent(4096);
        }

        for (int i = 0; i < Burst; i++)
        {
            ArrayPool<byte>.Shared.Return(_arrays[i]);
        }
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public void MemoryPoolShared() => RentAndReturnAll(MemoryPool<byte>.Shared);

    [Benchmark(OperationsPerInvoke = Burst)]
    public void KestrelPool() => RentAndReturnAll(_kestrel);

    [Benchmark(OperationsPerInvoke = Burst)]
    public void DirectMonitorOff() => RentAndReturnAll(_direct);

    private void RentAndReturnAll(MemoryPool<byte> pool)
    {
        for (int i = 0; i < Burst; i++)
        {
            _owners[i] = pool.Rent(4096);
        }

        for (int i = 0; i < Burst; i++)
        {
            _owners[i].Dispose();
        }
    }
}
