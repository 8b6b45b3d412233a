using System.Globalization;
using System.Text;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Testing;

/// <summary>A test's own pools and monitor: every rent is recorded with its stack, and the checks fail with a <see cref="BufferLeakException"/> listing each buffer the code under test left outstanding, dropped without <c>Dispose</c>, or disposed twice.</summary>
/// <remarks>
/// <para>
/// Nothing is shared with the process: the monitor is the scope's own (not <see cref="BufferMonitor.Shared"/>),
/// records POOL and NORMAL buffers with <see cref="StackPolicy.Every"/> and dispose stacks, and the pools report to it
/// only, so tests running in parallel do not see each other's buffers.
/// </para>
/// <para>
/// The checks build on the pool's own: <see cref="AssertNoOutstanding"/> on <see cref="DirectBufferPool.AssertNoOutstanding"/>,
/// <see cref="AssertAllReturnedAsync"/> on <see cref="DirectBufferPool.WhenAllReturnedAsync"/>. <see cref="AssertNoLeaks"/>
/// first forces a full collection and waits for finalizers, so a lease dropped without <c>Dispose</c> is found now,
/// deterministically, rather than whenever the GC next runs. A lease still referenced (by a local of the test method in
/// a Debug build, say) is not garbage and is reported as outstanding instead.
/// </para>
/// <para>
/// <see cref="Dispose"/> runs every check and then disposes the pools, so a <c>using</c> is enough and a forgotten
/// check cannot pass silently (Kestrel's test-only diagnostic pool does the same). The price: when the test body
/// throws first, its buffers are usually still out, and the exception from <c>Dispose</c> replaces the body's (C# keeps
/// the last exception of a <c>finally</c>). The listed stacks still name the test; the assertion's own message is
/// lost, which is the known trade-off of failing on dispose.
/// </para>
/// </remarks>
public sealed class BufferTestScope : IDisposable
{
    private readonly List<DirectBufferPool> _pools = [];
    private readonly List<BufferLeak> _leaks = [];
    private readonly DoubleDisposeLog _log = new();
    private bool _disposed;

