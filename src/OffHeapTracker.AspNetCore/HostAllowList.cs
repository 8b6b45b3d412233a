using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Http;

namespace OffHeapTracker.AspNetCore;

/// <summary>Decides from the <c>Host</c> header whether a request may reach the endpoints: loopback hosts, plus the ones listed.</summary>
/// <remarks>
/// DNS rebinding makes a browser send requests to 127.0.0.1 under a name the attacker controls, so the name, not
/// the address connected to, is what tells such a request apart. Loopback names and literals (<c>localhost</c>,
/// <c>127.0.0.0/8</c>, <c>[::1]</c>) cannot be rebound: a browser resolves them itself.
/// </remarks>
internal sealed class HostAllowList
{
    private static readonly SearchValues<char> s_notInAHost = SearchValues.Create("/\\@?# ");
    private static readonly SearchValues<char> s_ipv4Literal = SearchValues.Create("0123456789.");

    private readonly bool _any;
    private readonly HashSet<string> _anyPort = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _withPort = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Reads <see cref="BufferMonitorEndpointOptions.AllowedHosts"/>.</summary>
    /// <param name="allowed">The entries.</param>
    /// <param name="paramName">The parameter to name in an error: where the caller filled the list.</param>
    /// <exception cref="ArgumentException">An entry is not a host, a host and port, or <c>*</c>.</exception>
    public HostAllowList(IEnumerable<string> allowed, string paramName = "allowed")
    {
        foreach (string entry in allowed)
        {
            string trimmed = entry?.Trim() ?? string.Empty;
            if (trimmed == "*")
            {
                _any = true;
                continue;
            }

            // Characters that belong to a URL and not to a Host header are refused, so that 'http://name' or
            // 'name/path' fails here rather than never matching. An unbracketed entry may hold one colon, before a
            // port: IPv6 addresses must be bracketed, as they are in a Host header, or the port would be ambiguous.
            var host = new HostString(trimmed);
            if (trimmed.Length == 0 || trimmed.AsSpan().IndexOfAny(s_notInAHost) >= 0 || host.Host.Length == 0 || (!trimmed.StartsWith('[') && trimmed.AsSpan().Count(':') > 0 && (trimmed.AsSpan().Count(':') > 1 || host.Port is null)))
            {
                throw new ArgumentException(
                    $"AllowedHosts entry '{entry}' is not a host: write a host name or address, optionally with ':port' (such as 'ops.example.com' or '10.0.0.5:9090'), or '*' for any host.",
                    paramName);
            }

            (host.Port is null ? _anyPort : _withPort).Add(host.Port is null ? host.Host : host.Host + ":" + host.Port.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Gets a value indicating whether <c>*</c> was listed: every host is allowed.</summary>
    public bool AllowsAny => _any;

    /// <summary>Decides whether a request with this <c>Host</c> header may reach the endpoints: a loopback host, a listed one, or any when <c>*</c> is listed.</summary>
    public bool IsAllowed(HostString host)
    {
        if (_any)
        {
            return true;
        }

        if (!host.HasValue || host.Host.Length == 0)
        {
            return false;
        }

        string name = host.Host;
        return IsLoopback(name)
            || _anyPort.Contains(name)
            || (host.Port is int port && _withPort.Contains(name + ":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary><c>localhost</c>, or an IPv4 literal in 127.0.0.0/8, or the bracketed IPv6 literal <c>::1</c> (or an IPv4-mapped loopback).</summary>
    internal static bool IsLoopback(string name)
    {
        if (name.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        // Only literals: digits and dots, or brackets. A name such as 127.0.0.1.example.com is a name.
        bool ipv6 = name.Length > 2 && name[0] == '[' && name[^1] == ']';
        bool ipv4 = !ipv6 && name.AsSpan().IndexOfAnyExcept(s_ipv4Literal) < 0;
        if ((!ipv4 && !ipv6) || !IPAddress.TryParse(ipv6 ? name.AsSpan(1, name.Length - 2) : name.AsSpan(), out IPAddress? address))
        {
            return false;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return IPAddress.IsLoopback(address);
    }
}
