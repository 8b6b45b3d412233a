using System.Buffers;
using System.Net;
using System.Net.Sockets;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Testing;
using OffHeapTracker.Tests.Support;
using TcpProxy;
using Xunit.Abstractions;

namespace OffHeapTracker.Tests.Samples;

/// <summary>The TCP proxy sample end to end, in process, against its embedded echo server.</summary>
[Collection(ProcessWideState.Name)] // a heavy load: run apart so it neither starves nor is starved by other tests
public sealed class TcpProxyTests(ITestOutputHelper output)
{
    // The proxy's pipes ask the pool for segments of this size (PipeOptions.minimumSegmentSize in ProxyServer).
    private const int SegmentSize = 4096;

    [Fact]
    public async Task HundredConnections_ThousandRoundTripsEach_EveryByteIntact_NothingLeftAfterClose()
    {
        // Our own testing package, as a user's proxy tests would use it: its scope records every buffer with its
        // stacks and, when disposed after the proxy, fails the test on any lease left out, dropped or disposed twice.
        using var scope = new BufferTestScope("proxy-test");
        ResidentBufferMonitor monitor = scope.Monitor;
        DirectBufferPool pool = scope.Pool;
        await using var echo = new EchoServer();
        var proxy = new ProxyServer(pool, new IPEndPoint(IPAddress.Loopback, 0), echo.EndPoint);
        proxy.Start();
        try
        {
            // The five minutes only stop a hung run: the round trips take about 8 s on a 2-core machine, so even a
            // machine ten times slower (another build running) finishes all of them with a wide margin.
            LoadClient.Result result = await LoadClient.RunAsync(proxy.LocalEndPoint, connections: 100, roundTrips: 1000, TimeSpan.FromMinutes(5));
            output.WriteLine($"{result.RoundTrips:N0} round trips in {result.Elapsed.TotalSeconds:0.0} s, {result.MebibytesPerSecond:0.0} MiB/s each way");

            Assert.Equal(100_000, result.RoundTrips);
            Assert.Equal(0, result.Mismatches);
            Assert.Equal(100, proxy.ConnectionsAccepted);

            // Every client has closed; once the proxy has closed its side, every buffer is back. The wait ends as
            // soon as they are; 30 s only bounds a proxy that never closes, far above the milliseconds it takes.
            await scope.AssertAllReturnedAsync(TimeSpan.FromSeconds(30));
            Assert.Empty(monitor.GetResident(TimeSpan.Zero, BufferType.Normal));
            Assert.Empty(monitor.GetResident(TimeSpan.Zero));
            DirectBufferPoolStatistics stats = pool.GetStatistics();
            Assert.Equal(0, stats.InUseBytes);
            Assert.Equal(0, stats.OutstandingCount);

            // Every payload byte crosses the proxy twice (to the echo server and back), each time through a pipe
            // whose segments are SegmentSize-byte buffers from this pool. A pipe writes each place in a segment
            // once and returns the segment when it has been read, so carrying B bytes takes at least B / SegmentSize
            // segment rents, however the bytes were split into reads. Each connection also rents one read buffer
            // per direction. This depends on the byte count, never on how fast the run went.
            long leastRents = (2 * result.Bytes / SegmentSize) + (2 * 100);
            output.WriteLine($"{stats.TotalRents:N0} rents for {2 * result.Bytes:N0} bytes through the pipes (at least {leastRents:N0})");
            Assert.True(stats.TotalRents >= leastRents, $"{stats.TotalRents} rents to carry {2 * result.Bytes} bytes: the pipes cannot have used the pool for every segment");
            Assert.Equal(0, stats.LeakedCount);
            Assert.Equal(0, stats.DoubleDisposeCount);
        }
        finally
        {
            await proxy.DisposeAsync();
        }

        // Forces finalizers, then fails on any leak, double dispose or lease still out, each listed with its stacks.
        scope.Verify();
    }

