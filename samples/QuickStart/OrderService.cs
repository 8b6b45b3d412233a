using System.Text;
using OffHeapTracker;

namespace QuickStart;

/// <summary>Serves requests with short-lived write buffers; one rarely taken path keeps its buffer by mistake.</summary>
internal sealed class OrderService(DirectBufferPool pool)
{
    // The bug: a "cache" of rendered exports that is never evicted, so its buffers never go back to the pool.
    private readonly List<DirectBuffer> _exportCache = [];

    public void Handle(int request)
    {
        // The common path: rent, use, return.
        using (DirectBuffer response = pool.Rent(2048))
        {
            Encoding.UTF8.GetBytes($"{{\"order\":{request},\"status\":\"shipped\"}}", response.GetSpan());
        }

        if (request % 10 == 0)
        {
            RenderExport(request);
        }
    }

    public void ReleaseCache()
    {
        _exportCache.ForEach(buffer => buffer.Dispose());
        _exportCache.Clear();
    }

    private void RenderExport(int request)
    {
        DirectBuffer export = pool.Rent(16 * 1024);
        Encoding.UTF8.GetBytes($"export of order {request}", export.GetSpan());
        _exportCache.Add(export);
    }
}
