// TcpProxy: a TCP proxy on System.IO.Pipelines whose every buffer comes from a DirectBufferPool (or, for comparison, MemoryPool<byte>.Shared).
//
//   dotnet run --project samples/TcpProxy -- --listen 127.0.0.1:6380 --upstream 127.0.0.1:6379
//
// Without --upstream it starts an embedded echo server and proxies to it. Options:
//   --diagnostics 127.0.0.1:9090   serve OffHeapTracker.AspNetCore's endpoints and dashboard at /debug/buffers/
//   --leak-every N                 keep a copy of every Nth message, never returned, to show the monitor finding it
//   --load C --seconds S           run C echo clients through the proxy for S seconds, print throughput, exit
//   --pool direct|shared           where pipe segments and read buffers come from: a tracked DirectBufferPool
//                                  (the default) or MemoryPool<byte>.Shared, the untracked baseline that
//                                  benchmarks/e2e/run.sh compares it with; the proxy's code path is otherwise the same
// OFFHEAPTRACKER_MONITOR=1 switches the buffer monitor on at start. Ctrl+C, SIGTERM or SIGQUIT shuts down gracefully
// (a second signal ends it at once). `dotnet run` does not forward SIGINT: to signal the proxy by pid, run the built
// program, samples/TcpProxy/bin/Debug/net10.0/TcpProxy, and `kill -INT <pid>` or `kill -TERM <pid>`.
using System.Buffers;
using System.Globalization;
using System.Net;
using OffHeapTracker;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Samples;
using TcpProxy;

// First, so that every signal from here on is ours: the diagnostics host must not install a handler of its own.
using var signals = new ShutdownSignals();

ProxyOptions options;
try
{
    options = ProxyOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"tcpproxy: {ex.Message}");
    Console.Error.WriteLine("usage: TcpProxy [--listen host:port] [--upstream host:port] [--diagnostics host:port] [--leak-every N] [--load C --seconds S] [--pool direct|shared]");
    return 2;
}

DirectBufferPool? direct = options.Pool == ProxyPool.Direct ? new DirectBufferPool(new DirectBufferPoolOptions { Name = "tcpproxy" }) : null;
MemoryPool<byte> pool = direct ?? MemoryPool<byte>.Shared;
EchoServer? echo = options.Upstream is null ? new EchoServer() : null;
EndPoint upstream = options.Upstream ?? echo!.EndPoint;
var proxy = new ProxyServer(pool, options.Listen, upstream, options.LeakEvery);
proxy.Start();
DiagnosticsHost? diagnostics = options.Diagnostics is null ? null : await DiagnosticsHost.StartAsync(options.Diagnostics);

Console.WriteLine($"proxying {proxy.LocalEndPoint} -> {upstream}{(echo is null ? string.Empty : " (embedded echo server)")}; pool {(direct is null ? "MemoryPool<byte>.Shared" : "tcpproxy")}; monitor {(BufferMonitor.IsEnabled ? "on" : "off")}");
if (options.Diagnostics is not null)
{
    Console.WriteLine($"diagnostics: {diagnostics!.Urls.First()}/debug/buffers/ (dashboard), /resident, /sites, /stats");
}

if (options.LoadConnections > 0)
{
    LoadClient.Result result = await LoadClient.RunAsync(proxy.LocalEndPoint, options.LoadConnections, int.MaxValue, options.LoadDuration, cancellationToken: signals.Token);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{options.LoadConnections} connections, {result.Elapsed.TotalSeconds:0.0} s: {result.RoundTrips:N0} round trips ({result.RoundTripsPerSecond:N0}/s), {result.MebibytesPerSecond:N1} MiB/s each way, {result.Mismatches} mismatched payloads"));
}
else
{
    Console.WriteLine("Ctrl+C (SIGINT) or SIGTERM to stop.");
    await signals.WaitAsync();
}

if (proxy.LeakedOnPurpose > 0)
{
    await Task.Delay(1100); // resident records are listed once they are older than 1 s
    Console.Write(BufferReportFormatter.FormatVertical(BufferMonitor.GetResident(type: BufferType.Normal).Take(2).ToList()));
}

// Outside in: stop serving diagnostics and accepting, close the connections, then release the pool.
if (diagnostics is not null)
{
    await diagnostics.DisposeAsync();
}

await proxy.DisposeAsync();
if (echo is not null)
{
    await echo.DisposeAsync();
}

(string pools, bool clean) = direct is null ? ("pool MemoryPool<byte>.Shared (not tracked)", true) : PoolShutdown.DisposeAll(direct);
Console.WriteLine($"shut down: {proxy.ConnectionsAccepted} connections served, {pools}");
return clean ? 0 : 1;
