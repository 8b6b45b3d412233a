using OffHeapTracker;

namespace QuickStart;

/// <summary>A client connection: its read buffer lives as long as it does, so it is rented as <see cref="BufferType.Pool"/>.</summary>
internal sealed class Connection : IDisposable
{
    private readonly DirectBuffer _readBuffer;

    public Connection(DirectBufferPool pool, string name)
    {
        Name = name;
        using (BufferMonitor.BeginContext(name))
        {
            _readBuffer = pool.Rent(4096, BufferType.Pool);
        }
    }

    public string Name { get; }

    public void Dispose() => _readBuffer.Dispose();
}
