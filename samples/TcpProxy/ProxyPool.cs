namespace TcpProxy;

/// <summary><c>--pool</c>: where the proxy's pipe segments and read buffers come from.</summary>
internal enum ProxyPool
{
    /// <summary>A tracked <c>DirectBufferPool</c> named <c>tcpproxy</c>, the default.</summary>
    Direct,

    /// <summary><c>MemoryPool&lt;byte&gt;.Shared</c>: the untracked baseline; the proxy's code path is otherwise the same.</summary>
    Shared,
}
