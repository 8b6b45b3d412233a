using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OffHeapTracker.Samples;

namespace TcpProxy;

/// <summary><c>--diagnostics host:port</c>: the OffHeapTracker.AspNetCore endpoints and dashboard on their own small Kestrel host.</summary>
/// <remarks>
/// Bind it to loopback or an internal address: like any admin surface it should not face the internet. The proxy's
/// pool is listed by <c>/debug/buffers/stats</c>, and <c>/resident</c> and <c>/sites</c> report the shared monitor.
/// </remarks>
internal sealed class DiagnosticsHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DiagnosticsHost(WebApplication app) => _app = app;

    public ICollection<string> Urls => _app.Urls;

    public static async Task<DiagnosticsHost> StartAsync(IPEndPoint endPoint)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://{endPoint}");
        builder.Logging.ClearProviders();

        // The proxy's ShutdownSignals stops this host; a console lifetime here would take SIGINT and SIGTERM for itself.
        builder.Services.AddSingleton<IHostLifetime, SignalFreeHostLifetime>();
        WebApplication app = builder.Build();
        app.MapBufferMonitor();
        await app.StartAsync().ConfigureAwait(false);
        return new DiagnosticsHost(app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
