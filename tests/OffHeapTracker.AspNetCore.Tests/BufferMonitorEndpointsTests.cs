using System.Net;
using System.Text.Json;
using OffHeapTracker.AspNetCore.Tests.Support;
using Xunit.Abstractions;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>The endpoints on the KestrelDiagnostics sample: here <c>/stats</c>, the switches, the page and every response's headers.</summary>
/// <remarks><c>.Reports.cs</c> has <c>/resident</c> and <c>/sites</c>, <c>.Hosts.cs</c> the host check, <c>.Load.cs</c> reports over a large table.</remarks>
[Collection(KestrelHosts.Name)]
public sealed partial class BufferMonitorEndpointsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Stats_ReportsTheMonitorsState_AndEveryLivePool()
    {
        await using TestApp app = await TestApp.StartAsync(o =>
        {
            o.StackTraceDepth = 5;
            o.StackTraceSampling = 16;
        });
        Assert.Equal("ok\n", await app.Client.GetStringAsync("/ok"));

        using JsonDocument stats = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/stats"));
        JsonElement monitor = stats.RootElement.GetProperty("monitor");
        Assert.False(monitor.GetProperty("enabled").GetBoolean());
        Assert.Equal(0, monitor.GetProperty("resident").GetInt64());
        Assert.Equal(5, monitor.GetProperty("stack_trace_depth").GetInt32());
        Assert.Equal(16, monitor.GetProperty("stack_trace_sampling").GetInt32());

        // Kestrel's pools and the sample's own; other live pools in the process may be listed too.
        List<string?> names = [.. stats.RootElement.GetProperty("pools").EnumerateArray().Select(p => p.GetProperty("name").GetString())];
        Assert.Contains("kestrel", names);
        Assert.Contains("app", names);
    }

    [Fact]
    public async Task Stats_CarriesEachPoolsCensusOfNormalBuffers_WithTheMonitorOff()
    {
        await using TestApp app = await TestApp.StartAsync();
        var clock = new AheadClock();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "census", TimeProvider = clock });
        using DirectBuffer old1 = pool.Rent(4096);
        using DirectBuffer old2 = pool.Rent(4096);
        using DirectBuffer pooled = pool.Rent(4096, BufferType.Pool);
        clock.Advance(TimeSpan.FromHours(2));
        using DirectBuffer young = pool.Rent(4096);

        using JsonDocument stats = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/stats"));
        Assert.False(stats.RootElement.GetProperty("monitor").GetProperty("enabled").GetBoolean());
        Assert.Equal(60, stats.RootElement.GetProperty("old_age_seconds").GetDouble());
        JsonElement entry = Assert.Single(stats.RootElement.GetProperty("pools").EnumerateArray(), p => p.GetProperty("id").GetInt32() == pool.Id);
        Assert.Equal("census", entry.GetProperty("name").GetString());
        Assert.Equal(4, entry.GetProperty("outstanding_count").GetInt64());
        JsonElement census = entry.GetProperty("census");
        Assert.Equal(3, census.GetProperty("normal_count").GetInt64());
        Assert.Equal(2, census.GetProperty("old_normal_count").GetInt64());
        Assert.Equal(2 * 4096, census.GetProperty("old_normal_bytes").GetInt64());
        Assert.InRange(census.GetProperty("oldest_normal_second").GetDouble(), 7200, 7200 + Eventually.Patience.TotalSeconds);
    }

    [Fact]
    public async Task EnableAndDisable_NeedPostAndTheActionHeader()
    {
        await using TestApp app = await TestApp.StartAsync();

        using HttpResponseMessage noHeader = await app.Client.PostAsync("/debug/buffers/enable", null);
        Assert.Equal(HttpStatusCode.BadRequest, noHeader.StatusCode);
        Assert.Contains("X-OffHeapTracker-Action: 1", await noHeader.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(app.Monitor.IsEnabled);

        using HttpResponseMessage get = await app.Client.GetAsync("/debug/buffers/enable");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        Assert.Equal("POST", Assert.Single(get.Content.Headers.Allow));

        // Routing's own 405 (no stub endpoint): an empty body, nothing to cache or sniff.
        Assert.Empty(await get.Content.ReadAsByteArrayAsync());
        Assert.False(app.Monitor.IsEnabled);

        Assert.Equal("{\"enabled\":true}", await Switch(app, "enable"));
        Assert.True(app.Monitor.IsEnabled);
        Assert.Equal("{\"enabled\":false}", await Switch(app, "disable"));
        Assert.False(app.Monitor.IsEnabled);
    }

    [Theory]
    [InlineData("GET", "/debug/buffers/")]
    [InlineData("GET", "/debug/buffers/resident")]
    [InlineData("GET", "/debug/buffers/resident?type=foo")]
    [InlineData("GET", "/debug/buffers/sites")]
    [InlineData("GET", "/debug/buffers/stats")]
    [InlineData("POST", "/debug/buffers/enable")]
    [InlineData("POST", "/debug/buffers/disable")]
    public async Task EveryResponse_IsNotCached_AndNotSniffed(string method, string path)
    {
        await using TestApp app = await TestApp.StartAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        using HttpResponseMessage response = await app.Client.SendAsync(request);
        Assert.True(response.Headers.CacheControl?.NoStore, $"{method} {path}: {response.Headers.CacheControl}");
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
    }

    [Fact]
    public async Task ThePage_IsTheDashboard_WithItsContentSecurityPolicy()
    {
        await using TestApp app = await TestApp.StartAsync();
        using HttpResponseMessage response = await app.Client.GetAsync("/debug/buffers/");
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Dashboard.Instance.Html, await response.Content.ReadAsStringAsync());
        Assert.Equal(Dashboard.Instance.ContentSecurityPolicy, Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
    }

    [Fact]
    public async Task TheDashboardWithoutItsTrailingSlash_RedirectsToIt_SoItsRelativeFetchesResolve()
    {
        await using TestApp app = await TestApp.StartAsync();
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = app.BaseAddress };
        using HttpResponseMessage response = await client.GetAsync("/debug/buffers?x=1");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("/debug/buffers/?x=1", response.Headers.Location?.OriginalString);
        Assert.True(response.Headers.CacheControl?.NoStore);
        using HttpResponseMessage page = await client.GetAsync(response.Headers.Location);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
    }

    private static async Task<string> Switch(TestApp app, string action)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/debug/buffers/" + action);
        request.Headers.Add("X-OffHeapTracker-Action", "1");
        using HttpResponseMessage response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }
}
