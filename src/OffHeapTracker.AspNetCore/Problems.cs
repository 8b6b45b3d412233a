using Microsoft.AspNetCore.Http;

namespace OffHeapTracker.AspNetCore;

/// <summary>The endpoints' error responses: RFC 9457 problem details (<c>application/problem+json</c>) with the parameter at fault.</summary>
internal static class Problems
{
    /// <summary>A problem whose <c>detail</c> says what was wrong and what is allowed, and whose <c>parameter</c> names the query parameter or header at fault.</summary>
    public static IResult For(int status, string title, string parameter, string detail) =>
        Results.Problem(
            detail: detail,
            statusCode: status,
            title: title,
            extensions: new Dictionary<string, object?>(1, StringComparer.Ordinal) { ["parameter"] = parameter });
}
