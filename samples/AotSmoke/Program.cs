// AotSmoke: rents from a DirectBufferPool with the monitor on, leaks one buffer and keeps another, and prints what
// the monitor and the census say. Published with NativeAOT (or trimmed) it shows that stacks still name the
// allocating code when StackFrame.GetMethod() has no metadata to return. See README.md beside this file.
using System.Runtime.CompilerServices;
using OffHeapTracker;
using OffHeapTracker.Monitoring;

Console.WriteLine($"Dynamic code supported: {RuntimeFeature.IsDynamicCodeSupported}");

var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { Stacks = StackPolicy.Every });
monitor.Enable();
monitor.LeakDetected += (_, leak) =>
    Console.WriteLine($"LeakDetected: buffer {leak.Id}, {leak.ActualSize} bytes, allocated at:\n    {leak.StackTrace?.Replace("\n", "\n    ", StringComparison.Ordinal)}");
Console.WriteLine($"Fast stack capture: {(monitor.StackCapture?.IsFastCaptureActive == true ? "on" : $"off ({monitor.StackCapture?.FastCaptureOffReason})")}");

var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "aot-smoke", Monitor = monitor });
Leaks.DropOne(pool);
using DirectBuffer kept = Leaks.KeepOne(pool);
using DirectBuffer keptAcrossAwait = await Leaks.KeepAcrossAwaitAsync(pool);

// A dropped lease is judged one collection after it became unreachable, so it shows after the second.
for (int i = 0; i < 2; i++)
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
}

DirectBufferPoolStatistics statistics = pool.GetStatistics();
Console.WriteLine($"LeakedCount = {statistics.LeakedCount}, OutstandingCount = {pool.OutstandingCount}");
Console.WriteLine();
Console.WriteLine("Leak sites (GetLeakSites, FormatSites):");
IReadOnlyList<LeakSite> sites = monitor.GetLeakSites(minAge: TimeSpan.Zero);
Console.Write(BufferReportFormatter.FormatSites(sites, includeRawStacks: true));
Console.WriteLine();
Console.WriteLine("Leak sites as JSON (ReportJsonContext):");
Console.WriteLine(BufferReportFormatter.ToJson(sites));
Console.WriteLine();
Console.WriteLine($"Census: {pool.TakeCensus()}");

bool named = sites.Count > 0 && sites.All(site => site.StackTrace.StartsWith("Leaks.", StringComparison.Ordinal));
Console.WriteLine(named ? "OK: every site names the allocating method" : "FAIL: a site does not name the allocating method");
return named ? 0 : 1;

internal static class Leaks
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void DropOne(DirectBufferPool pool) => pool.Rent(1000).Memory.Span.Fill(1);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static DirectBuffer KeepOne(DirectBufferPool pool)
    {
        DirectBuffer buffer = pool.Rent(5000);
        buffer.Memory.Span.Fill(2);
        return buffer;
    }

    // An async method: its frame is a state machine's MoveNext, which the site shows by the method's own name.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static async Task<DirectBuffer> KeepAcrossAwaitAsync(DirectBufferPool pool)
    {
        await Task.Yield();
        DirectBuffer buffer = pool.Rent(9000);
        buffer.Memory.Span.Fill(3);
        return buffer;
    }
}
