using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;
using OffHeapTracker.Monitoring;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the buffer monitor's diagnostics endpoints and dashboard. Nothing is exposed unless you call this.</summary>
public static partial class BufferMonitorEndpointRouteBuilderExtensions
{
    /// <summary>The request header that <c>POST {prefix}/enable</c> and <c>/disable</c> require, with the value <c>1</c>.</summary>
    /// <remarks>A cross-site form or link cannot set a custom header, so a page elsewhere cannot switch the monitor.</remarks>
    public const string ActionHeader = "X-OffHeapTracker-Action";

    private static readonly Lazy<Dashboard> s_dashboard = new(Dashboard.Load);

    /// <summary>Maps <c>GET {prefix}/</c> (the dashboard), <c>/resident</c>, <c>/sites</c>, <c>/stats</c>, and <c>POST /enable</c> and <c>/disable</c>.</summary>
    /// <param name="endpoints">The application's routes.</param>
    /// <param name="prefix">Where to map them.</param>
    /// <returns>The group, so you can chain <c>.RequireAuthorization()</c> or <c>.RequireHost(...)</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="endpoints"/> or <paramref name="prefix"/> is null.</exception>
    /// <remarks>
    /// The endpoints report on the monitor the registered <see cref="DirectBufferPoolFactory"/> uses (by default
    /// <see cref="BufferMonitor.Shared"/>) and on every pool alive in the process. Every response carries
    /// <c>Cache-Control: no-store</c> and <c>X-Content-Type-Options: nosniff</c>.
    /// </remarks>
    public static RouteGroupBuilder MapBufferMonitor(this IEndpointRouteBuilder endpoints, string prefix = "/debug/buffers")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        RouteGroupBuilder group = endpoints.MapGroup(prefix);
        group.AddEndpointFilter(static async (context, next) =>
        {
            context.HttpContext.Response.Headers.CacheControl = "no-store";
            context.HttpContext.Response.Headers.XContentTypeOptions = "nosniff";
            return await next(context).ConfigureAwait(false);
        });

