using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace OffHeapTracker.AspNetCore.Tests;

public sealed class ProblemsTests
{
    [Fact]
    public async Task For_WritesProblemJson_WithTheStatusTitleDetail_AndTheParameterAtFault()
    {
        await using ServiceProvider services = new ServiceCollection().AddLogging().BuildServiceProvider();
        var context = new DefaultHttpContext { RequestServices = services };
        context.Response.Body = new MemoryStream();

        await Problems.For(StatusCodes.Status409Conflict, "A title", "limit", "limit must be a whole number from 1 to 5.").ExecuteAsync(context);

        Assert.Equal(StatusCodes.Status409Conflict, context.Response.StatusCode);
        Assert.Equal("application/problem+json", context.Response.ContentType);
        context.Response.Body.Position = 0;
        using JsonDocument body = await JsonDocument.ParseAsync(context.Response.Body);
        Assert.Equal(409, body.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("A title", body.RootElement.GetProperty("title").GetString());
        Assert.Equal("limit must be a whole number from 1 to 5.", body.RootElement.GetProperty("detail").GetString());
        Assert.Equal("limit", body.RootElement.GetProperty("parameter").GetString());
    }
}
