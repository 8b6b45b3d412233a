using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OffHeapTracker.AspNetCore.Tests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>The README's ASP.NET Core snippets compile here, against the packages on this package source, and run; the README quotes them verbatim.</summary>
[Collection(KestrelHosts.Name)]
public sealed class ReadmeSnippetsTests
{
    // Quoted verbatim in the README (Readme_QuotesTheAppSettings).
    private const string AppSettings = """
        {
          "OffHeapTracker": {
            "CapacityBytes": 67108864,
            "Pools": { "kestrel": { "CapacityBytes": 16777216 } },
            "Monitor": { "Enabled": true, "Stacks": "Every", "RecordPool": false },
            "ShutdownTimeout": "00:00:05"
          }
        }
        """;

    // Quoted verbatim in the README (Readme_QuotesTheAppSettings).
    private const string AutoSwitchSettings = """
        {
          "OffHeapTracker": {
            "Monitor": {
              "AutoSwitch": {
                "OldNormalBuffers": 100,
                "OldNormalAge": "00:05:00",
                "InUseGrowthBytes": 67108864,
                "GrowthWindow": "00:30:00",
                "SwitchOffAfter": "00:30:00"
              }
            }
          }
        }
        """;

    [Theory]
    [InlineData("configure", 8)]
    [InlineData("opentelemetry", 8)]
    [InlineData("healthcheck", 8)]
    public void Readme_QuotesTheSnippetVerbatim(string name, int indent)
    {
        string root = RepositoryPaths.Root;
        string source = File.ReadAllText(Path.Combine(root, "tests", "OffHeapTracker.AspNetCore.Tests", "ReadmeSnippetsTests.cs"));
        int begin = source.IndexOf($"// README:{name}:begin", StringComparison.Ordinal);
        int end = source.IndexOf($"// README:{name}:end", StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"markers for {name} not found");
        string snippet = string.Join('\n', source[(source.IndexOf('\n', begin) + 1)..source.LastIndexOf('\n', end)]
            .Split('\n')
            .Select(line => line.Length >= indent ? line[indent..] : line.TrimStart()));

        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.Contains(snippet, readme, StringComparison.Ordinal);
    }

    [Fact]
    public void Readme_QuotesTheAppSettings()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md"));
        Assert.Contains(AppSettings.ReplaceLineEndings("\n"), readme, StringComparison.Ordinal);
        Assert.Contains(AutoSwitchSettings.ReplaceLineEndings("\n"), readme, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AutoSwitchSettingsFromTheReadme_StartTheSwitchWithTheirRules()
    {
        var monitor = new Monitoring.ResidentBufferMonitor();
        await using var host = ConfiguredHost.Build(AutoSwitchSettings, b => b.Services.AddDirectBufferPool(o => o.Monitor = monitor));
        await host.App.StartAsync();

        Monitoring.MonitorAutoSwitchOptions rules = host.App.Services.GetRequiredService<IOptions<OffHeapTrackerHostOptions>>().Value.AutoSwitch;
        Assert.Equal((100, TimeSpan.FromMinutes(5)), (rules.OldNormalBuffers, rules.OldNormalAge));
        Assert.Equal((64L << 20, TimeSpan.FromMinutes(30)), (rules.InUseGrowthBytes, rules.GrowthWindow));
        Assert.Equal(TimeSpan.FromMinutes(30), rules.SwitchOffAfter);
        Assert.NotNull(host.App.Services.GetServices<IHostedService>().OfType<OffHeapTrackerHostedService>().Single().AutoSwitch);
        Assert.False(monitor.IsEnabled);
    }

    [Fact]
    public async Task AppSettingsFromTheReadme_ConfigureKestrelsPools()
    {
        await using var host = ConfiguredHost.Build(
            AppSettings.Replace("\"Monitor\": { \"Enabled\": true, \"Stacks\": \"Every\", \"RecordPool\": false },", string.Empty, StringComparison.Ordinal),
            b => b.Services.AddDirectBufferPool(o => o.Monitor = new Monitoring.ResidentBufferMonitor()));
        await host.App.StartAsync();

        Assert.All(host.Factory.Pools.Where(p => p.Name == "kestrel"), p => Assert.Equal(16L << 20, p.GetStatistics().CapacityBytes));
        using var other = (DirectBufferPool)host.Factory.Create(new MemoryPoolOptions { Owner = "app" });
        Assert.Equal(64L << 20, other.GetStatistics().CapacityBytes);
    }

    [Fact]
    public async Task ConfigureOpenTelemetryAndHealthSnippets_CompileAndRun()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddDirectBufferPool(o => o.Monitor = new Monitoring.ResidentBufferMonitor());

        // README:configure:begin
        builder.Services.AddDirectBufferPool();                        // binds the "OffHeapTracker" section
        builder.Services.Configure<DirectBufferPoolOptions>("kestrel", o => o.CapacityBytes = 32L << 20);
        builder.Services.AddOptions<DirectBufferPoolOptions>("kestrel")
            .Validate(o => o.CapacityBytes <= 64L << 20, "Kestrel's pools stay within 64 MiB.");
        // README:configure:end

        // README:healthcheck:begin
        builder.Services.AddHealthChecks().AddDirectBufferPools(o => o.InUseDegradedShare = 0.8);
        // README:healthcheck:end

        WebApplication app = builder.Build();
        app.MapHealthChecks("/healthz");

        // README:opentelemetry:begin
        using MeterProvider metrics = Sdk.CreateMeterProviderBuilder()
            .AddMeter("OffHeapTracker", "Microsoft.AspNetCore.MemoryPool")
            .AddOtlpExporter()                                         // OTLP to localhost:4317 by default
            .Build();
        // README:opentelemetry:end

        await app.StartAsync();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
            using HttpResponseMessage health = await client.GetAsync(new Uri("/healthz", UriKind.Relative));
            Assert.NotEqual(System.Net.HttpStatusCode.NotFound, health.StatusCode);
            Assert.All(
                app.Services.GetRequiredService<DirectBufferPoolFactory>().Pools.Where(p => p.Name == "kestrel"),
                p => Assert.Equal(32L << 20, p.GetStatistics().CapacityBytes));
            Assert.NotNull(metrics);
            Assert.NotNull(app.Services.GetRequiredService<HealthCheckService>());
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
