using System.Collections.Concurrent;
using System.Buffers;
using Microsoft.AspNetCore.Connections;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;

namespace KestrelDiagnostics;

/// <summary>The sample application, built here so the tests run exactly what <c>dotnet run</c> runs.</summary>
internal static class DiagnosticsApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null, Action<WebApplication>? map = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(args);

        // The two lines: Kestrel's connection buffers become tracked buffers (pinned arrays, which Kestrel's
        // socket transport needs) ...
        // (AddDirectBufferPool binds the "OffHeapTracker" section of appsettings.json, if there is one.)
        builder.Services.AddDirectBufferPool();
        builder.Services.AddHealthChecks().AddDirectBufferPools();
        configure?.Invoke(builder);
        WebApplication app = builder.Build();
        app.MapHealthChecks("/healthz");

        // ... and the monitor is reachable over HTTP, from loopback hosts only by default (AllowedHosts adds
        // others). That is no authentication: protect it in production with .RequireAuthorization().
        app.MapBufferMonitor();

        // Each request's buffers say which request rented them.
        app.Use(async (context, next) =>
        {
            using (BufferMonitor.BeginContext($"{context.Request.Method} {context.Request.Path}"))
            {
                await next(context);
            }
        });

        MemoryPool<byte> appPool = app.Services.GetRequiredService<IMemoryPoolFactory<byte>>().Create(new MemoryPoolOptions { Owner = "app" });
        var kept = new ConcurrentQueue<IMemoryOwner<byte>>();

        // ... until the app stops: then they go back, so a clean shutdown ends with nothing outstanding.
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            while (kept.TryDequeue(out IMemoryOwner<byte>? buffer))
            {
                buffer.Dispose();
            }
        });

        app.MapGet("/ok", static () => "ok\n");

        // The deliberate leak: a buffer kept forever under the request's context.
        app.MapGet("/leak", () =>
        {
            IMemoryOwner<byte> buffer = appPool.Rent(4096);
            kept.Enqueue(buffer);
            return $"kept buffer {((DirectBuffer)buffer).Id}; {kept.Count} kept so far\n";
        });

        map?.Invoke(app);

        app.MapPost("/upload", static async (HttpRequest request) =>
        {
            long total = 0;
            byte[] chunk = new byte[8192];
            int read;
            while ((read = await request.Body.ReadAsync(chunk)) > 0)
            {
                total += read;
            }

            return $"{total} bytes\n";
        });

        return app;
    }
}