        group.MapGet("/", static (HttpContext context) =>
        {
            Dashboard dashboard = s_dashboard.Value;
            context.Response.Headers.ContentSecurityPolicy = dashboard.ContentSecurityPolicy;
            return Results.Content(dashboard.Html, "text/html; charset=utf-8");
        });
        group.MapGet("/resident", static (HttpContext context) => Resident(context));
        group.MapGet("/sites", static (HttpContext context) => Sites(context));
        group.MapGet("/stats", static (HttpContext context) => Stats(context));
        group.MapPost("/enable", static (HttpContext context) => Switch(context, enable: true));
        group.MapPost("/disable", static (HttpContext context) => Switch(context, enable: false));
        group.MapMethods("/enable", ["GET", "HEAD", "PUT", "PATCH", "DELETE"], static () => MethodNotAllowed());
        group.MapMethods("/disable", ["GET", "HEAD", "PUT", "PATCH", "DELETE"], static () => MethodNotAllowed());
        return group;
    }

    private static IResult Resident(HttpContext context)
    {
        if (!TryReportQuery(context.Request.Query, "limit", 100, 100_000, ["json", "text"], out ReportQuery query, out IResult? error))
        {
            return error!;
        }

        IReadOnlyList<ResidentBuffer> rows = Monitor(context).GetResident(query.MinAge, query.Type);
        if (rows.Count > query.Count)
        {
            rows = rows.Take(query.Count).ToArray();
        }

        return query.Format == "text"
            ? Results.Text(BufferReportFormatter.FormatVertical(rows), "text/plain; charset=utf-8")
            : Json(BufferReportFormatter.ToJson(rows));
    }

    private static IResult Sites(HttpContext context)
    {
        if (!TryReportQuery(context.Request.Query, "top", 20, 10_000, ["json", "collapsed"], out ReportQuery query, out IResult? error))
        {
            return error!;
        }

        IReadOnlyList<LeakSite> sites = Monitor(context).GetLeakSites(query.MinAge, query.Type, query.Count);
        return query.Format == "collapsed"
            ? Results.Text(BufferReportFormatter.FormatCollapsed(sites), "text/plain; charset=utf-8")
            : Json(BufferReportFormatter.ToJson(sites));
    }

    /// <summary>Reads the query both report endpoints share: <c>minAge</c>, <c>type</c>, a count and <c>format</c>.</summary>
    private static bool TryReportQuery(IQueryCollection query, string countName, int countFallback, int countMax, string[] formats, out ReportQuery result, out IResult? error)
    {
        result = default;
        if (!TryMinAge(query, out TimeSpan minAge, out error)
            || !TryType(query, out BufferType? type, out error)
            || !TryInt(query, countName, countFallback, 1, countMax, out int count, out error)
            || !TryFormat(query, formats, out string format, out error))
        {
            return false;
        }

        result = new ReportQuery(minAge, type, count, format);
        return true;
    }

    private static IResult Stats(HttpContext context)
    {
        ResidentBufferMonitor monitor = Monitor(context);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("monitor");
            json.WriteBoolean("enabled", monitor.IsEnabled);
            json.WriteBoolean("record_pool", monitor.RecordPool);
            json.WriteNumber("resident", monitor.Count);
            json.WriteNumber("dropped", monitor.DroppedRecords);
            json.WriteNumber("stack_trace_depth", monitor.StackTraceDepth);
            json.WriteNumber("stack_trace_sampling", monitor.StackTraceSampling);
            json.WriteEndObject();
            json.WriteStartArray("pools");
            foreach (DirectBufferPool pool in PoolRegistry.Live())
            {
                json.WriteRawValue(BufferReportFormatter.ToJson(pool.GetStatistics()));
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Json(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static IResult Switch(HttpContext context, bool enable)
    {
        if (context.Request.Headers[ActionHeader] != "1")
        {
            return Error(
                StatusCodes.Status400BadRequest,
                ActionHeader,
                $"POST {context.Request.Path} needs the request header '{ActionHeader}: 1'. The header guards the switch from cross-site forms and links.");
        }

        ResidentBufferMonitor monitor = Monitor(context);
        if (enable)
        {
            monitor.Enable();
        }
        else
        {
            monitor.Disable();
        }

        return Json($$"""{"enabled":{{(monitor.IsEnabled ? "true" : "false")}}}""");
    }

    private static IResult MethodNotAllowed() =>
        Error(StatusCodes.Status405MethodNotAllowed, "method", "Use POST with the request header 'X-OffHeapTracker-Action: 1'.");

    private static ResidentBufferMonitor Monitor(HttpContext context) =>
        context.RequestServices.GetService<DirectBufferPoolFactory>()?.Monitor as ResidentBufferMonitor ?? BufferMonitor.Shared;

    private static bool TryMinAge(IQueryCollection query, out TimeSpan minAge, out IResult? error)
    {
        minAge = ResidentBufferMonitor.DefaultMinAge;
        error = null;
        string? text = query["minAge"];
        if (text is null)
        {
            return true;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) || !(seconds >= 0 && seconds <= 31_536_000))
        {
            error = Error(StatusCodes.Status400BadRequest, "minAge", "minAge must be a number of seconds from 0 to 31536000.");
            return false;
        }

        minAge = TimeSpan.FromSeconds(seconds);
        return true;
    }

    private static bool TryType(IQueryCollection query, out BufferType? type, out IResult? error)
    {
        error = null;
        type = null;
        switch (((string?)query["type"])?.ToUpperInvariant())
        {
            case null or "" or "ALL":
                return true;
            case "NORMAL":
                type = BufferType.Normal;
                return true;
            case "POOL":
                type = BufferType.Pool;
                return true;
            default:
                error = Error(StatusCodes.Status400BadRequest, "type", "type must be normal, pool or all.");
                return false;
        }
    }

    private static bool TryInt(IQueryCollection query, string name, int fallback, int min, int max, out int value, out IResult? error)
    {
        error = null;
        value = fallback;
        string? text = query[name];
        if (text is null)
        {
            return true;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) || value < min || value > max)
        {
            error = Error(StatusCodes.Status400BadRequest, name, $"{name} must be a whole number from {min} to {max}.");
            return false;
        }

        return true;
    }

    private static bool TryFormat(IQueryCollection query, string[] allowed, out string format, out IResult? error)
    {
        error = null;
        format = ((string?)query["format"])?.ToLowerInvariant() ?? allowed[0];
        if (Array.IndexOf(allowed, format) < 0)
        {
            error = Error(StatusCodes.Status400BadRequest, "format", $"format must be {string.Join(" or ", allowed)}.");
            return false;
        }

        return true;
    }

    private static IResult Json(string json) => Results.Content(json, "application/json; charset=utf-8");

    private static IResult Error(int status, string parameter, string message)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("error", message);
            json.WriteString("parameter", parameter);
            json.WriteEndObject();
        }

        return Results.Content(Encoding.UTF8.GetString(buffer.ToArray()), "application/json; charset=utf-8", Encoding.UTF8, status);
    }

    private readonly record struct ReportQuery(TimeSpan MinAge, BufferType? Type, int Count, string Format);

    /// <summary>The dashboard page and a Content-Security-Policy that allows exactly its own inline script and style.</summary>
    private sealed partial record Dashboard(string Html, string ContentSecurityPolicy)
    {
        public static Dashboard Load()
        {
            using Stream stream = typeof(DirectBufferPoolFactory).Assembly.GetManifestResourceStream("OffHeapTracker.AspNetCore.dashboard.html")
                ?? throw new InvalidOperationException("The dashboard resource is missing from OffHeapTracker.AspNetCore.");
            using var reader = new StreamReader(stream, Encoding.UTF8);
            string html = reader.ReadToEnd();
            string script = Hash(ScriptBlock().Match(html).Groups[1].Value);
            string style = Hash(StyleBlock().Match(html).Groups[1].Value);

            // Defence in depth behind the page's textContent-only rendering: no other script can run.
            return new Dashboard(html, $"default-src 'none'; script-src '{script}'; style-src '{style}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
        }

        private static string Hash(string block) => "sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(block)));

        [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
        private static partial Regex ScriptBlock();

        [GeneratedRegex("<style>(.*?)</style>", RegexOptions.Singleline)]
        private static partial Regex StyleBlock();
    }
}
