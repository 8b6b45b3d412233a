using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>A real web host on 127.0.0.1 whose only OffHeapTracker settings come from an appsettings.json written to a temporary content root.</summary>
internal sealed class ConfiguredHost : IAsyncDisposable
{
    private readonly string _root;

    private ConfiguredHost(string root, WebApplication app)
    {
        _root = root;
        App = app;
    }

    public WebApplication App { get; }

    public DirectBufferPoolFactory Factory => App.Services.GetRequiredService<DirectBufferPoolFactory>();

    /// <summary>Builds the host from <paramref name="appsettings"/> (the file's JSON text); does not start it.</summary>
    public static ConfiguredHost Build(string appsettings, Action<WebApplicationBuilder>? configure = null)
    {
        string root = Directory.CreateTempSubdirectory("offheaptracker-host-").FullName;
        File.WriteAllText(Path.Combine(root, "appsettings.json"), appsettings);
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = root, Args = [] });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddDirectBufferPool();
        configure?.Invoke(builder);
        WebApplication app = builder.Build();
        app.MapGet("/ok", static () => "ok\n");
        return new ConfiguredHost(root, app);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync();
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }

        await App.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}