    /// <summary>Creates the scope's monitor, switched on, and its first pool.</summary>
    /// <param name="poolName">The name of <see cref="Pool"/>.</param>
    /// <param name="configure">Changes to <see cref="Pool"/>'s options (capacity, sizes, backing); leave <see cref="DirectBufferPoolOptions.Monitor"/> alone, or the scope cannot list its buffers.</param>
    public BufferTestScope(string poolName = "test", Action<DirectBufferPoolOptions>? configure = null)
    {
        Monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions
        {
            Stacks = StackPolicy.Every,
            RecordPool = true,
            CaptureDisposeStacks = true,
            LoggerFactory = _log,
        });
        Monitor.LeakDetected += OnLeakDetected;
        Monitor.Enable();
        Pool = CreatePool(poolName, configure);
    }

    /// <summary>Gets the scope's monitor: switched on, recording every buffer of the scope's pools with its stack.</summary>
    public ResidentBufferMonitor Monitor { get; }

    /// <summary>Gets the scope's first pool; give it to the code under test.</summary>
    public DirectBufferPool Pool { get; }

    /// <summary>Gets every lease of the scope's pools found garbage-collected without <c>Dispose</c> so far.</summary>
    public IReadOnlyList<BufferLeak> Leaks
    {
        get
        {
            lock (_leaks)
            {
                return [.. _leaks];
            }
        }
    }

    /// <summary>Forces a full, blocking collection and runs pending finalizers, twice, so leases that are no longer referenced are found leaked now.</summary>
    /// <remarks>Twice, because a finalizer can make more objects unreachable (a lease holding another's owner).</remarks>
    public static void ForceFinalizers()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }
    }

    /// <summary>Creates another pool reporting to the scope's monitor, checked and disposed with the scope.</summary>
    /// <param name="name">The pool's name.</param>
    /// <param name="configure">Changes to its options; leave <see cref="DirectBufferPoolOptions.Monitor"/> alone.</param>
    /// <returns>The pool.</returns>
    /// <exception cref="ObjectDisposedException">The scope was disposed.</exception>
    public DirectBufferPool CreatePool(string name, Action<DirectBufferPoolOptions>? configure = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var options = new DirectBufferPoolOptions { Name = name, Monitor = Monitor, LoggerFactory = _log };
        configure?.Invoke(options);
        var pool = new DirectBufferPool(options);
        lock (_pools)
        {
            _pools.Add(pool);
        }

        return pool;
    }

    /// <summary>Throws if any of the scope's pools has a lease out now, listing each with its stack.</summary>
    /// <exception cref="BufferLeakException">Leases are outstanding.</exception>
    public void AssertNoOutstanding()
    {
        string? outstanding = DescribeOutstanding();
        if (outstanding is not null)
        {
            throw new BufferLeakException(outstanding);
        }
    }

    /// <summary>Waits until every lease of the scope's pools is back, for code that returns buffers on other threads (a pipe's reader, a connection closing).</summary>
    /// <param name="timeout">How long to wait for each pool.</param>
    /// <returns>A task that completes when every pool's leases are back.</returns>
    /// <exception cref="BufferLeakException">The timeout passed with leases still out; the message lists them with their stacks.</exception>
    public async Task AssertAllReturnedAsync(TimeSpan timeout)
    {
        foreach (DirectBufferPool pool in Pools())
        {
            try
            {
                await pool.WhenAllReturnedAsync(timeout).ConfigureAwait(false);
            }
            catch (TimeoutException ex)
            {
                throw new BufferLeakException(ex.Message, ex);
            }
        }
    }

    /// <summary>Forces finalizers (<see cref="ForceFinalizers"/>) and throws if any lease was dropped without <c>Dispose</c> or disposed twice, listing each with its stacks.</summary>
    /// <exception cref="BufferLeakException">A lease leaked or was disposed twice.</exception>
    public void AssertNoLeaks()
    {
        ForceFinalizers();
        string? leaks = DescribeLeaks();
        if (leaks is not null)
        {
            throw new BufferLeakException(leaks);
        }
    }

    /// <summary>Runs every check at once: forces finalizers, then fails if any lease leaked, was disposed twice, or is still outstanding.</summary>
    /// <exception cref="BufferLeakException">Something was found; the message has a section for each kind.</exception>
    public void Verify()
    {
        ForceFinalizers();
        string[] found = [.. new[] { DescribeLeaks(), DescribeOutstanding() }.OfType<string>()];
        if (found.Length > 0)
        {
            throw new BufferLeakException(string.Join("\n\n", found));
        }
    }

    /// <summary>Runs <see cref="Verify"/>, then disposes the scope's pools and switches its monitor off, whether or not the checks passed.</summary>
    /// <exception cref="BufferLeakException">The checks found something.</exception>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        try
        {
            Verify();
        }
        finally
        {
            _disposed = true;
            foreach (DirectBufferPool pool in Pools())
            {
                pool.Dispose();
            }

            Monitor.LeakDetected -= OnLeakDetected;
            Monitor.Disable();
        }
    }

    private DirectBufferPool[] Pools()
    {
        lock (_pools)
        {
            return [.. _pools];
        }
    }

    private void OnLeakDetected(object? sender, BufferLeak leak)
    {
        lock (_leaks)
        {
            _leaks.Add(leak);
        }
    }

    private string? DescribeOutstanding()
    {
        var text = new StringBuilder();
        foreach (DirectBufferPool pool in Pools())
        {
            try
            {
                pool.AssertNoOutstanding();
            }
            catch (InvalidOperationException ex)
            {
                text.Append(text.Length == 0 ? "Outstanding:\n" : "\n").Append(ex.Message);
            }
        }

        return text.Length == 0 ? null : text.ToString();
    }

    private string? DescribeLeaks()
    {
        var text = new StringBuilder();
        IReadOnlyList<BufferLeak> leaks = Leaks;
        if (leaks.Count > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{leaks.Count} {(leaks.Count == 1 ? "lease was" : "leases were")} garbage-collected without Dispose:");
            foreach (BufferLeak leak in leaks)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n- buffer {leak.Id} of pool '{leak.PoolName}': {leak.ActualSize} bytes, {leak.BufferType}, context {(leak.Context is null ? "none" : $"'{leak.Context}'")}");
                foreach (string frame in (leak.StackTrace ?? "(no stack recorded)").Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    text.Append("\n    at ").Append(frame);
                }
            }
        }

        long doubleDisposes = Pools().Sum(p => p.GetStatistics().DoubleDisposeCount);
        if (doubleDisposes > 0)
        {
            text.Append(text.Length == 0 ? string.Empty : "\n\n")
                .Append(CultureInfo.InvariantCulture, $"{doubleDisposes} {(doubleDisposes == 1 ? "lease was" : "leases were")} disposed again after being returned:");
            foreach (string message in _log.Messages)
            {
                text.Append("\n- ").Append(message.Replace("\n", "\n    ", StringComparison.Ordinal));
            }
        }

        return text.Length == 0 ? null : text.ToString();
    }
}
