// KestrelDiagnostics: Kestrel on tracked buffers (pinned arrays, as its socket transport needs), with the diagnostics endpoints and dashboard.
//
//   dotnet run --project samples/KestrelDiagnostics -- --urls http://127.0.0.1:5080
//   then open http://127.0.0.1:5080/debug/buffers/ and call /ok and /leak
//
// Ctrl+C, SIGTERM or SIGQUIT stops it: the host stops, its pools are disposed, and the last line says what they
// still had out (a second signal ends it at once). `dotnet run` does not forward SIGINT: to signal the app by pid,
// run the built program, samples/KestrelDiagnostics/bin/Debug/net10.0/KestrelDiagnostics, and `kill -INT <pid>`.
using KestrelDiagnostics;
using Microsoft.AspNetCore.Connections;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;
using OffHeapTracker.Samples;

using var signals = new ShutdownSignals();
WebApplication app = DiagnosticsApp.Build(args, builder =>
{
    // One signal handler per process: ShutdownSignals, not the host's console lifetime.
    builder.Services.AddSingleton<IHostLifetime, SignalFreeHostLifetime>();

    // Requests still running get this long; within the 5 s the samples promise to stop in.
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(3));
});

var pools = (DirectBufferPoolFactory)app.Services.GetRequiredService<IMemoryPoolFactory<byte>>();
await app.StartAsync();
Console.WriteLine($"listening on {string.Join(", ", app.Urls)}; Ctrl+C (SIGINT) or SIGTERM to stop.");
await signals.WaitAsync();

// Captured before the host disposes the factory, which forgets its pools as it disposes them.
IReadOnlyList<DirectBufferPool> created = pools.Pools;
await app.StopAsync();
await app.DisposeAsync();
(string summary, bool clean) = PoolShutdown.DisposeAll(created);
Console.WriteLine($"shut down: {summary}");
return clean ? 0 : 1;
