using System.Net;
using KestrelDiagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OffHeapTracker;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>The KestrelDiagnostics sample on real Kestrel, on 127.0.0.1 and a free port, with its own monitor.</summary>
internal sealed class TestApp : IAsyncDisposable
{
    private TestApp(WebApplication app, ResidentBufferMonitor monitor)
    {
        App = app;
        Monitor = monitor;
        BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        Client = new HttpClient { BaseAddress = BaseAddress };
    }

    public WebApplication App { get; }

    public ResidentBufferMonitor Monitor { get; }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    /// <summary>Completing this lets <c>POST /held</c> read its body; until then the bytes wait in Kestrel's input pipe.</summary>
    public TaskCompletionSource ReleaseHeld { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts the sample with its own monitor.</summary>
    /// <param name="monitorOptions">Changes to the monitor's options.</param>
    /// <param name="map">More routes, such as a second <c>MapBufferMonitor</c> with options.</param>
    public static async Task<TestApp> StartAsync(Action<ResidentBufferMonitorOptions>? monitorOptions = null, Action<WebApplication>? map = null)
    {
        var options = new ResidentBufferMonitorOptions();
        monitorOptions?.Invoke(options);
        var monitor = new ResidentBufferMonitor(options);
        TaskCompletionSource release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        WebApplication app = DiagnosticsApp.Build(
            [],
            builder =>
            {
                builder.WebHost.UseUrls("http://127.0.0.1:0");
                builder.Logging.ClearProviders();
                builder.Services.AddDirectBufferPool(o => o.Monitor = monitor);
            },
            app =>
            {
                app.MapPost("/held", async (HttpRequest request) =>
                {
                    await release.Task;
                    return await new StreamReader(request.Body).ReadToEndAsync();
                });
                map?.Invoke(app);
            });
        await app.StartAsync();
        var started = new TestApp(app, monitor);
        started.ReleaseHeld.Task.ContinueWith(_ => release.TrySetResult(), TaskScheduler.Default).GetAwaiter();
        return started;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
