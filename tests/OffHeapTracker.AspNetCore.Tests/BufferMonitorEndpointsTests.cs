using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.AspNetCore;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

[Collection(KestrelHosts.Name)]
public sealed partial class BufferMonitorEndpointsTests
{
    [Fact]
    public async Task KestrelsOwnConnectionBuffers_ComeFromThePoolNamedKestrel()
    {
        await using TestApp app = await TestApp.StartAsync();
        Assert.Equal("ok\n", await app.Client.GetStringAsync("/ok"));

        using JsonDocument stats = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/stats"));
        // Kestrel may create more than one pool (the transport, and Kestrel core); all are named after it.
        List<JsonElement> kestrel = [.. stats.RootElement.GetProperty("pools").EnumerateArray().Where(p => p.GetProperty("name").GetString() == "kestrel")];
        Assert.NotEmpty(kestrel);
        Assert.True(kestrel.Sum(p => p.GetProperty("total_rents").GetInt64()) > 0, stats.RootElement.ToString());
        Assert.True(kestrel.Sum(p => p.GetProperty("reserved_bytes").GetInt64()) > 0);
        Assert.False(stats.RootElement.GetProperty("monitor").GetProperty("enabled").GetBoolean());
    }

    [Fact]
    public async Task AnUploadInFlight_ShowsKestrelsBuffersAsResidentRecords()
    {
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        var firstChunkSent = new TaskCompletionSource();
        var finish = new TaskCompletionSource();
        using var content = new SlowContent(firstChunkSent, finish.Task);
        Task<HttpResponseMessage> upload = app.Client.PostAsync("/held", content);

        // The handler has not read the body: the first 10,000 bytes wait in Kestrel's input pipe, in buffers
        // rented from the pool Kestrel created.
        await firstChunkSent.Task.WaitAsync(Eventually.Patience);
        await Eventually.WaitForAsync(
            () => app.Monitor.GetResident(TimeSpan.Zero).Where(r => r.PoolName == "kestrel").ToList(),
            rows => rows.Count > 0,
            "a resident record from a pool named kestrel");
        app.ReleaseHeld.SetResult();
        finish.SetResult();
        using HttpResponseMessage response = await upload;
        Assert.Equal(20_000, (await response.Content.ReadAsStringAsync()).Length);
    }

    [Fact]
    public async Task Resident_AndSites_ListTheLeakUnderItsRequestContext_InEveryFormat()
    {
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        await app.Client.GetStringAsync("/leak");
        await app.Client.GetStringAsync("/leak");

        using HttpResponseMessage json = await app.Client.GetAsync("/debug/buffers/resident?minAge=0&type=normal&limit=10");
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
        IReadOnlyList<ResidentBuffer> rows = BufferReportFormatter.ParseResidentJson(await json.Content.ReadAsStringAsync());
        Assert.Equal(2, rows.Count(r => r.PoolName == "app"));
        Assert.All(rows.Where(r => r.PoolName == "app"), r => Assert.Equal("GET /leak", r.Context));

        string text = await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0&format=text&type=normal");
        Assert.Contains("*************************** 1. row ***************************", text, StringComparison.Ordinal);
        Assert.Contains("context: GET /leak", text, StringComparison.Ordinal);

        string limited = await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0&limit=1");
        Assert.Single(BufferReportFormatter.ParseResidentJson(limited));

        using JsonDocument sites = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/sites?minAge=0&top=5"));
        Assert.Contains(sites.RootElement.EnumerateArray(), s => s.GetProperty("stacktrace").GetString()!.Contains("KestrelDiagnostics", StringComparison.Ordinal));

        string collapsed = await app.Client.GetStringAsync("/debug/buffers/sites?minAge=0&format=collapsed");
        Assert.All(collapsed.TrimEnd('\n').Split('\n'), line => Assert.Matches(@"^.+ \d+$", line));
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
        Assert.False(app.Monitor.IsEnabled);

        Assert.Equal("{\"enabled\":true}", await Switch(app, "enable"));
        Assert.True(app.Monitor.IsEnabled);
        Assert.Equal("{\"enabled\":false}", await Switch(app, "disable"));
        Assert.False(app.Monitor.IsEnabled);
    }

