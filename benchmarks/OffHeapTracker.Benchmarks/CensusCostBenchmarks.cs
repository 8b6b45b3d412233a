extern alias CensusCompiledOut;

using System.Buffers;
using BenchmarkDotNet.Attributes;
using WithoutCensus = CensusCompiledOut::OffHeapTracker;

namespace OffHeapTracker.Benchmarks;

/// <summary>What the always-on age census costs the monitor-off Rent+Dispose: the pool against the same source with the census compiled out, side by side in one process.</summary>
/// <remarks>
/// The census reads the coarse clock once per rent and stamps the block (one store), and clears the stamp on
/// return (one store). <c>OffHeapTracker.CensusCompiledOut</c> is built from the same files with
/// <c>CENSUS_COMPILED_OUT</c> defined, which removes exactly those three statements (see the benchmark project file).
/// Both pools have the monitor off, as in production before anyone switches it on.
/// </remarks>
[MemoryDiagnoser]
public class CensusCostBenchmarks
{
    private const int Ops = 16;

    private DirectBufferPool _withCensus = null!;
    private WithoutCensus.DirectBufferPool _withoutCensus = null!;

    [Params(4096, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _withCensus = new DirectBufferPool(new DirectBufferPoolOptions { Name = "census" });
        _withoutCensus = new WithoutCensus.DirectBufferPool(new WithoutCensus.DirectBufferPoolOptions { Name = "no-census" });

        // A check that the two builds differ as claimed, so the comparison cannot silently measure one build twice.
        using (_withCensus.Rent(Size))
        using (_withoutCensus.Rent(Size))
        {
            long seen = _withCensus.TakeCensus().CountOlderThan(TimeSpan.Zero);
            long unseen = _withoutCensus.TakeCensus().CountOlderThan(TimeSpan.Zero);
            if (seen != 1 || unseen != 0)
            {
                throw new InvalidOperationException($"Expected the census build to see 1 rented buffer and the compiled-out build 0; they saw {seen} and {unseen}.");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _withCensus.Dispose();
        _withoutCensus.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public void ArrayPoolShared()
    {
        for (int i = 0; i < Ops; i++)
        {
            byte[] array = ArrayPool<byte>.Shared.Rent(Size);
            array[0] = 1;
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public void CensusCompiledOut()
    {
        WithoutCensus.DirectBufferPool pool = _withoutCensus;
        for (int i = 0; i < Ops; i++)
        {
            using WithoutCensus.DirectBuffer lease = pool.Rent(Size);
            lease.GetSpan()[0] = 1;
        }
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public void WithCensus()
    {
        DirectBufferPool pool = _withCensus;
        for (int i = 0; i < Ops; i++)
        {
            using DirectBuffer lease = pool.Rent(Size);
            lease.GetSpan()[0] = 1;
        }
    }
}
