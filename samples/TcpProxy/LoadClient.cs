using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace TcpProxy;

/// <summary>Echo round trips through the proxy from many connections at once, checking every byte that comes back.</summary>
internal static class LoadClient
{
    public sealed record Result(long RoundTrips, long Bytes, long Mismatches, TimeSpan Elapsed)
    {
        public double RoundTripsPerSecond => RoundTrips / Elapsed.TotalSeconds;

        public double MebibytesPerSecond => Bytes / Elapsed.TotalSeconds / (1024 * 1024);
    }

    /// <summary>Runs <paramref name="connections"/> clients, each doing round trips until <paramref name="roundTrips"/> are done or the time is up.</summary>
    /// <remarks>Payload sizes are log-uniform from 1 B to 64 KiB: mostly small frames, some large ones, as a database proxy sees.</remarks>
    /// <remarks>Cancelling <paramref name="cancellationToken"/> ends the run early, as the time being up does.</remarks>
    public static async Task<Result> RunAsync(IPEndPoint proxy, int connections, int roundTrips, TimeSpan duration, int seed = 1, CancellationToken cancellationToken = default)
    {
        long totalRoundTrips = 0, totalBytes = 0, mismatches = 0;
        var stopwatch = Stopwatch.StartNew();
        using var timeUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeUp.CancelAfter(duration);
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async connection =>
        {
            var random = new Random(seed + connection);
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(proxy).ConfigureAwait(false);
            byte[] sent = new byte[64 * 1024];
            byte[] received = new byte[64 * 1024];
            for (int i = 0; i < roundTrips && !timeUp.IsCancellationRequested; i++)
            {
                int size = (int)Math.Pow(2, random.NextDouble() * 16);
                random.NextBytes(sent.AsSpan(0, size));
                for (int offset = 0; offset < size;)
                {
                    offset += await socket.SendAsync(sent.AsMemory(offset, size - offset), SocketFlags.None).ConfigureAwait(false);
                }

                for (int offset = 0; offset < size;)
                {
                    int n = await socket.ReceiveAsync(received.AsMemory(offset, size - offset), SocketFlags.None).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new IOException($"The proxy closed connection {connection} after {i} round trips.");
                    }

                    offset += n;
                }

                if (!sent.AsSpan(0, size).SequenceEqual(received.AsSpan(0, size)))
                {
                    Interlocked.Increment(ref mismatches);
                }

                Interlocked.Increment(ref totalRoundTrips);
                Interlocked.Add(ref totalBytes, size);
            }

            socket.Shutdown(SocketShutdown.Send);
            while (await socket.ReceiveAsync(received, SocketFlags.None).ConfigureAwait(false) > 0)
            {
            }
        })).ConfigureAwait(false);

        return new Result(totalRoundTrips, totalBytes, mismatches, stopwatch.Elapsed);
    }
}
