using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>The embedded page and its Content-Security-Policy; <c>DashboardTests.Browser.cs</c> runs it in Chromium.</summary>
[Collection(KestrelHosts.Name)]
public sealed partial class DashboardTests
{
    [Fact]
    public void ContentSecurityPolicy_AllowsExactlyThePagesOwnScriptAndStyle()
    {
        Dashboard dashboard = Dashboard.Instance;
        string script = Assert.Single(Regex.Matches(dashboard.Html, "<script>(.*?)</script>", RegexOptions.Singleline)).Groups[1].Value;
        string style = Assert.Single(Regex.Matches(dashboard.Html, "<style>(.*?)</style>", RegexOptions.Singleline)).Groups[1].Value;

        string csp = dashboard.ContentSecurityPolicy;
        Assert.StartsWith("default-src 'none'; ", csp, StringComparison.Ordinal);
        Assert.Contains($"script-src 'sha256-{Sha256(script)}';", csp, StringComparison.Ordinal);
        Assert.Contains($"style-src 'sha256-{Sha256(style)}';", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-", csp, StringComparison.Ordinal);
    }

    [Fact]
    public void Html_LoadsNothingFromElsewhere_AndHasNothingThePolicyWouldBlock()
    {
        string html = Dashboard.Instance.Html;
        Assert.EndsWith("</html>\n", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", html, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);

        // The policy allows one hashed script and one hashed style, so the browser would block event-handler and style attributes.
        Assert.DoesNotMatch(@"<[^>]+\son[a-z]+\s*=", html);
        Assert.DoesNotMatch(@"<[^>]+\sstyle\s*=", html);
    }

    [Fact]
    public void Html_UsesNoSinkThatParsesMarkup()
    {
        string html = Dashboard.Instance.Html;
        Assert.Contains("textContent", html, StringComparison.Ordinal);
        foreach (string sink in new[] { "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(" })
        {
            Assert.DoesNotContain(sink, html, StringComparison.Ordinal);
        }
    }

    private static string Sha256(string block) => Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(block)));
}
