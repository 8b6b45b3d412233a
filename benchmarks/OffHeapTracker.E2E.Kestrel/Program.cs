// OffHeapTracker.E2E.Kestrel: the Kestrel app that benchmarks/e2e/run.sh loads with wrk.
//
//   OffHeapTracker.E2E.Kestrel --pool kestrel|direct [--listen 127.0.0.1:0]
//
//   GET  /plain   "Hello, World!" as text/plain
//   POST /echo    the request body, streamed back from the request pipe into the response pipe
//
// --pool kestrel keeps Kestrel's own memory pool; --pool direct replaces it with DirectBufferPools through
// AddDirectBufferPool(), as samples/KestrelDiagnostics does. Every request runs under BufferMonitor.BeginContext,
// as in that sample, whichever the pool, so the two differ only in where Kestrel's buffers come from. The monitor is
// chosen by the environment alone (OFFHEAPTRACKER_MONITOR=1, OFFHEAPTRACKER_MONITOR_STACKS=...), so every
// configuration runs this one binary. Once listening it prints one line, which the script waits for:
//   listening on http://127.0.0.1:PORT; pool direct; monitor on; .NET 10.0.x
// SIGTERM or Ctrl+C stops it; the last line says what the pools still had out.
using System.Net;
using System.Runtime;
using System.Runtime.InteropServices;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;
using OffHeapTracker.Samples;

string pool = "direct";
IPEndPoint listen = new(IPAddress.Loopback, 0);
for (int i = 0; i < args.Length; i++)
{
    string value = i + 1 < args.Length ? args[i + 1] : string.Empty;
    switch (args[i])
    {
        case "--pool" when value is "kestrel" or "direct":
            pool = value;
            i++;
            break;
        case "--listen" when IPEndPoint.TryParse(value, out IPEndPoint? endPoint) && value.Contains(':', StringComparison.Ordinal):
            listen = endPoint;
            i++;
            break;
        default:
            Console.Error.WriteLine($"e2e-kestrel: bad argument '{args[i]}'{(value.Length > 0 ? $" '{value}'" : string.Empty)}: --pool must be 'kestrel' or 'direct', --listen an address and port such as 127.0.0.1:0.");
            Console.Error.WriteLine("usage: OffHeapTracker.E2E.Kestrel [--pool kestrel|direct] [--listen host:port]");
            return 2;
    }
}

WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
builder.WebHost.UseUrls($"http://{listen}");

// Warnings and errors only: a log line per request would measure the console, not the pool.
builder.Logging.SetMinimumLevel(LogLevel.Warning);
if (pool == "direct")
{
    builder.Services.AddDirectBufferPool();
}

WebApplication app = builder.Build();
app.Use(static async (context, next) =>
{
    using (BufferMonitor.BeginContext($"{context.Request.Method} {context.Request.Path}"))
    {
        await next(context);
    }
});

// With a Content-Length, as a server of small fixed responses would send them, rather than chunked.
app.MapGet("/plain", static async context =>
{
    context.Response.ContentType = "text/plain";
    context.Response.ContentLength = s_hello.Length;
    await context.Response.BodyWriter.WriteAsync(s_hello, context.RequestAborted);
});

// Through the pipes, not streams: the body is read from Kestrel's buffers and written into Kestrel's buffers, so
// each request rents from the pool under test rather than from an intermediate copy buffer.
app.MapPost("/echo", static async context =>
{
    context.Response.ContentType = "application/octet-stream";
    context.Response.ContentLength = context.Request.ContentLength;
    await context.Request.BodyReader.CopyToAsync(context.Response.BodyWriter, context.RequestAborted);
});

await app.StartAsync();
Console.WriteLine($"listening on {app.Urls.First()}; pool {pool}; monitor {(BufferMonitor.IsEnabled ? "on" : "off")}; {RuntimeInformation.FrameworkDescription}");

// Captured as the host begins to stop: Kestrel disposes its pools as it stops, and the factory then leaves them out.
IReadOnlyList<DirectBufferPool> pools = [];
app.Lifetime.ApplicationStopping.Register(() => pools = app.Services.GetService<DirectBufferPoolFactory>()?.Pools ?? []);
await app.WaitForShutdownAsync();
await app.DisposeAsync();

// What the garbage collector did over the whole run: the monitor's fresh lease per rent shows up here, not in a profile.
GCMemoryInfo gc = GC.GetGCMemoryInfo(GCKind.Any);
Console.WriteLine(FormattableString.Invariant(
    $"gc: {GC.GetTotalAllocatedBytes() / 1_048_576.0:0.0} MiB allocated, collections gen0 {GC.CollectionCount(0)} gen1 {GC.CollectionCount(1)} gen2 {GC.CollectionCount(2)}, paused {GC.GetTotalPauseDuration().TotalMilliseconds:0} ms, server GC {GCSettings.IsServerGC}, last heap {gc.HeapSizeBytes / 1_048_576.0:0.0} MiB"));
if (BufferMonitor.IsEnabled && ((IBufferMonitor)BufferMonitor.Shared).StackCapture is { } capture)
{
    Console.WriteLine(FormattableString.Invariant(
        $"stacks: {capture.CaptureCount} captured in {capture.CaptureTime.TotalMilliseconds:0} ms ({capture.CaptureTime.TotalMilliseconds * 1e6 / Math.Max(1, capture.CaptureCount):0} ns each), interval now {capture.CurrentInterval}, {capture.FastCaptureCount} fast, {capture.Count} distinct stacks, {capture.FastTable?.Count} keys ({capture.FastTable?.IncompleteKeys} not admitted), {capture.FastTable?.Checks} checks, fast capture {(capture.IsFastCaptureActive ? "on" : "off: " + capture.FastCaptureOffReason)}"));
}

if (pools.Count == 0)
{
    Console.WriteLine("shut down: Kestrel's own pool (not tracked)");
    return 0;
}

(string summary, bool clean) = PoolShutdown.DisposeAll(pools);
Console.WriteLine($"shut down: {summary}; {pools.Sum(p => p.GetStatistics().TotalRents)} rents in all");
return clean ? 0 : 1;

internal static partial class Program
{
    private static readonly ReadOnlyMemory<byte> s_hello = "Hello, World!"u8.ToArray();
}
