using System.Buffers;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary><c>MapOffHeapTrackerMetrics</c> on real Kestrel: the text format checked by <c>promtool</c>, and a real Prometheus server scraping it.</summary>
[Collection(KestrelHosts.Name)]
public sealed partial class PrometheusMetricsEndpointTests
{
    /// <summary>The README's leak query, run against the real server so a typo in it fails here.</summary>
    internal const string ReadmeLeakQuery = "deriv(offheaptracker_pool_in_use_bytes{offheaptracker_buffer_type=\"normal\"}[30m]) > 0";

    [Fact]
    public void Readme_QuotesTheLeakQuery_AndTheNamesThisEndpointWrites()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md"));
        Assert.Contains("```promql\n" + ReadmeLeakQuery + "\n```", readme, StringComparison.Ordinal);
        Assert.Contains("app.MapOffHeapTrackerMetrics();", readme, StringComparison.Ordinal);
        foreach (string name in new[] { "offheaptracker_pool_in_use_bytes", "offheaptracker_leak_detected_total", "aspnetcore_memory_pool_rented_bytes_total" })
        {
            Assert.Contains(name, readme, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Metrics_AreTheTextFormat_PromtoolAccepts_WithOneSeriesPerPool()
    {
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapOffHeapTrackerMetrics());
        Assert.Equal("kept", (await app.Client.GetStringAsync("/leak"))[..4]);
        DirectBufferPoolFactory factory = app.App.Services.GetRequiredService<DirectBufferPoolFactory>();

        using HttpResponseMessage response = await app.Client.GetAsync("/metrics");
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        string text = await response.Content.ReadAsStringAsync();

        (int exitCode, string output) = await PrometheusTools.CheckMetricsAsync(text);
        Assert.True(exitCode == 0, $"promtool check metrics exited {exitCode}: {output}\n{text}");

        Assert.Contains("# TYPE offheaptracker_pool_in_use_bytes gauge\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE offheaptracker_pool_rented_bytes_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE aspnetcore_memory_pool_rented_bytes_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("# HELP aspnetcore_memory_pool_pooled_bytes Number of bytes currently pooled and available for reuse.\n", text, StringComparison.Ordinal);

        // The leaked buffer is in the app pool's series, with the pool's own figure.
        DirectBufferPool appPool = factory.Pools.Single(p => p.Name == "app");
        List<Sample> inUse = Samples(text, "offheaptracker_pool_in_use_bytes");
        Assert.Equal(
            appPool.GetStatistics().InUseBytes,
            inUse.Where(s => s.Labels["offheaptracker_pool_id"] == Id(appPool)).Sum(s => s.Value));
        Assert.Equal(["normal", "pool"], inUse.Where(s => s.Labels["offheaptracker_pool_id"] == Id(appPool)).Select(s => s.Labels["offheaptracker_buffer_type"]).Order(StringComparer.Ordinal));

        // Every kestrel pool is its own series in Kestrel's names too, told apart by its id.
        string[] kestrelIds = [.. factory.Pools.Where(p => p.Name == "kestrel").Select(Id).Order(StringComparer.Ordinal)];
        Assert.NotEmpty(kestrelIds);
        Assert.Equal(
            kestrelIds,
            Samples(text, "aspnetcore_memory_pool_rented_bytes_total")
                .Where(s => s.Labels.GetValueOrDefault("aspnetcore_memory_pool_owner") == "kestrel")
                .Select(s => s.Labels["offheaptracker_pool_id"])
                .Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task LabelValues_AreEscaped_AndOtherHostsMetersAreLeftOut()
    {
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapOffHeapTrackerMetrics("/prom"));
        DirectBufferPoolFactory factory = app.App.Services.GetRequiredService<DirectBufferPoolFactory>();
        using var odd = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "we\"ird\\pool\nname" });

        // A pool reporting to another host's meter factory: its meter's scope is that factory, not this host's.
        using ServiceProvider otherHost = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var otherFactory = new DirectBufferPoolFactory(configure: null, NullLoggerFactory.Instance, otherHost.GetRequiredService<IMeterFactory>());
        using var elsewhere = (DirectBufferPool)otherFactory.Create(new MemoryPoolOptions { Owner = "elsewhere" });
        using IMemoryOwner<byte> rented = elsewhere.Rent(100);

        string text = await app.Client.GetStringAsync("/prom");

        (int exitCode, string output) = await PrometheusTools.CheckMetricsAsync(text);
        Assert.True(exitCode == 0, $"promtool check metrics exited {exitCode}: {output}\n{text}");
        Assert.Contains("offheaptracker_pool_name=\"we\\\"ird\\\\pool\\nname\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("elsewhere", text, StringComparison.Ordinal);
        Assert.Contains("offheaptracker_pool_name=\"app\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prometheus_ScrapesTheEndpoint_SeesEachPool_AndSeesAPlantedLeakRise()
    {
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapOffHeapTrackerMetrics());
        Assert.Equal("ok\n", await app.Client.GetStringAsync("/ok"));
        DirectBufferPoolFactory factory = app.App.Services.GetRequiredService<DirectBufferPoolFactory>();
        DirectBufferPool appPool = factory.Pools.Single(p => p.Name == "app");
        Assert.Equal(0, appPool.GetStatistics().InUseBytes);

        await using PrometheusServer prometheus = await PrometheusServer.StartAsync($"127.0.0.1:{app.BaseAddress.Port}", "/metrics");
        const string InUse = "sum by (offheaptracker_pool_name, offheaptracker_pool_id) (offheaptracker_pool_in_use_bytes{job=\"offheaptracker\"})";

        // Prometheus has scraped us: one in-use series per pool, the kestrel pools told apart by id, the app pool at 0.
        await WaitForAsync(prometheus, InUse, series =>
        {
            string[] kestrelIds = [.. factory.Pools.Where(p => p.Name == "kestrel").Select(Id).Order(StringComparer.Ordinal)];
            return kestrelIds.Length > 0
                && kestrelIds.SequenceEqual(series.Where(s => s.Labels["offheaptracker_pool_name"] == "kestrel").Select(s => s.Labels["offheaptracker_pool_id"]).Order(StringComparer.Ordinal))
                && series.Any(s => s.Labels["offheaptracker_pool_name"] == "app" && s.Labels["offheaptracker_pool_id"] == Id(appPool) && s.Value == 0);
        }, "the app pool at 0 and one series per kestrel pool");

        // The planted leak: three buffers the sample keeps forever.
        for (int i = 0; i < 3; i++)
        {
            await app.Client.GetStringAsync("/leak");
        }

        long leaked = appPool.GetStatistics().InUseBytes;
        Assert.True(leaked >= 3 * 4096);
        await WaitForAsync(
            prometheus,
            InUse,
            series => series.Any(s => s.Labels["offheaptracker_pool_name"] == "app" && s.Value == leaked),
            $"the app pool's in-use bytes to rise to {leaked}");

        // The README's leak query is valid PromQL on this server (its result depends on timing, its syntax does not).
        (System.Net.HttpStatusCode status, string body) = await prometheus.QueryAsync(ReadmeLeakQuery);
        Assert.True(status == System.Net.HttpStatusCode.OK, $"README query rejected: {body}");
    }

    private static string Id(DirectBufferPool pool) => pool.Id.ToString(CultureInfo.InvariantCulture);

    private static async Task WaitForAsync(PrometheusServer prometheus, string query, Func<List<Sample>, bool> done, string waitingFor)
    {
        List<Sample> last = [];
        string lastBody = string.Empty;
        try
        {
            await Eventually.WaitForAsync(
                () =>
                {
                    (System.Net.HttpStatusCode status, string body) = prometheus.QueryAsync(query).GetAwaiter().GetResult();
                    Assert.True(status == System.Net.HttpStatusCode.OK, $"query failed ({status}): {body}");
                    lastBody = body;
                    last = Vector(body);
                    return last;
                },
                done,
                waitingFor + " in Prometheus");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            string targets = await prometheus.Client.GetStringAsync("api/v1/targets");
            throw new InvalidOperationException($"{e.Message}\nlast answer: {lastBody}\ntargets: {targets}\nprometheus log:\n{prometheus.Log}", e);
        }
    }

    private static List<Sample> Vector(string body)
    {
        using JsonDocument json = JsonDocument.Parse(body);
        JsonElement data = json.RootElement.GetProperty("data");
        Assert.Equal("vector", data.GetProperty("resultType").GetString());
        return
        [
            .. data.GetProperty("result").EnumerateArray().Select(r => new Sample(
                r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal),
                double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture))),
        ];
    }

    private static List<Sample> Samples(string text, string metric)
    {
        var samples = new List<Sample>();
        foreach (string line in text.Split('\n'))
        {
            Match match = SampleLine().Match(line);
            if (match.Success && match.Groups["name"].Value == metric)
            {
                var labels = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (Match label in LabelPair().Matches(match.Groups["labels"].Value))
                {
                    labels[label.Groups["key"].Value] = label.Groups["value"].Value;
                }

                samples.Add(new Sample(labels, double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture)));
            }
        }

        return samples;
    }

    [GeneratedRegex("^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(?<labels>.*)\\})? (?<value>\\S+)$")]
    private static partial Regex SampleLine();

    [GeneratedRegex("(?<key>[a-zA-Z_][a-zA-Z0-9_]*)=\"(?<value>(?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex LabelPair();

    private sealed record Sample(Dictionary<string, string> Labels, double Value);
}
