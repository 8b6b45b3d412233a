using System.Diagnostics;
using System.Globalization;
using OffHeapTracker;
using OffHeapTracker.Monitoring;

// Two threads renting and disposing 4 KiB at once from one pool whose monitor is on without stacks: what the
// record path's shared state (the resident table's free-slot stacks) costs when two cores use it together.
// BenchmarkDotNet times one thread at a time; this is the case it does not see. Compare builds of two trees,
// interleaved, on one machine:
//
//   dotnet run -c Release --project benchmarks/OffHeapTracker.Contention -- 2000000
//
// Prints the median of five timed runs (after three shorter warm-up runs), in ns per Rent + Dispose per thread.
int pairs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 2_000_000;
if (pairs <= 0)
{
    Console.Error.WriteLine($"pairs must be a positive number of Rent + Dispose pairs per thread, not {pairs}");
    return 2;
}

var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.None });
monitor.Enable();
using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "contention", Monitor = monitor });
for (int i = 0; i < 3; i++)
{
    Run(pool, Math.Max(1, pairs / 10));
}

var times = new List<double>();
for (int i = 0; i < 5; i++)
{
    times.Add(Run(pool, pairs));
}

times.Sort();
Console.WriteLine($"{times[2]:F1} ns per Rent + Dispose per thread, 2 threads, monitor on (Stacks = None); runs: {string.Join(" ", times.Select(t => t.ToString("F1", CultureInfo.InvariantCulture)))}");
return 0;

static double Run(DirectBufferPool pool, int count)
{
    var stopwatch = Stopwatch.StartNew();
    Parallel.Invoke(() => Loop(pool, count), () => Loop(pool, count));
    return stopwatch.Elapsed.TotalNanoseconds / count;
}

static void Loop(DirectBufferPool pool, int count)
{
    for (int i = 0; i < count; i++)
    {
        pool.Rent(4096).Dispose();
    }
}
