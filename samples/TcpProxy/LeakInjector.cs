using System.Runtime.CompilerServices;
using OffHeapTracker;

namespace TcpProxy;

/// <summary><c>--leak-every N</c>: keeps a copy of every Nth message in a buffer that is never returned, to show the monitor finding it.</summary>
internal sealed class LeakInjector(DirectBufferPool pool, int every)
{
    private readonly Lock _lock = new();
    private readonly List<DirectBuffer> _kept = [];
    private long _messages;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _kept.Count;
            }
        }
    }

    public void OnMessage(ReadOnlySpan<byte> message)
    {
        if (Interlocked.Increment(ref _messages) % every == 0)
        {
            KeepForAudit(message);
        }
    }

    /// <summary>The deliberate leak: an "audit copy" that nothing ever releases (until shutdown).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void KeepForAudit(ReadOnlySpan<byte> message)
    {
        DirectBuffer copy = pool.Rent(message.Length);
        message.CopyTo(copy.GetSpan());
        lock (_lock)
        {
            _kept.Add(copy);
        }
    }

    public void Release()
    {
        lock (_lock)
        {
            _kept.ForEach(buffer => buffer.Dispose());
            _kept.Clear();
        }
    }
}
