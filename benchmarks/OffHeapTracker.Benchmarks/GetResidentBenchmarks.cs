using BenchmarkDotNet.Attributes;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Benchmarks;

/// <summary>Querying the monitor with many live records: what a diagnostics endpoint pays.</summary>
[MemoryDiagnoser]
public class GetResidentBenchmarks
{
    private readonly List<DirectBuffer> _live = [];
    private ResidentBufferMonitor _monitor = null!;
    private DirectBufferPool _pool = null!;

    [Params(10_000, 100_000)]
    public int Records { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _monitor = Subjects.On(depth: 16);
        _pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "bench", Monitor = _monitor, CapacityBytes = 1L << 30 });
        for (int i = 0; i < Records; i++)
        {
            _live.Add(_pool.Rent(512, i % 4 == 0 ? BufferType.Pool : BufferType.Normal));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _live.ForEach(lease => lease.Dispose());
        _pool.Dispose();
    }

    [Benchmark]
    public int GetResidentAll() => _monitor.GetResident(TimeSpan.Zero).Count;

    [Benchmark]
    public int GetResidentNormalOnly() => _monitor.GetResident(TimeSpan.Zero, BufferType.Normal).Count;
}