    [Theory]
    [InlineData("/debug/buffers/resident?minAge=abc", "minAge")]
    [InlineData("/debug/buffers/resident?minAge=-1", "minAge")]
    [InlineData("/debug/buffers/resident?limit=-1", "limit")]
    [InlineData("/debug/buffers/resident?limit=abc", "limit")]
    [InlineData("/debug/buffers/resident?type=foo", "type")]
    [InlineData("/debug/buffers/resident?format=xml", "format")]
    [InlineData("/debug/buffers/sites?top=0", "top")]
    [InlineData("/debug/buffers/sites?format=text", "format")]
    public async Task BadQueryValues_Get400ProblemDetails_NamingTheParameterAndItsRange(string path, string parameter)
    {
        await using TestApp app = await TestApp.StartAsync();
        using HttpResponseMessage response = await app.Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(400, body.RootElement.GetProperty("status").GetInt32());
        Assert.Equal(parameter, body.RootElement.GetProperty("parameter").GetString());
        string detail = body.RootElement.GetProperty("detail").GetString()!;
        Assert.StartsWith(parameter + " must be ", detail, StringComparison.Ordinal);
        Assert.Matches(@" from \d+ to \d+\.$| must be [a-z]+(, [a-z]+)* or [a-z]+\.$", detail);
    }

    [Theory]
    [InlineData("GET", "/debug/buffers/")]
    [InlineData("GET", "/debug/buffers/resident")]
    [InlineData("GET", "/debug/buffers/resident?type=foo")]
    [InlineData("GET", "/debug/buffers/sites")]
    [InlineData("GET", "/debug/buffers/stats")]
    [InlineData("POST", "/debug/buffers/enable")]
    [InlineData("DELETE", "/debug/buffers/disable")]
    public async Task EveryResponse_IsNotCached_AndNotSniffed(string method, string path)
    {
        await using TestApp app = await TestApp.StartAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        using HttpResponseMessage response = await app.Client.SendAsync(request);
        Assert.True(response.Headers.CacheControl?.NoStore, $"{method} {path}: {response.Headers.CacheControl}");
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
    }

    [Fact]
    public async Task ResponsesSpanningManyBlocks_AreSentIntact()
    {
        // Kestrel sends multi-segment responses through SocketAsyncEventArgs.BufferList, which needs arrays:
        // the reason pools made for Kestrel are backed by pinned arrays.
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        string dashboard = await app.Client.GetStringAsync("/debug/buffers/");
        Assert.True(dashboard.Length > 4096, $"{dashboard.Length} characters: not enough to span blocks");
        Assert.EndsWith("</html>\n", dashboard, StringComparison.Ordinal);
        Assert.All(app.App.Services.GetRequiredService<DirectBufferPoolFactory>().Pools, p => Assert.Equal(OffHeapTracker.BufferBacking.PinnedArray, p.Backing));
    }

    [Fact]
    public async Task Dashboard_IsOneSelfContainedPage_WithAStrictContentSecurityPolicy()
    {
        await using TestApp app = await TestApp.StartAsync();
        using HttpResponseMessage response = await app.Client.GetAsync("/debug/buffers/");
        string html = await response.Content.ReadAsStringAsync();
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
        Assert.DoesNotContain("innerHTML", html, StringComparison.Ordinal);
        string csp = Assert.Single(response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'none'; script-src 'sha256-", csp, StringComparison.Ordinal);
    }

    [Fact]
    public void Factory_ResolvesItsMonitorOnce_AndEveryPoolReportsToIt()
    {
        int created = 0;
        using var factory = new DirectBufferPoolFactory(
            o =>
            {
                o.Monitor = new ResidentBufferMonitor();
                created++;
            },
            Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        IBufferMonitor monitor = factory.Monitor;
        Assert.Same(monitor, factory.Monitor);
        using var a = (DirectBufferPool)factory.Create(new Microsoft.AspNetCore.Connections.MemoryPoolOptions { Owner = "a" });
        using var b = (DirectBufferPool)factory.Create();
        Assert.Same(monitor, a.Monitor);
        Assert.Same(monitor, b.Monitor);
        Assert.Equal("a", a.Name);
        Assert.Equal("aspnetcore", b.Name);
        Assert.Equal(BufferBacking.PinnedArray, b.Backing);
        Assert.Equal(3, created);
    }

    [Fact]
    public async Task WithoutMapBufferMonitor_NothingIsExposed()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddDirectBufferPool();
        await using var app = builder.Build();
        await app.StartAsync();
        string address = app.Urls.First();
        using var client = new HttpClient { BaseAddress = new Uri(address) };
        using HttpResponseMessage response = await client.GetAsync("/debug/buffers/stats");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        await app.StopAsync();
    }

    private static async Task<string> Switch(TestApp app, string action)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/debug/buffers/" + action);
        request.Headers.Add("X-OffHeapTracker-Action", "1");
        using HttpResponseMessage response = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Sends 10,000 bytes, waits to be told, then sends 10,000 more: an upload held open on purpose.</summary>
    private sealed class SlowContent(TaskCompletionSource firstChunkSent, Task finish) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            byte[] chunk = Encoding.ASCII.GetBytes(new string('x', 10_000));
            await stream.WriteAsync(chunk);
            await stream.FlushAsync();
            firstChunkSent.SetResult();
            await finish;
            await stream.WriteAsync(chunk);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 20_000;
            return true;
        }
    }
}
