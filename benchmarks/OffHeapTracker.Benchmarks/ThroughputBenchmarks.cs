using System.Buffers;
using BenchmarkDotNet.Attributes;

namespace OffHeapTracker.Benchmarks;

/// <summary>The same number of 4 KiB rent+dispose pairs done by one thread, or split across two; read the Ratio column as time, so throughput scaling is 1 / Ratio against the one-thread row.</summary>
[MemoryDiagnoser]
public class ThroughputBenchmarks
{
    private const int PerThread = 50_000;
    private const int Total = 2 * PerThread;

    private DirectBufferPool _pool = null!;

    [GlobalSetup]
    public void Setup() => _pool = Subjects.Direct(Subjects.Off());

    [GlobalCleanup]
    public void Cleanup() => _pool.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = Total)]
    public void DirectOneThread() => DirectLoop(Total);

    [Benchmark(OperationsPerInvoke = Total)]
    public void DirectTwoThreads() => Parallel.Invoke(() => DirectLoop(PerThread), () => DirectLoop(PerThread));

    [Benchmark(OperationsPerInvoke = Total)]
    public void ArrayPoolOneThread() => ArrayPoolLoop(Total);

    [Benchmark(OperationsPerInvoke = Total)]
    public void ArrayPoolTwoThreads() => Parallel.Invoke(() => ArrayPoolLoop(PerThread), () => ArrayPoolLoop(PerThread));

    private void DirectLoop(int count)
    {
        for (int i = 0; i < count; i++)
        {
            DirectBuffer lease = _pool.Rent(4096);
            lease.GetSpan()[0] = 1;
            lease.Dispose();
        }
    }

    private static void ArrayPoolLoop(int count)
    {
        for (int i = 0; i < count; i++)
        {
            byte[] array = ArrayPool<byte>.Shared.Rent(4096);
            array[0] = 1;
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}
