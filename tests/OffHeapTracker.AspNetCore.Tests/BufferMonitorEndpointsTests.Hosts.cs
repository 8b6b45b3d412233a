using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

// Which hosts the endpoints answer: loopback ones, the listed ones, and no others.
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
        Assert.Equal(HttpStatusCode.OK, await StatusFor(app, "/debug/buffers/stats", host));
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

    private static async Task<HttpStatusCode> StatusFor(TestApp app, string path, string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Host = host;
        using HttpResponseMessage response = await app.Client.SendAsync(request);
        return response.StatusCode;
    }
}
