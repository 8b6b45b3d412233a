// LeakReports: what OffHeapTracker tells you about the three classic buffer bugs, with the standard console logger.
//   1. a lease dropped without Dispose (caught by the finalizer, its memory returned);
//   2. a lease disposed twice (ignored, and reported with all three stacks);
//   3. a test that forgot to return a buffer (AssertNoOutstanding and WhenAllReturnedAsync).
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using OffHeapTracker;
using OffHeapTracker.Monitoring;

using ILoggerFactory logging = LoggerFactory.Create(builder => builder.AddSimpleConsole(o => o.SingleLine = false));
var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { LoggerFactory = logging });
monitor.Enable();
monitor.LeakDetected += (_, leak) =>
    Console.WriteLine($"LeakDetected event: buffer {leak.Id}, {leak.ActualSize} bytes, context '{leak.Context}', age {leak.Age?.TotalSeconds:0.0} s");

using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "reports", Monitor = monitor, LoggerFactory = logging });

Console.WriteLine("== 1. A lease dropped without Dispose ==");
Bugs.DropOne(pool);
Thread.Sleep(300);
GC.Collect();
GC.WaitForPendingFinalizers();
Thread.Sleep(100); // let the console logger's background writer flush before we print more
Console.WriteLine($"LeakedCount = {pool.GetStatistics().LeakedCount}, InUseBytes = {pool.GetStatistics().InUseBytes}");

Console.WriteLine();
Console.WriteLine("== 2. A lease disposed twice ==");
Bugs.DisposeTwice(pool);
Thread.Sleep(100);
Console.WriteLine($"DoubleDisposeCount = {pool.GetStatistics().DoubleDisposeCount}");

Console.WriteLine();
Console.WriteLine("== 3. In a test: a buffer that was never returned ==");
DirectBuffer kept = Bugs.KeepOne(pool);
try
{
    pool.AssertNoOutstanding();
}
catch (InvalidOperationException ex)
{
    Console.WriteLine($"AssertNoOutstanding threw: {ex.Message}");
}

try
{
    await pool.WhenAllReturnedAsync(TimeSpan.FromMilliseconds(200));
}
catch (TimeoutException ex)
{
    Console.WriteLine($"WhenAllReturnedAsync threw: {ex.Message.Split('\n')[0]}");
}

kept.Dispose();
await pool.WhenAllReturnedAsync(TimeSpan.FromSeconds(1));
Console.WriteLine($"After Dispose: OutstandingCount = {pool.OutstandingCount}");

internal static class Bugs
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void DropOne(DirectBufferPool pool)
    {
        using (BufferMonitor.BeginContext("GET /invoices/981"))
        {
            DirectBuffer buffer = pool.Rent(6000);
            buffer.GetSpan()[0] = 1; // ... and the code path returns without disposing it
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void DisposeTwice(DirectBufferPool pool)
    {
        DirectBuffer buffer = pool.Rent(1024);
        CloseResponse(buffer);
        CleanUp(buffer);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static DirectBuffer KeepOne(DirectBufferPool pool)
    {
        using (BufferMonitor.BeginContext("test: Handler_WritesTheReply"))
        {
            return pool.Rent(300);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CloseResponse(DirectBuffer buffer) => buffer.Dispose();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CleanUp(DirectBuffer buffer) => buffer.Dispose();
}
