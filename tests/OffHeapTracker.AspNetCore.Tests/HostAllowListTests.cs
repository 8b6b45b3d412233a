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

    public static TheoryData<string?> NotHosts => new()
    {
        null,
        "",
        "   ",
        "http://ops.example.com",
        "ops.example.com/debug",
        "user@ops.example.com",
        "ops.example.com?x",
        "ops.example.com#x",
        "ops example.com",
        "fd00::5",
        "ops.example.com:port",
        ":9090",
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
        var hosts = new HostAllowList(["ops.example.com", "gateway.internal:9090", "10.0.0.5", "[fd00::5]", "[fd00::6]:8443"]);
        Assert.True(hosts.IsAllowed(new HostString("ops.example.com")));
        Assert.True(hosts.IsAllowed(new HostString("OPS.example.com:1234")));
        Assert.True(hosts.IsAllowed(new HostString("gateway.internal:9090")));
        Assert.False(hosts.IsAllowed(new HostString("gateway.internal:9091")));
        Assert.False(hosts.IsAllowed(new HostString("gateway.internal")));
        Assert.True(hosts.IsAllowed(new HostString("10.0.0.5:80")));
        Assert.True(hosts.IsAllowed(new HostString("[fd00::5]:80")));
        Assert.True(hosts.IsAllowed(new HostString("[fd00::6]:8443")));
        Assert.False(hosts.IsAllowed(new HostString("[fd00::6]:80")));
        Assert.False(hosts.IsAllowed(new HostString("ops.example.com.attacker.example")));
        Assert.True(hosts.IsAllowed(new HostString("localhost")));
        Assert.False(hosts.AllowsAny);
    }

    [Fact]
    public void Entries_AreTrimmed()
    {
        var hosts = new HostAllowList(["  ops.example.com \t"]);
        Assert.True(hosts.IsAllowed(new HostString("ops.example.com")));
    }

    [Fact]
    public void AStar_AllowsEveryHost_WhateverElseIsListed()
    {
        var hosts = new HostAllowList(["ops.example.com", " * "]);
        Assert.True(hosts.AllowsAny);
        Assert.True(hosts.IsAllowed(new HostString("anything.example")));
        Assert.True(hosts.IsAllowed(new HostString("anything.example:1")));
    }

    [Theory]
    [MemberData(nameof(NotHosts))]
    public void AnEntryThatIsNotAHost_IsRejected_WithTheFormsThatWork(string? entry)
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => new HostAllowList([entry!]));
        Assert.Equal("allowed", error.ParamName);
        Assert.Contains($"AllowedHosts entry '{entry}' is not a host", error.Message, StringComparison.Ordinal);
        Assert.Contains("'ops.example.com'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'10.0.0.5:9090'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARejectedEntry_NamesTheParameterTheCallerGives()
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => new HostAllowList(["ops.example.com/debug"], "configure"));
        Assert.Equal("configure", error.ParamName);
    }
}
