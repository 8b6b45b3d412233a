using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

[Collection(KestrelHosts.Name)]
public sealed class BufferMonitorEndpointRouteBuilderExtensionsTests
{
    [Fact]
    public async Task MapBufferMonitor_MapsThePageReportsStatsAndSwitches_UnderThePrefix()
    {
        await using WebApplication app = NewApp();
        app.MapBufferMonitor("/ops");

        Assert.Equal(
            [
                "GET /ops/",
                "GET /ops/history",
                "GET /ops/resident",
                "GET /ops/sites",
                "GET /ops/stats",
                "POST /ops/disable",
                "POST /ops/enable",
            ],
            Mapped(app).Select(e => $"{string.Join(",", e.Methods)} {e.Pattern}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task TheReturnedGroup_AppliesConventionsToEveryEndpoint()
    {
        await using WebApplication app = NewApp();
        app.MapBufferMonitor().RequireAuthorization("ops");
        app.MapBufferMonitor(o => o.IncludeAddresses = true, "/other").RequireAuthorization("other");

        List<(string Pattern, string[] Methods, string? Policy)> mapped = Mapped(app);
        Assert.Equal(14, mapped.Count);
        Assert.All(mapped, e => Assert.Equal(e.Pattern.StartsWith("/other/", StringComparison.Ordinal) ? "other" : "ops", e.Policy));
    }

    [Fact]
    public async Task TheEndpoints_StayOutOfApiExplorer_UnlessAskedFor()
    {
        await using WebApplication app = NewApp();
        app.MapBufferMonitor("/hidden");
        app.MapBufferMonitor(o => o.IncludeInOpenApi = true, "/shown");

        List<RouteEndpoint> endpoints = [.. ((IEndpointRouteBuilder)app).DataSources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()];
        Assert.Equal(14, endpoints.Count);
        Assert.All(endpoints, e =>
        {
            bool shown = e.RoutePattern.RawText!.StartsWith("/shown", StringComparison.Ordinal);
            Assert.Equal(!shown, e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IExcludeFromDescriptionMetadata>()?.ExcludeFromDescription ?? false);
            Assert.Equal(shown ? ["OffHeapTracker"] : [], e.Metadata.GetMetadata<Microsoft.AspNetCore.Http.Metadata.ITagsMetadata>()?.Tags ?? []);
        });
    }

    [Fact]
    public async Task AnAuthorizationPolicyInTheOptions_IsRequiredByEveryEndpoint()
    {
        await using WebApplication app = NewApp();
        app.MapBufferMonitor(o => o.AuthorizationPolicy = "ops");

        Assert.All(Mapped(app), e => Assert.Equal("ops", e.Policy));
    }

    [Fact]
    public async Task NullArguments_AreRejected_WithTheirNames()
    {
        await using WebApplication app = NewApp();
        Assert.Equal("endpoints", Assert.Throws<ArgumentNullException>(() => BufferMonitorEndpointRouteBuilderExtensions.MapBufferMonitor(null!)).ParamName);
        Assert.Equal("endpoints", Assert.Throws<ArgumentNullException>(() => BufferMonitorEndpointRouteBuilderExtensions.MapBufferMonitor(null!, _ => { })).ParamName);
        Assert.Equal("prefix", Assert.Throws<ArgumentNullException>(() => app.MapBufferMonitor((string)null!)).ParamName);
        Assert.Equal("prefix", Assert.Throws<ArgumentNullException>(() => app.MapBufferMonitor(_ => { }, null!)).ParamName);
        Assert.Equal("configure", Assert.Throws<ArgumentNullException>(() => app.MapBufferMonitor((Action<OffHeapTracker.AspNetCore.BufferMonitorEndpointOptions>)null!)).ParamName);
        Assert.Empty(Mapped(app));
    }

    [Theory]
    [InlineData(int.MinValue)]
    [InlineData(0)]
    [InlineData(65)]
    public async Task MaxConcurrentReports_OutOfRange_IsRejected_WithTheRange(int value)
    {
        await using WebApplication app = NewApp();
        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => app.MapBufferMonitor(o => o.MaxConcurrentReports = value));
        Assert.Equal("configure", error.ParamName);
        Assert.Equal(value, error.ActualValue);
        Assert.Contains("MaxConcurrentReports must be from 1 to 64", error.Message, StringComparison.Ordinal);
        Assert.Empty(Mapped(app));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    public async Task MaxConcurrentReports_AtTheEndsOfItsRange_IsAccepted(int value)
    {
        await using WebApplication app = NewApp();
        app.MapBufferMonitor(o => o.MaxConcurrentReports = value);
        Assert.NotEmpty(Mapped(app));
    }

    [Fact]
    public async Task AnAllowedHostsEntryThatIsNotAHost_IsRejected_NamingConfigure()
    {
        await using WebApplication app = NewApp();
        ArgumentException error = Assert.Throws<ArgumentException>(() => app.MapBufferMonitor(o => o.AllowedHosts.Add("ops.example.com/debug")));
        Assert.Equal("configure", error.ParamName);
        Assert.Contains("AllowedHosts entry 'ops.example.com/debug' is not a host", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutMapBufferMonitor_NothingIsExposed()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddDirectBufferPool();
        await using WebApplication app = builder.Build();
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        foreach (string path in new[] { "/debug/buffers/", "/debug/buffers/stats", "/debug/buffers/resident" })
        {
            using HttpResponseMessage response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        await app.StopAsync();
    }

    private static WebApplication NewApp()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        return builder.Build();
    }

    private static List<(string Pattern, string[] Methods, string? Policy)> Mapped(WebApplication app) =>
        [.. ((IEndpointRouteBuilder)app).DataSources
            .SelectMany(source => source.Endpoints)
            .OfType<RouteEndpoint>()
            .Select(e => (
                e.RoutePattern.RawText ?? string.Empty,
                e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods.Order(StringComparer.Ordinal).ToArray() ?? [],
                e.Metadata.GetMetadata<IAuthorizeData>()?.Policy))];
}
