using System.Buffers;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>The endpoints' edges: which hosts they answer, what they leave out, and where the dashboard lives.</summary>
public sealed partial class BufferMonitorEndpointsTests
{
    [Theory]
    [InlineData("GET", "/debug/buffers/stats")]
    [InlineData("GET", "/debug/buffers/")]
    [InlineData("GET", "/debug/buffers/resident")]
    [InlineData("POST", "/debug/buffers/enable")]
    public async Task ARebindingHost_IsRefused_WithProblemDetailsSayingHowToAllowIt(string method, string path)
    {
        await using TestApp app = await TestApp.StartAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        request.Headers.Host = "rebind.attacker.example:8080";
        request.Headers.Add("X-OffHeapTracker-Action", "1");
        using HttpResponseMessage response = await app.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        string detail = body.RootElement.GetProperty("detail").GetString()!;
        Assert.Contains("'rebind.attacker.example:8080'", detail, StringComparison.Ordinal);
        Assert.Contains("AllowedHosts.Add(\"rebind.attacker.example\")", detail, StringComparison.Ordinal);
        Assert.Equal("Host", body.RootElement.GetProperty("parameter").GetString());
        Assert.False(app.Monitor.IsEnabled);
        Assert.True(response.Headers.CacheControl?.NoStore);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("LocalHost:5080")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:1")]
    [InlineData("127.10.20.30:65535")]
    [InlineData("[::1]")]
    [InlineData("[::1]:5080")]
    public async Task LoopbackHosts_AreServed_WithAnyPort(string host)
    {
        await using TestApp app = await TestApp.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/debug/buffers/stats");
        request.Headers.Host = host;
        using HttpResponseMessage response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task HostsListedInAllowedHosts_AreServed_AndOnlyThoseBesidesLoopback()
    {
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapBufferMonitor(o => o.AllowedHosts.Add("ops.internal"), "/ops"));

        Assert.Equal(HttpStatusCode.OK, await StatusFor(app, "/ops/stats", "ops.internal:9090"));
        Assert.Equal(HttpStatusCode.OK, await StatusFor(app, "/ops/stats", "OPS.internal"));
        Assert.Equal(HttpStatusCode.OK, await StatusFor(app, "/ops/stats", "localhost"));
        Assert.Equal(HttpStatusCode.Forbidden, await StatusFor(app, "/ops/stats", "ops.internal.attacker.example"));

        // The option belongs to its own mapping: the sample's default one still refuses the host.
        Assert.Equal(HttpStatusCode.Forbidden, await StatusFor(app, "/debug/buffers/stats", "ops.internal"));
    }

    [Fact]
    public async Task Resident_LeavesNativeAddressesOut_UnlessTheOptionAsksForThem()
    {
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapBufferMonitor(o => o.IncludeAddresses = true, "/with-addresses"));
        app.Monitor.Enable();
        await app.Client.GetStringAsync("/leak");

        using JsonDocument plain = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0"));
        Assert.NotEmpty(plain.RootElement.EnumerateArray());
        Assert.All(plain.RootElement.EnumerateArray(), row => Assert.False(row.TryGetProperty("address", out _), row.ToString()));
        Assert.All(BufferReportFormatter.ParseResidentJson(plain.RootElement.GetRawText()), row => Assert.Equal(0, row.Address));

        using JsonDocument asked = JsonDocument.Parse(await app.Client.GetStringAsync("/with-addresses/resident?minAge=0"));
        Assert.All(asked.RootElement.EnumerateArray(), row => Assert.NotEqual(0, row.GetProperty("address").GetInt64()));
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

    [Fact]
    public async Task AContextWithNewlines_CannotForgeRowsInTheTextReport()
    {
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        MemoryPool<byte> pool = app.App.Services.GetRequiredService<DirectBufferPoolFactory>().Create(new MemoryPoolOptions { Owner = "forged" });
        IMemoryOwner<byte> held;
        using (BufferMonitor.BeginContext("GET /x\n*************************** 2. row ***************************\n           id: 1"))
        {
            held = pool.Rent(64);
        }

        string text = await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0&format=text&type=normal");
        Assert.Single(text.Split('\n'), line => line.StartsWith("***", StringComparison.Ordinal));
        Assert.Contains(@"context: GET /x\n***", text, StringComparison.Ordinal);
        held.Dispose();
    }

    [Fact]
    public async Task Reports_BeyondMaxConcurrentReports_Get503ProblemDetails_WithRetryAfter()
    {
        // One slot, held by a report whose client stops reading: the response (about 20 MB) fills the socket
        // buffers and Kestrel's, so the handler waits inside the slot until the client goes away.
        await using TestApp app = await TestApp.StartAsync(
            o => o.StackTraceDepth = 0,
            a => a.MapBufferMonitor(o => o.MaxConcurrentReports = 1, "/one"));
        app.Monitor.Enable();
        for (long id = 1; id <= 100_000; id++)
        {
            ((IBufferMonitor)app.Monitor).OnAllocated(new BufferAllocation((1L << 40) + id, 0, 64, 64, BufferType.Normal, "held-open-report", IsPooled: true));
        }

        using var stalled = new HttpClient { BaseAddress = app.BaseAddress };
        using HttpResponseMessage slow = await stalled.GetAsync("/one/resident?minAge=0&limit=100000&format=text", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, slow.StatusCode);

        using HttpResponseMessage refused = await app.Client.GetAsync("/one/sites?minAge=0");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Contains("MaxConcurrentReports", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The other mapping has its own slots, and /stats takes none.
        Assert.Equal(HttpStatusCode.OK, (await app.Client.GetAsync("/one/stats")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.Client.GetAsync("/debug/buffers/resident?limit=1")).StatusCode);
        app.Monitor.Disable();
    }

    private static async Task<HttpStatusCode> StatusFor(TestApp app, string path, string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Host = host;
        using HttpResponseMessage response = await app.Client.SendAsync(request);
        return response.StatusCode;
    }
}
