using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using OffHeapTracker;

namespace TcpProxy;

/// <summary>Forwards bytes both ways between each client and an upstream server, through pipes over one memory pool, normally a <see cref="DirectBufferPool"/>.</summary>
/// <remarks>
/// Per connection and direction, as in dble: a read buffer that lives as long as the connection is rented as
/// <see cref="BufferType.Pool"/>. The socket receives into it, and the bytes go into a <see cref="Pipe"/>
/// whose segments are short-lived <see cref="BufferType.Normal"/> buffers from the same pool. A send loop
/// drains the pipe into the other socket. Each connection runs under
/// <c>BufferMonitor.BeginContext("conn {id} {remote}")</c>, so every buffer it rents says whose it is.
/// Any other <see cref="MemoryPool{T}"/> (<c>--pool shared</c>) takes the same path; only the read buffer is
/// rented without a type, which such a pool has no use for.
/// </remarks>
internal sealed class ProxyServer : IAsyncDisposable
{
    private const int ReadBufferSize = 16 * 1024;

    private readonly MemoryPool<byte> _pool;
    private readonly EndPoint _upstream;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _connections = [];
    private readonly Lock _connectionsLock = new();
    private readonly LeakInjector? _leaks;
    private Task? _acceptLoop;
    private long _nextConnectionId;

    /// <exception cref="ArgumentException"><paramref name="leakEvery"/> is positive and <paramref name="pool"/> is not a <see cref="DirectBufferPool"/>.</exception>
    public ProxyServer(MemoryPool<byte> pool, IPEndPoint listen, EndPoint upstream, int leakEvery = 0)
    {
        _pool = pool;
        _upstream = upstream;
        _leaks = leakEvery <= 0 ? null
            : pool is DirectBufferPool direct ? new LeakInjector(direct, leakEvery)
            : throw new ArgumentException("Leaking on purpose needs a DirectBufferPool: the monitor sees no other pool's buffers.", nameof(leakEvery));
        _listener = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(listen);
        _listener.Listen(512);
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public long ConnectionsAccepted => Interlocked.Read(ref _nextConnectionId);

    /// <summary>Gets the buffers deliberately kept by <c>--leak-every</c>.</summary>
    public int LeakedOnPurpose => _leaks?.Count ?? 0;

    public void Start() => _acceptLoop = AcceptLoopAsync();

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        Task[] open;
        lock (_connectionsLock)
        {
            open = [.. _connections];
        }

        await Task.WhenAll(open).ConfigureAwait(false);
        _leaks?.Release();
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            long id = Interlocked.Increment(ref _nextConnectionId);
            Task connection = Task.Run(() => HandleAsync(id, client));
            lock (_connectionsLock)
            {
                _connections.RemoveAll(static t => t.IsCompleted);
                _connections.Add(connection);
            }
        }
    }

    private async Task HandleAsync(long id, Socket client)
    {
        using IDisposable context = BufferMonitor.BeginContext($"conn {id} {client.RemoteEndPoint}");
        using (client)
        using (var upstream = new Socket(_upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
        {
            client.NoDelay = true;
            upstream.NoDelay = true;
            try
            {
                await upstream.ConnectAsync(_upstream, _stopping.Token).ConfigureAwait(false);
                using var cancel = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                Task toUpstream = ForwardAsync(client, upstream, cancel.Token);
                Task toClient = ForwardAsync(upstream, client, cancel.Token);

                // When either side is done, the connection is: stop the other direction too.
                await Task.WhenAny(toUpstream, toClient).ConfigureAwait(false);
                await cancel.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(toUpstream, toClient).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException)
            {
                // A peer went away or we are shutting down: the connection simply ends.
            }
        }
    }

    /// <summary>One direction: socket → resident read buffer → pipe (pool segments) → the other socket.</summary>
    private async Task ForwardAsync(Socket from, Socket to, CancellationToken cancellationToken)
    {
        var pipe = new Pipe(new PipeOptions(pool: _pool, minimumSegmentSize: 4096, pauseWriterThreshold: 256 * 1024, resumeWriterThreshold: 128 * 1024, useSynchronizationContext: false));
        Task sending = SendAsync(pipe.Reader, to, cancellationToken);
        using (IMemoryOwner<byte> readBuffer = RentReadBuffer())
        {
            try
            {
                while (true)
                {
                    int received = await from.ReceiveAsync(readBuffer.Memory, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    if (received == 0)
                    {
                        break;
                    }

                    _leaks?.OnMessage(readBuffer.Memory.Span[..received]);
                    FlushResult flushed = await pipe.Writer.WriteAsync(readBuffer.Memory[..received], cancellationToken).ConfigureAwait(false);
                    if (flushed.IsCompleted)
                    {
                        break;
                    }
                }

                await pipe.Writer.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                await pipe.Writer.CompleteAsync(ex).ConfigureAwait(false);
            }
        }

        try
        {
            await sending.ConfigureAwait(false);
        }
        finally
        {
            // Tell the other side no more is coming, so it can finish too (half-close, as TCP proxies do).
            try
            {
                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        }
    }

    private IMemoryOwner<byte> RentReadBuffer() =>
        _pool is DirectBufferPool direct ? direct.Rent(ReadBufferSize, BufferType.Pool) : _pool.Rent(ReadBufferSize);

    private static async Task SendAsync(PipeReader reader, Socket to, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                foreach (ReadOnlyMemory<byte> segment in result.Buffer)
                {
                    for (int sent = 0; sent < segment.Length;)
                    {
                        sent += await to.SendAsync(segment[sent..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    }
                }

                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }

            await reader.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Completing the reader with the error makes the writer's next WriteAsync return IsCompleted.
            await reader.CompleteAsync(ex).ConfigureAwait(false);
            throw;
        }
    }
}
