using System.Runtime.CompilerServices;
using OffHeapTracker;
using OffHeapTracker.Monitoring;

// Rent(4096)+Dispose N times on a pool whose monitor is off. Run it twice under callgrind, with N=0 and with
// N=1,000,000, and with DOTNET_TieredCompilation=0 so both runs JIT the same code once:
//
//   dotnet build -c Release benchmarks/OffHeapTracker.InstructionCount
//   export DOTNET_TieredCompilation=0
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/ic.0 dotnet benchmarks/OffHeapTracker.InstructionCount/bin/Release/net10.0/OffHeapTracker.InstructionCount.dll 0
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/ic.1m dotnet benchmarks/OffHeapTracker.InstructionCount/bin/Release/net10.0/OffHeapTracker.InstructionCount.dll 1000000
//
// (total instructions of the second run - the first) / N = instructions per rent+dispose, start-up excluded.
int n = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000;

// A second argument picks the mode: "off" (the default: the monitor is off), "none" (on, records without
// stacks), "budgeted" (on, the default stack policy); "arraypool" and "shared" measure the baselines instead
// (ArrayPool<byte>.Shared Rent+Return, MemoryPool<byte>.Shared Rent+Dispose).
string mode = args.Length > 1 ? args[1] : "off";
if (mode is "arraypool" or "shared")
{
    Baseline(mode, 1);
    Baseline(mode, n);
    Console.WriteLine($"{n} rent+dispose pairs ({mode})");
    return;
}

var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions
{
    Stacks = mode == "budgeted" ? StackPolicy.Budgeted : StackPolicy.None,
});
using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "ic", Monitor = monitor });
if (mode != "off")
{
    monitor.Enable();
}

// One pair outside the loop in both runs, so slab growth, the thread state and JIT are paid by N=0 too.
Loop(pool, 1);
Loop(pool, n);
Console.WriteLine($"{n} rent+dispose pairs ({mode}), outstanding {pool.OutstandingCount}");

[MethodImpl(MethodImplOptions.NoInlining)]
static void Baseline(string mode, int count)
{
    if (mode == "arraypool")
    {
        for (int i = 0; i < count; i++)
        {
            byte[] array = System.Buffers.ArrayPool<byte>.Shared.Rent(4096);
            System.Buffers.ArrayPool<byte>.Shared.Return(array);
        }

        return;
    }

    for (int i = 0; i < count; i++)
    {
        System.Buffers.MemoryPool<byte>.Shared.Rent(4096).Dispose();
    }
}

[MethodImpl(MethodImplOptions.NoInlining)]
static void Loop(DirectBufferPool pool, int count)
{
    for (int i = 0; i < count; i++)
    {
        DirectBuffer lease = pool.Rent(4096);
        lease.Dispose();
    }
}
