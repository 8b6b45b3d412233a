using System.Globalization;
using System.Net;

namespace TcpProxy;

/// <summary>The command line, checked: each bad value is named with what is allowed.</summary>
internal sealed record ProxyOptions(IPEndPoint Listen, IPEndPoint? Upstream, IPEndPoint? Diagnostics, int LeakEvery, int LoadConnections, TimeSpan LoadDuration, ProxyPool Pool)
{
    public static ProxyOptions Parse(string[] args)
    {
        var listen = new IPEndPoint(IPAddress.Loopback, 6380);
        IPEndPoint? upstream = null, diagnostics = null;
        int leakEvery = 0, load = 0;
        double seconds = 10;
        ProxyPool pool = ProxyPool.Direct;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            switch (name)
            {
                case "--listen": listen = EndPointOf(name, Value(), anyPort: true); break;
                case "--upstream": upstream = EndPointOf(name, Value()); break;
                case "--diagnostics": diagnostics = EndPointOf(name, Value()); break;
                case "--leak-every": leakEvery = IntOf(name, Value(), 1, int.MaxValue); break;
                case "--load": load = IntOf(name, Value(), 1, 10_000); break;
                case "--seconds": seconds = IntOf(name, Value(), 1, 3600); break;
                case "--pool": pool = PoolOf(name, Value()); break;
                default: throw new ArgumentException($"unknown option '{name}'.");
            }
        }

        // The kept copies are there for the monitor to find, and it sees only DirectBufferPool buffers.
        if (leakEvery > 0 && pool != ProxyPool.Direct)
        {
            throw new ArgumentException("--leak-every needs --pool direct: the monitor sees only the DirectBufferPool's buffers.");
        }

        return new ProxyOptions(listen, upstream, diagnostics, leakEvery, load, TimeSpan.FromSeconds(seconds), pool);
    }

    // Port 0 (any free port) makes sense only for the side we listen on.
    private static IPEndPoint EndPointOf(string name, string value, bool anyPort = false) =>
        IPEndPoint.TryParse(value, out IPEndPoint? endPoint) && (anyPort || endPoint.Port != 0) && value.Contains(':', StringComparison.Ordinal)
            ? endPoint
            : throw new ArgumentException($"{name} must be an address and port such as 127.0.0.1:6380, not '{value}'.");

    private static ProxyPool PoolOf(string name, string value) => value switch
    {
        "direct" => ProxyPool.Direct,
        "shared" => ProxyPool.Shared,
        _ => throw new ArgumentException($"{name} must be 'direct' (a tracked DirectBufferPool) or 'shared' (MemoryPool<byte>.Shared), not '{value}'."),
    };

    private static int IntOf(string name, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"{name} must be a whole number from {min} to {max}, not '{value}'.");
}
