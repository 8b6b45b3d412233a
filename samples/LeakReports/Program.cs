// LeakReports: what OffHeapTracker tells you about the three classic buffer bugs, with the standard console logger.
//   1. a lease dropped without Dispose (caught by the finalizer, its block kept out of circulation);
//   2. a lease disposed twice (ignored, and reported with all three stacks);
//   3. a test that forgot to return a buffer (AssertNoOutstanding and WhenAllReturnedAsync);
//   4. finding a slow leak: which site holds the most (leak sites), and what grew around a suspect operation
//      (a snapshot comparison).
// Ctrl+C, SIGTERM or SIGQUIT skips the sections still to come and releases what the current one holds.
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using OffHeapTracker;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Samples;

using var signals = new ShutdownSignals();
using ILoggerFactory logging = LoggerFactory.Create(builder => builder.AddSimpleConsole(o => o.SingleLine = false));
var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { LoggerFactory = logging });
monitor.Enable();
monitor.LeakDetected += (_, leak) =>
    Console.WriteLine($"LeakDetected event: buffer {leak.Id}, {leak.ActualSize} bytes, context '{leak.Context}', age {leak.Age?.TotalSeconds:0.0} s");

var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "reports", Monitor = monitor, LoggerFactory = logging });

Console.WriteLine("== 1. A lease dropped without Dispose ==");
Bugs.DropOne(pool);
signals.Wait(TimeSpan.FromMilliseconds(300));

// The finalizer judges a dropped lease one collection after it became unreachable (an owner's finalizer may
// still dispose it), so a leak shows after the second collection.
for (int i = 0; i < 2; i++)
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
}

Thread.Sleep(100); // let the console logger's background writer flush before we print more
DirectBufferPoolStatistics afterLeak = pool.GetStatistics();
Console.WriteLine($"LeakedCount = {afterLeak.LeakedCount}, LeakedBytes = {afterLeak.LeakedBytes}, InUseBytes = {afterLeak.InUseBytes}");
if (signals.Received is not null)
{
    return ShutDown(pool, signals);
}

Console.WriteLine();
Console.WriteLine("== 2. A lease disposed twice ==");
Bugs.DisposeTwice(pool);
Thread.Sleep(100);
Console.WriteLine($"DoubleDisposeCount = {pool.GetStatistics().DoubleDisposeCount}");
if (signals.Received is not null)
{
    return ShutDown(pool, signals);
}

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
if (signals.Received is not null)
{
    return ShutDown(pool, signals);
}

Console.WriteLine();
Console.WriteLine("== 4. Finding a slow leak ==");
var service = new ReportService(pool);
var session = new Session(pool);
for (int i = 0; i < 50; i++)
{
    service.Render(i);
}

// The monitor samples its sites for growth every 10 s while it is on; SampleSites() takes a sample now, so this
// short demo gets the three points a verdict needs. A site that only grows is listed first, as a suspect.
monitor.SampleSites();
BufferSnapshot before = monitor.TakeSnapshot();
for (int i = 50; i < 80; i++)
{
    service.Render(i); // the suspect operation
    if (i % 15 == 14)
    {
        Thread.Sleep(250);
        monitor.SampleSites();
    }
}

BufferSnapshot after = monitor.TakeSnapshot();

// Leak sites, like GetResident, count buffers older than 1 s by default: asked at once, the report is empty, and says why.
Console.WriteLine("Asked at once (GetLeakSites, as collapsed stacks):");
Console.Write(BufferReportFormatter.FormatCollapsed(monitor.GetLeakSites(top: 3)));
if (signals.Wait(TimeSpan.FromMilliseconds(1100)))
{
    service.Clear();
    session.Dispose();
    return ShutDown(pool, signals);
}

// The census counts by age whatever the monitor saw, so it also sees section 1's dropped lease, whose block the pool
// keeps out of circulation (the monitor forgot it when the finalizer reported it).
Console.WriteLine();
BufferCensus census = pool.TakeCensus();
Console.WriteLine(
    $"Census (pool.TakeCensus()): {census.CountOlderThan(TimeSpan.FromSeconds(1), BufferType.Normal)} NORMAL buffers out for more than 1 s, "
    + $"{census.BytesOlderThan(TimeSpan.FromSeconds(1), BufferType.Normal):N0} bytes; the oldest {census.GetOldestAge(BufferType.Normal)?.TotalSeconds:0.0} s "
    + "(the lease dropped in section 1 among them).");

Console.WriteLine();
Console.WriteLine("A second later: leak sites (GetLeakSites, FormatSites), biggest holders first:");
IReadOnlyList<LeakSite> sites = monitor.GetLeakSites(top: 3);
Console.Write(BufferReportFormatter.FormatSites(sites));

// The site is the code path; how Main was resumed after its last await (here: inline, inside the pool's drain
// wait) is folded away. The stack as captured is still there for the curious.
Console.WriteLine("The top site's stack as captured (LeakSite.RawStackTraces[0]):");
Console.WriteLine("    " + sites[0].RawStackTraces[0].Replace("\n", "\n    ", StringComparison.Ordinal));

Console.WriteLine();
Console.WriteLine("Around the suspect operation (TakeSnapshot, CompareTo):");
foreach (SiteChange change in before.CompareTo(after).Sites)
{
    Console.WriteLine($"  net {change.NetBytes,9:N0} B: +{change.AddedCount} added, -{change.FreedCount} freed, {change.StillResidentCount} still out  at {change.StackTrace.Split('\n')[0]}");
}

Console.WriteLine();
Console.WriteLine("As collapsed stacks (flamegraph.pl, speedscope):");
Console.Write(BufferReportFormatter.FormatCollapsed(monitor.GetLeakSites(top: 3)));
service.Clear();
session.Dispose();
return ShutDown(pool, signals);

// On a signal, says so as the other samples do; either way the pool is disposed. The exit code stays 0 even with a
// buffer out: every leak here is on purpose.
static int ShutDown(DirectBufferPool pool, ShutdownSignals signals)
{
    (string summary, _) = PoolShutdown.DisposeAll(pool);
    if (signals.Received is not null)
    {
        Console.WriteLine($"shut down: {summary}");
    }

    return 0;
}

/// <summary>Renders reports into 16 KiB buffers; every third one is kept in a cache that is never evicted.</summary>
internal sealed class ReportService(DirectBufferPool pool)
{
    private readonly List<DirectBuffer> _cache = [];

    [MethodImpl(MethodImplOptions.NoInlining)]
    public void Render(int report)
    {
        DirectBuffer buffer = pool.Rent(16 * 1024);
        buffer.GetSpan()[0] = (byte)report;
        if (report % 3 == 0)
        {
            _cache.Add(buffer); // the leak: nothing ever evicts this cache
        }
        else
        {
            buffer.Dispose();
        }
    }

    public void Clear()
    {
        _cache.ForEach(buffer => buffer.Dispose());
        _cache.Clear();
    }
}

/// <summary>A client session: its read buffer is resident by design.</summary>
internal sealed class Session : IDisposable
{
    private readonly DirectBuffer _readBuffer;

    [MethodImpl(MethodImplOptions.NoInlining)]
    public Session(DirectBufferPool pool) => _readBuffer = pool.Rent(4096, BufferType.Pool);

    public void Dispose() => _readBuffer.Dispose();
}

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
