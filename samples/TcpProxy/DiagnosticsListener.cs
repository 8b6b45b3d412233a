using System.Net;
using System.Text;
using OffHeapTracker;
using OffHeapTracker.Monitoring;

namespace TcpProxy;

/// <summary>
/// <c>--diagnostics host:port</c>: serves <c>GET /debug/buffers/resident</c> and <c>GET /debug/buffers/stats</c>
/// as JSON with the library's names, until the ASP.NET Core package provides the full endpoints.
/// </summary>
/// <remarks>Bind it to loopback: it has no authentication.</remarks>
internal sealed class DiagnosticsListener : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly DirectBufferPool _pool;
    private readonly Task _loop;

    public DiagnosticsListener(IPEndPoint endPoint, DirectBufferPool pool)
    {
        _pool = pool;
        _listener.Prefixes.Add($"http://{endPoint}/debug/buffers/");
        _listener.Start();
        _loop = ServeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (HttpListenerException)
        {
        }

        _listener.Close();
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            string path = context.Request.Url?.AbsolutePath.TrimEnd('/') ?? string.Empty;
            (int status, string body) = (context.Request.HttpMethod, path) switch
            {
                ("GET", "/debug/buffers/resident") => (200, BufferReportFormatter.ToJson(BufferMonitor.GetResident())),
                ("GET", "/debug/buffers/stats") => (200, BufferReportFormatter.ToJson(_pool.GetStatistics())),
                (_, "/debug/buffers/resident" or "/debug/buffers/stats") => (405, "{\"error\":\"only GET is allowed\"}"),
                _ => (404, "{\"error\":\"not found; try /debug/buffers/resident or /debug/buffers/stats\"}"),
            };

            byte[] bytes = Encoding.UTF8.GetBytes(body);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json; charset=utf-8";
            context.Response.Headers["Cache-Control"] = "no-store";
            context.Response.Headers["X-Content-Type-Options"] = "nosniff";
            await context.Response.OutputStream.WriteAsync(bytes).ConfigureAwait(false);
            context.Response.Close();
        }
    }
}