    [Fact]
    public async Task LeakEvery_KeepsBuffersThatTheMonitorListsWithTheLeakingMethod()
    {
        var time = new ManualTimeProvider();

        // Every stack, the forensic mode: the test lists each kept buffer with its stack. Under the default budget
        // a burst of proxy traffic is sampled, and GetLeakSites estimates rather than lists (LeakFindingUnderLoadTests).
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(time, o => o.Stacks = StackPolicy.Every);
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "proxy-leak", Monitor = monitor });
        await using var echo = new EchoServer();
        var proxy = new ProxyServer(pool, new IPEndPoint(IPAddress.Loopback, 0), echo.EndPoint, leakEvery: 10);
        proxy.Start();

        // 400 round trips take well under a second; the minute only stops a hung run, and the count check below
        // fails if it ever cut the run short.
        LoadClient.Result result = await LoadClient.RunAsync(proxy.LocalEndPoint, connections: 4, roundTrips: 100, TimeSpan.FromMinutes(1));
        Assert.Equal(400, result.RoundTrips);
        Assert.Equal(0, result.Mismatches);
        await WaitUntilAsync(() => pool.OutstandingCount == proxy.LeakedOnPurpose);
        time.Advance(TimeSpan.FromSeconds(2));

        IReadOnlyList<ResidentBuffer> leaks = monitor.GetResident(type: BufferType.Normal);
        Assert.True(proxy.LeakedOnPurpose >= 40, $"{proxy.LeakedOnPurpose} kept");
        Assert.Equal(proxy.LeakedOnPurpose, leaks.Count);
        Assert.All(leaks, leak =>
        {
            Assert.StartsWith("TcpProxy.LeakInjector.KeepForAudit(ReadOnlySpan<Byte>)", leak.StackTrace, StringComparison.Ordinal);
            Assert.Matches(@"^conn \d+ 127\.0\.0\.1:\d+$", leak.Context);
        });

        await proxy.DisposeAsync();
        Assert.Equal(0, pool.OutstandingCount);
    }

    [Theory]
    [InlineData(new[] { "--listen", "nonsense" }, "--listen must be an address and port")]
    [InlineData(new[] { "--leak-every", "0" }, "--leak-every must be a whole number from 1 to")]
    [InlineData(new[] { "--upstream" }, "--upstream needs a value")]
    [InlineData(new[] { "--frobnicate" }, "unknown option '--frobnicate'")]
    [InlineData(new[] { "--upstream", "127.0.0.1:0" }, "--upstream must be an address and port")]
    [InlineData(new[] { "--diagnostics", "127.0.0.1" }, "--diagnostics must be an address and port")]
    [InlineData(new[] { "--pool", "kestrel" }, "--pool must be 'direct' (a tracked DirectBufferPool) or 'shared' (MemoryPool<byte>.Shared), not 'kestrel'")]
    [InlineData(new[] { "--pool", "Shared" }, "--pool must be 'direct' (a tracked DirectBufferPool) or 'shared' (MemoryPool<byte>.Shared), not 'Shared'")]
    [InlineData(new[] { "--pool" }, "--pool needs a value")]
    [InlineData(new[] { "--pool", "shared", "--leak-every", "10" }, "--leak-every needs --pool direct")]
    public void BadArguments_AreRejectedNamingTheOption(string[] args, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => ProxyOptions.Parse(args));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pool_IsDirectByDefault_AndSharedSelectsMemoryPoolShared()
    {
        Assert.Equal(ProxyPool.Direct, ProxyOptions.Parse([]).Pool);
        Assert.Equal(ProxyPool.Direct, ProxyOptions.Parse(["--pool", "direct"]).Pool);
        Assert.Equal(ProxyPool.Shared, ProxyOptions.Parse(["--pool", "shared"]).Pool);
        Assert.Equal(ProxyPool.Shared, ProxyOptions.Parse(["--listen", "127.0.0.1:0", "--pool", "shared", "--load", "5"]).Pool);
    }

    [Fact]
    public async Task OnAnotherMemoryPool_EveryByteIntact_EveryPipeSegmentFromThatPool()
    {
        // What --pool shared runs: MemoryPool<byte>.Shared, wrapped here only to count what the proxy rents from it.
        using var pool = new CountingMemoryPool(MemoryPool<byte>.Shared);
        await using var echo = new EchoServer();
        await using var proxy = new ProxyServer(pool, new IPEndPoint(IPAddress.Loopback, 0), echo.EndPoint);
        proxy.Start();

        // 400 round trips take well under a second; the minute only stops a hung run, and the count check below
        // fails if it ever cut the run short.
        LoadClient.Result result = await LoadClient.RunAsync(proxy.LocalEndPoint, connections: 4, roundTrips: 100, TimeSpan.FromMinutes(1));
        Assert.Equal(400, result.RoundTrips);
        Assert.Equal(0, result.Mismatches);

        // The same bound as on the DirectBufferPool above: the pipes' segments and the read buffers all came from this pool.
        long leastRents = (2 * result.Bytes / SegmentSize) + (2 * 4);
        Assert.True(pool.Rents >= leastRents, $"{pool.Rents} rents to carry {2 * result.Bytes} bytes: the proxy cannot have used the given pool for every segment");
    }

    [Fact]
    public void LeakEvery_OnAnotherMemoryPool_IsRefusedNamingTheParameter()
    {
        var ex = Assert.Throws<ArgumentException>(() => new ProxyServer(MemoryPool<byte>.Shared, new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(IPAddress.Loopback, 1), leakEvery: 10));
        Assert.Equal("leakEvery", ex.ParamName);
    }

    [Fact]
    public async Task Diagnostics_ServeTheAspNetCoreEndpoints_ListingTheProxysPool()
    {
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "proxy-diagnostics", Monitor = new ResidentBufferMonitor() });
        await using DiagnosticsHost diagnostics = await DiagnosticsHost.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        using var client = new HttpClient { BaseAddress = new Uri(diagnostics.Urls.First()) };
        string stats = await client.GetStringAsync("/debug/buffers/stats");
        Assert.Contains("\"name\":\"proxy-diagnostics\"", stats, StringComparison.Ordinal);
        Assert.StartsWith("<!DOCTYPE html>", await client.GetStringAsync("/debug/buffers/"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListenPortZero_MeansAnyFreePort()
    {
        ProxyOptions options = ProxyOptions.Parse(["--listen", "127.0.0.1:0"]);
        Assert.Equal(0, options.Listen.Port);

        // Two proxies from the same options: each is given its own free port, and each accepts connections there.
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "proxy-ports", Monitor = new ResidentBufferMonitor() });
        await using var echo = new EchoServer();
        await using var first = new ProxyServer(pool, options.Listen, echo.EndPoint);
        await using var second = new ProxyServer(pool, options.Listen, echo.EndPoint);
        Assert.NotEqual(0, first.LocalEndPoint.Port);
        Assert.NotEqual(0, second.LocalEndPoint.Port);
        Assert.NotEqual(first.LocalEndPoint.Port, second.LocalEndPoint.Port);
        foreach (ProxyServer proxy in new[] { first, second })
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(proxy.LocalEndPoint);
            Assert.True(client.Connected);
        }

        ProxyOptions defaults = ProxyOptions.Parse([]);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 6380), defaults.Listen);
        Assert.Null(defaults.Upstream);
    }

    private sealed class CountingMemoryPool(MemoryPool<byte> inner) : MemoryPool<byte>
    {
        private long _rents;

        public long Rents => Interlocked.Read(ref _rents);

        public override int MaxBufferSize => inner.MaxBufferSize;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            Interlocked.Increment(ref _rents);
            return inner.Rent(minBufferSize);
        }

        protected override void Dispose(bool disposing)
        {
        }
    }

    // Polls until the condition holds, so a passing run waits only as long as it must. The 30 s bound is for a
    // proxy that never settles: closing a few connections takes milliseconds, and even a machine loaded by another
    // build delays that by well under a second.
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!condition() && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20);
        }

        Assert.True(condition());
    }
}
