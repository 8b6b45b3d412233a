using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>Settings for a <see cref="DirectBufferPool"/>; read once, when the pool is created.</summary>
public sealed class DirectBufferPoolOptions
{
    /// <summary>The default <see cref="CapacityBytes"/>: 256 MiB.</summary>
    public const long DefaultCapacityBytes = 256L * 1024 * 1024;

    /// <summary>The default <see cref="MaxPooledBufferSize"/>: 1 MiB.</summary>
    public const int DefaultMaxPooledBufferSize = 1024 * 1024;

    private string _name = "default";
    private int _maxPooledBufferSize = DefaultMaxPooledBufferSize;
    private int _maxBufferSize = Array.MaxLength;
    private long _capacityBytes = DefaultCapacityBytes;
    private IBufferMonitor? _monitor;
    private ILoggerFactory _loggerFactory = NullLoggerFactory.Instance;
    private TimeProvider _timeProvider = TimeProvider.System;
    private TimeSpan _trimAfter = TimeSpan.FromSeconds(10);
    private BufferBacking _backing;

    /// <summary>Gets or sets the pool's name, shown in statistics, logs and every resident record.</summary>
    /// <value>The default is <c>"default"</c>.</value>
    /// <exception cref="ArgumentException">The value is null, empty or white space.</exception>
    public string Name
    {
        get => _name;
        set
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(value, nameof(Name));
            _name = value;
        }
    }

    /// <summary>Gets or sets the largest buffer the pool keeps in its slabs; larger requests are served unpooled.</summary>
    /// <value>The default is 1 MiB (<see cref="DefaultMaxPooledBufferSize"/>).</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a power of two between 512 and 16 MiB.</exception>
    public int MaxPooledBufferSize
    {
        get => _maxPooledBufferSize;
        set
        {
            if (value < SizeClasses.MinBlockSize || value > SizeClasses.MaxBlockSize || !int.IsPow2(value))
            {
                throw new ArgumentOutOfRangeException(
                    nameof(MaxPooledBufferSize),
                    value,
                    $"{nameof(MaxPooledBufferSize)} must be a power of two between {SizeClasses.MinBlockSize} and {SizeClasses.MaxBlockSize}.");
            }

            _maxPooledBufferSize = value;
        }
    }

    /// <summary>Gets or sets the largest request <see cref="DirectBufferPool.Rent(int, BufferType)"/> accepts; it is also the pool's <see cref="System.Buffers.MemoryPool{T}.MaxBufferSize"/>.</summary>
    /// <value>The default is <see cref="Array.MaxLength"/>, the largest managed array.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 512 or above <see cref="Array.MaxLength"/>.</exception>
    public int MaxBufferSize
    {
        get => _maxBufferSize;
        set
        {
            Guard.InRange(value, SizeClasses.MinBlockSize, Array.MaxLength, nameof(MaxBufferSize));
            _maxBufferSize = value;
        }
    }

    /// <summary>Gets or sets how many bytes of native slabs the pool may hold; once they are all in use, further requests are served unpooled.</summary>
    /// <value>The default is 256 MiB (<see cref="DefaultCapacityBytes"/>). Zero makes every buffer unpooled (tracked, but never reused).</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public long CapacityBytes
    {
        get => _capacityBytes;
        set
        {
            Guard.InRange(value, 0, long.MaxValue, nameof(CapacityBytes));
            _capacityBytes = value;
        }
    }

    /// <summary>Gets or sets where the pool's memory comes from.</summary>
    /// <value>The default is <see cref="BufferBacking.Native"/>. Use <see cref="BufferBacking.PinnedArray"/> for a consumer that needs array-backed memory, such as Kestrel's socket transport.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not defined.</exception>
    public BufferBacking Backing
    {
        get => _backing;
        set
        {
            if (value is not (BufferBacking.Native or BufferBacking.PinnedArray))
            {
                throw new ArgumentOutOfRangeException(nameof(Backing), value, "Backing must be BufferBacking.Native or BufferBacking.PinnedArray.");
            }

            _backing = value;
        }
    }

    /// <summary>Gets or sets the monitor told of every allocation and free while it is enabled.</summary>
    /// <value>The default is null, meaning the process-wide <see cref="BufferMonitor.Shared"/>.</value>
    public IBufferMonitor? Monitor
    {
        get => _monitor;
        set => _monitor = value;
    }

    /// <summary>Gets or sets the factory for the pool's logger.</summary>
    /// <value>The default is <see cref="NullLoggerFactory.Instance"/>.</value>
    /// <exception cref="ArgumentNullException">The value is null.</exception>
    public ILoggerFactory LoggerFactory
    {
        get => _loggerFactory;
        set
        {
            ArgumentNullException.ThrowIfNull(value, nameof(LoggerFactory));
            _loggerFactory = value;
        }
    }

    /// <summary>Gets or sets the factory the pool's <c>OffHeapTracker</c> meter is created from (the host's, under dependency injection).</summary>
    /// <value>The default is null: the instruments live on a static meter named <c>OffHeapTracker</c>.</value>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>Gets or sets how long a slab must stay wholly free before it is given back to the operating system.</summary>
    /// <value>The default is 10 seconds, as Kestrel's pool since .NET 10. <see cref="Timeout.InfiniteTimeSpan"/> never trims.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 100 ms and not infinite.</exception>
    public TimeSpan TrimAfter
    {
        get => _trimAfter;
        set
        {
            if (value != Timeout.InfiniteTimeSpan)
            {
                Guard.InRange(value, TimeSpan.FromMilliseconds(100), TimeSpan.MaxValue, nameof(TrimAfter));
            }

            _trimAfter = value;
        }
    }

    /// <summary>Gets or sets the pool's clock: it schedules trim passes (<see cref="TrimAfter"/>), spaces out repeated warnings, and times <see cref="DirectBufferPool.WhenAllReturnedAsync"/>.</summary>
    /// <remarks>
    /// Lease ages and rent times in the monitor's records come from the monitor's clock (<see cref="IBufferMonitor.TimeProvider"/>).
    /// The pool's age census (<see cref="DirectBufferPool.TakeCensus"/>) reads this clock: with <see cref="TimeProvider.System"/>
    /// through a coarse clock that costs nothing per rent, otherwise by calling this provider on every rent (for tests).
    /// </remarks>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    /// <exception cref="ArgumentNullException">The value is null.</exception>
    public TimeProvider TimeProvider
    {
        get => _timeProvider;
        set
        {
            ArgumentNullException.ThrowIfNull(value, nameof(TimeProvider));
            _timeProvider = value;
        }
    }

    /// <summary>Gets or sets a value indicating whether the block of a lease found undisposed by its finalizer goes back to the pool.</summary>
    /// <value>
    /// The default is false: the leak is reported and the block is kept out of circulation, counted in
    /// <see cref="DirectBufferPoolStatistics.LeakedBytes"/> and in use, for the life of the process.
    /// </value>
    /// <remarks>
    /// <b>The risk of true:</b> a <see cref="Span{T}"/> or pointer taken from a lease does not keep the lease alive.
    /// Code that keeps using such a span after dropping the lease (<c>Span&lt;byte&gt; s = pool.Rent(n).GetSpan();</c>
    /// with no <c>Dispose</c>, a common bug) would then read and write a block the pool has meanwhile handed to
    /// another renter: one request seeing or corrupting another's data. Turn it on only where every lease is
    /// known to be held for as long as its memory is used, and a slow leak must not grow memory.
    /// </remarks>
    public bool ReclaimLeakedBuffers { get; set; }

    /// <summary>Gets or sets the native allocator; tests replace it to inject failures.</summary>
    internal INativeAllocator Allocator { get; set; } = NativeAllocator.Instance;
}
