using System.Buffers;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace OffHeapTracker.AspNetCore;

/// <summary>The <see cref="IMemoryPoolFactory{T}"/> Kestrel asks for its connection buffers: every pool it creates is a <see cref="DirectBufferPool"/>.</summary>
/// <remarks>
/// <para>
/// In .NET 10, Kestrel's socket transport takes its memory pool from this DI service and calls
/// <see cref="Create"/> with <see cref="MemoryPoolOptions.Owner"/> set to <c>"kestrel"</c>. Each pool is named
/// after its owner, reports to the configured monitor, and is disposed with the host (this factory is a DI
/// singleton). Thread-safe.
/// </para>
/// <para>
/// Pools created here default to <see cref="BufferBacking.PinnedArray"/>. Kestrel's socket transport sends
/// multi-segment responses through <c>SocketAsyncEventArgs.BufferList</c>, which accepts only array-backed
/// memory. Native buffers work until the first response spans two blocks, and then the send fails with
/// "Buffer backed by array was expected". Tracking, statistics, leak detection and trimming are unchanged.
/// </para>
/// </remarks>
public sealed class DirectBufferPoolFactory : IMemoryPoolFactory<byte>, IDisposable
{
    private readonly Action<DirectBufferPoolOptions>? _configure;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly Lock _lock = new();
    private readonly List<DirectBufferPool> _pools = [];
    private readonly Lazy<IBufferMonitor> _monitor;
    private bool _disposed;

    /// <summary>Initializes a new factory.</summary>
    /// <param name="configure">Applied to the options of every pool created, after the name, logger and meter factory are set.</param>
    /// <param name="loggerFactory">The host's logger factory.</param>
    /// <param name="meterFactory">The host's meter factory, or null for the static <c>OffHeapTracker</c> meter.</param>
    /// <exception cref="ArgumentNullException"><paramref name="loggerFactory"/> is null.</exception>
    public DirectBufferPoolFactory(Action<DirectBufferPoolOptions>? configure, ILoggerFactory loggerFactory, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _configure = configure;
        _loggerFactory = loggerFactory;
        _meterFactory = meterFactory;

        // Resolved once: a configure callback that creates a monitor must not hand the endpoints a new one per call.
        _monitor = new Lazy<IBufferMonitor>(() =>
        {
            DirectBufferPoolOptions options = NewOptions("aspnetcore");
            return options.Monitor ?? BufferMonitor.Shared;
        });
    }

    /// <summary>Gets the pools created so far and not disposed, Kestrel's among them.</summary>
    public IReadOnlyList<DirectBufferPool> Pools
    {
        get
        {
            DirectBufferPool[] pools;
            lock (_lock)
            {
                pools = [.. _pools];
            }

            return [.. pools.Where(static pool => !pool.GetStatistics().IsDisposed)];
        }
    }

    /// <summary>Gets the monitor the pools report to: the one set through the options, or <see cref="BufferMonitor.Shared"/>.</summary>
    /// <remarks>Resolved from the options once; every pool this factory creates reports to it.</remarks>
    public IBufferMonitor Monitor => _monitor.Value;

    /// <summary>Creates a pool named after <see cref="MemoryPoolOptions.Owner"/> (<c>"aspnetcore"</c> when there is none).</summary>
    /// <param name="options">The caller's options; Kestrel's transport passes <c>Owner = "kestrel"</c>. Null for defaults.</param>
    /// <returns>A new <see cref="DirectBufferPool"/>, disposed with this factory.</returns>
    /// <exception cref="ObjectDisposedException">The factory has been disposed.</exception>
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        DirectBufferPoolOptions poolOptions = NewOptions(string.IsNullOrWhiteSpace(options?.Owner) ? "aspnetcore" : options.Owner);
        poolOptions.Monitor = Monitor;
        var pool = new DirectBufferPool(poolOptions);
        lock (_lock)
        {
            if (_disposed)
            {
                pool.Dispose();
                throw new ObjectDisposedException(nameof(DirectBufferPoolFactory));
            }

            // A pool its owner disposed is dropped here, so an owner that creates and disposes pools in turn
            // does not grow the list; the factory's Dispose would only dispose it again, which does nothing.
            _pools.RemoveAll(static created => created.GetStatistics().IsDisposed);
            _pools.Add(pool);
        }

        return pool;
    }

    private DirectBufferPoolOptions NewOptions(string name)
    {
        var options = new DirectBufferPoolOptions
        {
            Name = name,
            LoggerFactory = _loggerFactory,
            MeterFactory = _meterFactory,
            Backing = BufferBacking.PinnedArray,
        };
        _configure?.Invoke(options);
        return options;
    }

    /// <summary>Disposes every pool created (see <see cref="DirectBufferPool"/> for leases still out then).</summary>
    public void Dispose()
    {
        DirectBufferPool[] pools;
        lock (_lock)
        {
            _disposed = true;
            pools = [.. _pools];
            _pools.Clear();
        }

        foreach (DirectBufferPool pool in pools)
        {
            pool.Dispose();
        }
    }
}
