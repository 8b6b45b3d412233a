using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace OffHeapTracker.AspNetCore.Tests;

public sealed class HostAllowListTests
{
    public static TheoryData<string, bool> LoopbackCases => new()
    {
        { "localhost", true },
        { "LOCALHOST:443", true },
        { "127.0.0.1", true },
        { "127.255.255.254:8080", true },
        { "[::1]", true },
        { "[::1]:1", true },
        { "[::ffff:127.0.0.1]:80", true },
        { "localhost.attacker.example", false },
        { "127.0.0.1.attacker.example", false },
        { "attacker.example", false },
        { "128.0.0.1", false },
        { "10.0.0.1", false },
        { "0.0.0.0", false },
        { "[::2]", false },
        { "[::ffff:10.0.0.1]", false },
        { "", false },
    };

    [Theory]
    [MemberData(nameof(LoopbackCases))]
    public void ByDefault_OnlyLoopbackHostsAreAllowed(string host, bool allowed)
    {
        var hosts = new HostAllowList([]);
        Assert.Equal(allowed, hosts.IsAllowed(new HostString(host)));
    }

    [Fact]
    public void ListedHosts_MatchByName_AndByPortWhenOneIsGiven()
    {
        var hosts = new HostAllowList(["ops.example.com", "gateway.internal:9090", "10.0.0.5", "[fd00::5]"]);
        Assert.True(hosts.IsAllowed(new HostString("ops.example.com")));
        Assert.True(hosts.IsAllowed(new HostString("OPS.example.com:1234")));
        Assert.True(hosts.IsAllowed(new HostString("gateway.internal:9090")));
        Assert.False(hosts.IsAllowed(new HostString("gateway.internal:9091")));
        Assert.False(hosts.IsAllowed(new HostString("gateway.internal")));
        Assert.True(hosts.IsAllowed(new HostString("10.0.0.5:80")));
        Assert.True(hosts.IsAllowed(new HostString("[fd00::5]:80")));
        Assert.False(hosts.IsAllowed(new HostString("ops.example.com.attacker.example")));
        Assert.True(hosts.IsAllowed(new HostString("localhost")));
        Assert.False(hosts.AllowsAny);
    }

    [Fact]
    public void AStar_AllowsEveryHost()
    {
        var hosts = new HostAllowList(["*"]);
        Assert.True(hosts.AllowsAny);
        Assert.True(hosts.IsAllowed(new HostString("anything.example")));
    }

    [Theory]
    [InlineData("")]
    [InlineData("http://ops.example.com")]
    [InlineData("ops.example.com/debug")]
    [InlineData("fd00::5")]
    [InlineData("ops.example.com:port")]
    public async Task AnEntryThatIsNotAHost_IsRejectedWhenMapping_WithTheFormsThatWork(string entry)
    {
        await using WebApplication app = WebApplication.CreateSlimBuilder().Build();
        ArgumentException error = Assert.Throws<ArgumentException>(() => app.MapBufferMonitor(o => o.AllowedHosts.Add(entry)));
        Assert.Contains($"AllowedHosts entry '{entry}' is not a host", error.Message, StringComparison.Ordinal);
        Assert.Contains("'ops.example.com'", error.Message, StringComparison.Ordinal);
        Assert.Equal("configure", error.ParamName);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65)]
    public async Task MaxConcurrentReports_OutOfRange_IsRejectedWhenMapping(int value)
    {
        await using WebApplication app = WebApplication.CreateSlimBuilder().Build();
        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => app.MapBufferMonitor(o => o.MaxConcurrentReports = value));
        Assert.Contains("MaxConcurrentReports must be from 1 to 64", error.Message, StringComparison.Ordinal);
        Assert.Equal("configure", error.ParamName);
    }
}
