using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace OffHeapTracker.Testing;

/// <summary>Wraps any <see cref="MemoryPool{T}"/> of bytes for a test, and fails it when a buffer is left out, dropped without <c>Dispose</c>, or disposed twice.</summary>
/// <remarks>
/// <para>
/// For code under test that takes a <see cref="MemoryPool{T}"/> (a pipe, a Kestrel transport, your own
/// connection code) when the pool is not one of ours: <see cref="BufferTestScope"/> does the same for
/// <see cref="DirectBufferPool"/>s, with the monitor's records. Each rent is wrapped in an owner that remembers the
/// renting stack. <see cref="Verify"/> (and <see cref="MemoryPool{T}.Dispose()"/>) forces the finalizers that find
/// dropped owners and throws one <see cref="BufferLeakException"/> listing every owner still out, dropped or
/// disposed twice, each with its stacks. An owner's <see cref="IMemoryOwner{T}.Memory"/> throws
/// <see cref="ObjectDisposedException"/> once it is disposed.
/// </para>
/// <para>
/// A dropped owner's buffer is not given back to the wrapped pool: code may still hold a span of it, and the test
/// is failing anyway. Thread-safe; meant for tests (every rent captures a stack, a few microseconds).
/// </para>
/// </remarks>
public sealed class CheckedMemoryPool : MemoryPool<byte>
{
    private readonly MemoryPool<byte> _inner;
    private readonly bool _ownsInner;
    private readonly ConcurrentDictionary<long, string> _outstanding = new();
    private readonly ConcurrentQueue<string> _problems = new();
    private long _nextId;
    private bool _disposed;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The pool the buffers come from.</param>
    /// <param name="ownsInner">True to dispose <paramref name="inner"/> with this pool.</param>
    /// <exception cref="ArgumentNullException"><paramref name="inner"/> is null.</exception>
    public CheckedMemoryPool(MemoryPool<byte> inner, bool ownsInner = false)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _ownsInner = ownsInner;
    }

    /// <inheritdoc/>
    public override int MaxBufferSize => _inner.MaxBufferSize;

    /// <summary>Gets the number of owners rented and not yet disposed (dropped ones count until a collection finds them).</summary>
    public int OutstandingCount => _outstanding.Count;

    /// <summary>Rents from the wrapped pool, remembering where.</summary>
    /// <param name="minBufferSize">As for the wrapped pool.</param>
    /// <returns>An owner the test's code must dispose exactly once.</returns>
    /// <exception cref="ObjectDisposedException">This pool was disposed.</exception>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        IMemoryOwner<byte> rented = _inner.Rent(minBufferSize);
        long id = Interlocked.Increment(ref _nextId);
        string stack = new StackTrace(1, fNeedFileInfo: false).ToString();
        _outstanding[id] = stack;
        return new Owner(this, rented, id, stack);
    }

    /// <summary>Forces finalizers, then throws if any owner is still out, was dropped without <c>Dispose</c>, or was disposed twice.</summary>
    /// <exception cref="BufferLeakException">Something was found; the message lists each with its stacks.</exception>
    public void Verify()
    {
        BufferTestScope.ForceFinalizers();
        var text = new StringBuilder();
        foreach (string problem in _problems)
        {
            text.Append(problem).Append('\n');
        }

        foreach (KeyValuePair<long, string> owner in _outstanding.OrderBy(o => o.Key))
        {
            text.Append("Buffer ").Append(owner.Key).Append(" is still out, rented at:\n").Append(owner.Value).Append('\n');
        }

        if (text.Length > 0)
        {
            throw new BufferLeakException(text.ToString().TrimEnd('\n'));
        }
    }

    /// <summary>Runs <see cref="Verify"/>, then disposes the wrapped pool if this pool owns it, whether or not the checks passed.</summary>
    /// <param name="disposing">True from <see cref="MemoryPool{T}.Dispose()"/>.</param>
    /// <exception cref="BufferLeakException">The checks found something.</exception>
    protected override void Dispose(bool disposing)
    {
        if (!disposing || Volatile.Read(ref _disposed))
        {
            return;
        }

        Volatile.Write(ref _disposed, true);
        try
        {
            Verify();
        }
        finally
        {
            if (_ownsInner)
            {
                _inner.Dispose();
            }
        }
    }

    private void OnDisposed(Owner owner) => _outstanding.TryRemove(owner.Id, out _);

    private void OnDisposedAgain(Owner owner) =>
        _problems.Enqueue($"Buffer {owner.Id} was disposed twice; rented at:\n{owner.RentStack}\nsecond dispose at:\n{new StackTrace(2, fNeedFileInfo: false)}");

    private void OnDropped(Owner owner)
    {
        // Runs on the finalizer thread: only queues, never throws.
        if (_outstanding.TryRemove(owner.Id, out _))
        {
            _problems.Enqueue($"Buffer {owner.Id} was garbage-collected without Dispose; rented at:\n{owner.RentStack}");
        }
    }

    private sealed class Owner(CheckedMemoryPool pool, IMemoryOwner<byte> inner, long id, string rentStack) : IMemoryOwner<byte>
    {
        private int _disposed;

        public long Id => id;

        public string RentStack => rentStack;

        public Memory<byte> Memory
        {
            get
            {
                ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
                return inner.Memory;
            }
        }

        public void Dispose()
        {
            // One transition wins: a racing or repeated Dispose never gives the buffer back twice.
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                pool.OnDisposedAgain(this);
                return;
            }

            GC.SuppressFinalize(this);
            pool.OnDisposed(this);
            inner.Dispose();
        }

        ~Owner()
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                pool.OnDropped(this);
            }
        }
    }
}
