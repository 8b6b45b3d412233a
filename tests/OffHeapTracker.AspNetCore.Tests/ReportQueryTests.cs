using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

public sealed class ReportQueryTests
{
    // A count parameter of its own (not an endpoint's), so the cases test the parsing and not the endpoints' settings.
    private const string CountName = "rows";
    private const int CountFallback = 7;
    private const int CountMax = 1000;
    private static readonly string[] s_formats = ["json", "text"];

    public static TheoryData<string, double, BufferType?, int, string> ValidQueries => new()
    {
        { "?minAge=0", 0, null, CountFallback, "json" },
        { "?minAge=2.5", 2.5, null, CountFallback, "json" },
        { "?minAge=31536000", 31_536_000, null, CountFallback, "json" },
        { "?type=normal", ResidentBufferMonitor.DefaultMinAge.TotalSeconds, BufferType.Normal, CountFallback, "json" },
        { "?type=POOL", ResidentBufferMonitor.DefaultMinAge.TotalSeconds, BufferType.Pool, CountFallback, "json" },
        { "?type=All", ResidentBufferMonitor.DefaultMinAge.TotalSeconds, null, CountFallback, "json" },
        { "?type=", ResidentBufferMonitor.DefaultMinAge.TotalSeconds, null, CountFallback, "json" },
        { "?rows=1", ResidentBufferMonitor.DefaultMinAge.TotalSeconds, null, 1, "json" },
        { "?rows=1000", ResidentBufferMonitor.DefaultMinAge.TotalSeconds, null, CountMax, "json" },
        { "?format=TEXT", ResidentBufferMonitor.DefaultMinAge.TotalSeconds, null, CountFallback, "text" },
        { "?minAge=1&type=pool&rows=12&format=text", 1, BufferType.Pool, 12, "text" },
    };

    public static TheoryData<string, string, string> InvalidQueries => new()
    {
        { "?minAge=abc", "minAge", "minAge must be a number of seconds from 0 to 31536000." },
        { "?minAge=-1", "minAge", "minAge must be a number of seconds from 0 to 31536000." },
        { "?minAge=31536001", "minAge", "minAge must be a number of seconds from 0 to 31536000." },
        { "?minAge=NaN", "minAge", "minAge must be a number of seconds from 0 to 31536000." },
        { "?minAge=Infinity", "minAge", "minAge must be a number of seconds from 0 to 31536000." },
        { "?type=foo", "type", "type must be normal, pool or all." },
        { "?rows=0", "rows", "rows must be a whole number from 1 to 1000." },
        { "?rows=1001", "rows", "rows must be a whole number from 1 to 1000." },
        { "?rows=%2B5", "rows", "rows must be a whole number from 1 to 1000." },
        { "?rows=1.5", "rows", "rows must be a whole number from 1 to 1000." },
        { "?rows=abc", "rows", "rows must be a whole number from 1 to 1000." },
        { "?rows=1&rows=2", "rows", "rows must be a whole number from 1 to 1000." },
        { "?format=xml", "format", "format must be json or text." },
        { "?format=", "format", "format must be json or text." },
    };

    [Fact]
    public void AnEmptyQuery_ReadsAsTheDefaults()
    {
        Assert.True(Read(string.Empty, out ReportQuery query, out IResult? error));
        Assert.Null(error);
        Assert.Equal(ResidentBufferMonitor.DefaultMinAge, query.MinAge);
        Assert.Null(query.Type);
        Assert.Equal(CountFallback, query.Count);
        Assert.Equal("json", query.Format);
    }

    [Theory]
    [MemberData(nameof(ValidQueries))]
    public void ValidValues_AreRead_CaseInsensitively_WithinTheirRanges(string text, double minAgeSeconds, BufferType? type, int count, string format)
    {
        Assert.True(Read(text, out ReportQuery query, out IResult? error));
        Assert.Null(error);
        Assert.Equal(TimeSpan.FromSeconds(minAgeSeconds), query.MinAge);
        Assert.Equal(type, query.Type);
        Assert.Equal(count, query.Count);
        Assert.Equal(format, query.Format);
    }

    [Theory]
    [MemberData(nameof(InvalidQueries))]
    public void AnInvalidValue_Is400ProblemDetails_NamingTheParameterAndWhatItMayBe(string text, string parameter, string detail)
    {
        Assert.False(Read(text, out ReportQuery query, out IResult? error));
        Assert.Equal(default, query);
        ProblemHttpResult problem = Assert.IsType<ProblemHttpResult>(error);
        Assert.Equal(StatusCodes.Status400BadRequest, problem.StatusCode);
        Assert.Equal(detail, problem.ProblemDetails.Detail);
        Assert.Equal(parameter, problem.ProblemDetails.Extensions["parameter"]);
    }

    private static bool Read(string text, out ReportQuery query, out IResult? error) =>
        ReportQuery.TryRead(new QueryCollection(QueryHelpers.ParseQuery(text)), CountName, CountFallback, CountMax, s_formats, out query, out error);
}
